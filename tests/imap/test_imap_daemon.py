"""The daemon side: IDLE pickup, polling, dropped connections, a crash before the
post-action -- each against real Dovecot, through the real engine."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pipeline
from plugins.imap import ImapSource
from tests.child_process import child_env, python_module
from tests.imap.imap_helpers import make_message, running
from tests.waiting import wait_for


def _synced(engine: Any) -> bool:
    return engine.ledger.get_checkpoint("mail", "folder:INBOX") is not None


def _idling(engine: Any) -> bool:
    box = engine.sources["mail"]._sync_box  # the source's own connection
    return box is not None and box.in_idle


def test_idle_picks_up_new_mail_within_seconds(mailbox, make_engine, delivered):
    # a poll interval of ten minutes: only IDLE can bring the mail in this fast
    engine = make_engine(poll_interval=600, idle=True)
    with running(engine):
        wait_for(lambda: _synced(engine))
        wait_for(lambda: _idling(engine), message="the source to enter IDLE")
        t0 = time.monotonic()
        mailbox.append(make_message("Pushed by IDLE"))
        wait_for(lambda: delivered(), timeout=8)
        latency = time.monotonic() - t0
        assert latency < 8
        # the server drops the connection; the source reconnects and goes on
        mailbox.server.kick(mailbox.user)
        mailbox.append(make_message("After the drop"))
        wait_for(lambda: len(delivered()) == 2, timeout=15)
        wait_for(lambda: "$Ingested" in mailbox.flags_by_subject().get("After the drop", ()))
    assert [d["name"] for d in delivered()] == ["Pushed by IDLE", "After the drop"]


def test_polling_when_idle_is_off(mailbox, make_engine, delivered):
    engine = make_engine(idle=False, poll_interval=0.2)
    with running(engine):
        wait_for(lambda: _synced(engine))
        mailbox.append(make_message("Found by polling"))
        wait_for(lambda: delivered(), timeout=8)
    assert [d["name"] for d in delivered()] == ["Found by polling"]


class KickingSource(ImapSource):
    """The IMAP source, but the server drops the connection before its third batch."""

    server: Any = None
    user = ""
    batches = 0

    def _sync_batch(self, *args: Any, **kwargs: Any) -> None:
        type(self).batches += 1
        if type(self).batches == 3:
            type(self).server.kick(type(self).user)
        super()._sync_batch(*args, **kwargs)


class KickingPlugin:
    @pipeline.hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        register("imap_kicking", KickingSource)


def test_connection_dropped_mid_sync_resumes_without_duplicates(mailbox, make_engine, delivered):
    for i in range(30):
        mailbox.server.save(mailbox.user, make_message(f"Batch mail {i:02d}", body=f"n{i}"))
    KickingSource.server, KickingSource.user, KickingSource.batches = (
        mailbox.server,
        mailbox.user,
        0,
    )
    engine = make_engine(extra=(KickingPlugin(),), type="imap_kicking", batch_size=5)
    assert engine.run_once().ok
    names = sorted(d["name"] for d in delivered())
    assert names == [f"Batch mail {i:02d}" for i in range(30)]
    assert KickingSource.batches > 6  # the interrupted batch was fetched again
    flags = mailbox.flags_by_subject()
    assert all("$Ingested" in f for f in flags.values())


def test_crash_between_delivery_and_post_action(
    mailbox, make_engine, delivered, settings_data, tmp_path
):
    mailbox.append(make_message("Crash victim", attachments=[("c.txt", b"c", "text/plain")]))
    config = tmp_path / "settings.json"
    config.write_text(json.dumps(settings_data()))
    proc = subprocess.run(
        python_module("tests.imap.imap_crash_runner", config),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 17, proc.stderr[-2000:]
    assert [d["name"] for d in delivered()] == ["Crash victim"]
    assert mailbox.flags_by_subject() == {"Crash victim": set()}  # no post-action yet
    # restart: the delivered record is acked, nothing is delivered twice
    engine = make_engine()
    assert engine.run_once().ok
    assert [d["name"] for d in delivered()] == ["Crash victim"]
    assert mailbox.flags_by_subject() == {"Crash victim": {"\\Seen", "$Ingested"}}
    states = engine.ledger.counts()["mail"]
    assert states == {"done": 1}, states


def test_several_folders_idle_on_the_first_poll_the_others(mailbox, make_engine, delivered):
    mailbox.create("Scans")
    engine = make_engine(folders=["INBOX", "Scans"], idle=True, poll_interval=0.5)
    with running(engine):
        wait_for(lambda: engine.ledger.get_checkpoint("mail", "folder:Scans") is not None)
        mailbox.append(make_message("Into scans"), folder="Scans")
        wait_for(lambda: len(delivered()) == 1, timeout=10)
        mailbox.append(make_message("Into inbox"))
        wait_for(lambda: len(delivered()) == 2, timeout=10)
    refs = sorted(d["source_ref"].split("/")[0] for d in delivered())
    assert refs == ["INBOX", "Scans"]


def test_daemon_survives_a_wrong_password_until_it_is_fixed(
    mailbox, make_engine, delivered, monkeypatch, caplog
):
    monkeypatch.setenv("IMAP_TEST_PASSWORD", "wrong")
    mailbox.append(make_message("Waiting for the right password"))
    engine = make_engine(reconnect_max=0.3, idle=True, poll_interval=600)
    with running(engine):
        wait_for(lambda: any("was refused" in r.getMessage() for r in caplog.records))
        # status, /readyz and the metrics see the source's state (report_scan)
        wait_for(lambda: engine.source_health.snapshot()["mail"].connected is False)
        assert "was refused" in (engine.source_health.snapshot()["mail"].error or "")
        monkeypatch.setenv("IMAP_TEST_PASSWORD", mailbox.password)
        wait_for(lambda: delivered(), timeout=10)
        wait_for(lambda: engine.source_health.snapshot()["mail"].connected)
        assert engine.source_health.snapshot()["mail"].error is None
    assert [d["name"] for d in delivered()] == ["Waiting for the right password"]
    assert not any("wrong" in r.getMessage() for r in caplog.records)
