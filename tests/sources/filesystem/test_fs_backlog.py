"""Backlogs and restarts: what is in the folder at start-up is ingested once, whatever
happens to the process; ``ack``/``nack`` are idempotent and never touch a newer file;
a failed file moved back is taken again; unreadable files fail with a reason."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipeline import Blob, DocumentRecord
from plugins.filesystem.placement import dated_dir
from plugins.filesystem.versions import version_of
from tests.child_process import child_env, python_module
from tests.sources.filesystem.fs_helpers import (
    Store,
    files_under,
    ledger_rows,
    make_engine,
    running,
    settings_for,
    sha,
)
from tests.waiting import wait_for


def once(settings: Any) -> Any:
    engine = make_engine(settings)
    try:
        return engine.run_once()
    finally:
        engine.close()


def test_keep_mode_restart_with_a_backlog(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    (drop / "Acme").mkdir(parents=True)
    contents = {f"Acme/doc-{i:03d}.pdf": os.urandom(200) for i in range(150)}
    for rel, data in contents.items():
        (drop / rel).write_bytes(data)
    settings = settings_for(tmp_path, drop, after="keep", stability_delay=0.1)
    store = Store(tmp_path / "store.db")

    assert once(settings).delivered == 150
    assert sorted(store.refs()) == sorted(contents)
    assert len(files_under(drop)) == 150  # kept

    again = once(settings)  # a restart: nothing is read or uploaded again
    assert (again.delivered, again.duplicate, again.failed) == (0, 0, 0)
    assert len(ledger_rows(settings)) == 150

    # touched without a content change: a new version, found to be a duplicate (no upload)
    st = os.stat(drop / "Acme/doc-000.pdf")
    os.utime(drop / "Acme/doc-000.pdf", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    # changed content: a new version, delivered again
    (drop / "Acme/doc-001.pdf").write_bytes(b"revised")
    os.utime(drop / "Acme/doc-001.pdf", ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))
    third = once(settings)
    assert (third.delivered, third.duplicate) == (1, 1)
    rows = store.by_ref("Acme/doc-001.pdf")
    assert [r["sha256"] for r in rows] == [sha(contents["Acme/doc-001.pdf"]), sha(b"revised")]
    assert len(store.rows()) == 151

    # and the daemon's start-up and periodic rescans find nothing either
    settings2 = settings_for(tmp_path, drop, after="keep", stability_delay=0.1, rescan_interval=0.2)
    with running(make_engine(settings2)):
        time.sleep(1.0)  # deliberate: several rescans (0.2 s apart), none may deliver
    assert len(store.rows()) == 151
    assert len(ledger_rows(settings)) == 152


def test_upgrade_from_size_and_mtime_versions_reads_nothing_again(tmp_path: Path) -> None:
    """Ledgers of earlier releases hold ``<size>-<mtime_ns>`` versions: files kept in
    place are not read again after the upgrade, unless they change afterwards (even to
    the same size and mtime)."""
    drop = tmp_path / "drop"
    drop.mkdir()
    for name in ("a.pdf", "b.pdf"):
        (drop / name).write_bytes(name.encode() * 100)
    settings = settings_for(tmp_path, drop, after="keep", stability_delay=0.1)
    assert once(settings).delivered == 2
    with contextlib.closing(sqlite3.connect(settings.database_path)) as c, c:
        for name in ("a.pdf", "b.pdf"):  # what the earlier release recorded
            st = os.stat(drop / name)
            c.execute(
                "UPDATE ledger_records SET version=? WHERE source_ref=?",
                (f"{st.st_size}-{st.st_mtime_ns}", name),
            )
        c.execute("DELETE FROM ledger_checkpoints")  # it had no upgrade mark either

    again = once(settings)
    assert (again.delivered, again.duplicate, again.failed) == (0, 0, 0)
    assert len(ledger_rows(settings)) == 2

    st = os.stat(drop / "b.pdf")  # replaced after the upgrade, size and mtime copied
    (drop / "b.pdf").write_bytes(b"B" * st.st_size)
    os.utime(drop / "b.pdf", ns=(st.st_atime_ns, st.st_mtime_ns))
    third = once(settings)
    assert (third.delivered, third.duplicate) == (1, 0)
    assert Store(tmp_path / "store.db").by_ref("b.pdf")[-1]["sha256"] == sha(b"B" * st.st_size)


def test_ack_and_nack_are_idempotent_and_spare_newer_files(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    (drop / "Acme").mkdir(parents=True)
    engine = make_engine(settings_for(tmp_path, drop))
    try:
        src = engine.sources["drop"]
        p = drop / "Acme" / "a.pdf"
        p.write_bytes(b"one")
        rec = DocumentRecord(
            source="drop", source_ref="Acme/a.pdf", version=version_of(os.stat(p)), name="a.pdf"
        )
        src.ack(rec, "delivered")
        src.ack(rec, "delivered")  # again (a retried ack after a crash): nothing happens
        assert [x.name for x in files_under(drop / "processed")] == ["a.pdf"]
        assert (dated_dir(drop / "processed") / "Acme" / "a.pdf").read_bytes() == b"one"

        p.write_bytes(b"a newer file under the same name")
        src.ack(rec, "delivered")  # the old record must not move the new file
        src.nack(rec, "whatever")
        assert p.read_bytes() == b"a newer file under the same name"

        rec2 = DocumentRecord(
            source="drop", source_ref="Acme/a.pdf", version=version_of(os.stat(p)), name="a.pdf"
        )
        src.nack(rec2, "type not allowed: application/x-dosexec")
        src.nack(rec2, "type not allowed: application/x-dosexec")
        failed = drop / "failed" / "Acme"
        assert sorted(x.name for x in failed.iterdir()) == ["a.pdf", "a.pdf.error.txt"]
        assert "application/x-dosexec" in (failed / "a.pdf.error.txt").read_text()
        assert not p.exists()
    finally:
        engine.close()


def test_post_action_spares_a_file_whose_content_is_not_what_was_delivered(
    tmp_path: Path,
) -> None:
    """The hash check before the post-action: a record whose delivered content differs
    from the file on disk (same version: rewritten within one clock tick) leaves it."""
    drop = tmp_path / "drop"
    drop.mkdir()
    engine = make_engine(settings_for(tmp_path, drop))
    try:
        src = engine.sources["drop"]
        p = drop / "a.pdf"
        p.write_bytes(b"what is on disk")

        def record(delivered: bytes) -> DocumentRecord:
            blob = Blob(file_name="a.pdf", path=p, size=len(delivered), sha256=sha(delivered))
            return DocumentRecord(
                source="drop",
                source_ref="a.pdf",
                version=version_of(os.stat(p)),
                name="a.pdf",
                files=[blob],
            )

        src.ack(record(b"what was delivered"), "delivered")
        src.nack(record(b"what was delivered"), "whatever")
        assert p.read_bytes() == b"what is on disk"
        assert not (drop / "processed").exists() and not (drop / "failed").exists()
        src.ack(record(b"what is on disk"), "delivered")
        assert not p.exists()
        assert (dated_dir(drop / "processed") / "a.pdf").read_bytes() == b"what is on disk"
    finally:
        engine.close()


def test_failed_file_moved_back_is_taken_again(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "big.pdf").write_bytes(b"x" * 5000)
    small = settings_for(tmp_path, drop, stability_delay=0.1, pipeline_opts={"max_file_size": 1000})
    assert once(small).failed == 1
    assert (drop / "failed" / "big.pdf").exists()
    note = (drop / "failed" / "big.pdf.error.txt").read_text()
    assert "too large" in note and "5000 bytes" in note

    # the cause is fixed (the limit raised), the file moved back: same name, same mtime
    os.rename(drop / "failed" / "big.pdf", drop / "big.pdf")
    large = settings_for(tmp_path, drop, stability_delay=0.1)
    assert once(large).delivered == 1
    rows = Store(tmp_path / "store.db").rows()
    failed_version = ledger_rows(large)[0]["version"]
    assert len(rows) == 1 and rows[0]["version"] != failed_version  # the move changed its ctime
    assert (dated_dir(drop / "processed") / "big.pdf").exists()


def _drop_read_override() -> None:
    """In the child: lose root's power to read files regardless of their mode bits."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    for cap in (cap_dac_override, cap_dac_read_search):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def run_child(
    spec: dict[str, Any], tmp_path: Path, *, drop_caps: bool = False, name: str = "spec"
) -> subprocess.Popen[bytes]:
    spec_file = tmp_path / f"{name}.json"
    spec_file.write_text(json.dumps(spec))
    log = (tmp_path / f"{name}.log").open("ab")
    try:
        return subprocess.Popen(
            python_module("tests.sources.filesystem.fs_child", spec_file),
            env=child_env(),
            stdout=log,
            stderr=log,
            preexec_fn=_drop_read_override if drop_caps else None,
        )
    finally:
        log.close()


def test_unreadable_file_fails_with_a_reason(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "ok.pdf").write_bytes(b"fine")
    secret = drop / "secret.pdf"
    secret.write_bytes(b"no access")
    secret.chmod(0)
    spec = {
        "tmp": str(tmp_path),
        "drop": str(drop),
        "mode": "once",
        "source": {"stability_delay": 0.1},
    }
    proc = run_child(spec, tmp_path, drop_caps=True)
    try:
        assert proc.wait(timeout=60) == 3, (tmp_path / "spec.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert Store(tmp_path / "store.db").refs() == ["ok.pdf"]
    assert (drop / "failed" / "secret.pdf").exists()
    note = (drop / "failed" / "secret.pdf.error.txt").read_text()
    assert "cannot read the file" in note and "permission" in note.lower()
    state = {r["source_ref"]: r["state"] for r in ledger_rows(settings_for(tmp_path, drop))}
    assert state == {"ok.pdf": "done", "secret.pdf": "failed"}


@pytest.mark.slow
@pytest.mark.timeout(360)  # many restarts: the 120 s hang guard is too tight
def test_crash_during_a_backlog_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    n = 300
    contents = {}
    for i in range(n):
        sub = ("Acme", "Globex", "Initech")[i % 3]
        rel = f"{sub}/scan-{i:04d}.pdf"
        (drop / sub).mkdir(exist_ok=True)
        data = os.urandom(64) + str(i).encode()
        (drop / rel).write_bytes(data)
        contents[rel] = data
    spec = {
        "tmp": str(tmp_path),
        "drop": str(drop),
        "mode": "run",
        "sink_delay": 0.01,
        "source": {"stability_delay": 0.2, "organization_from": "subfolder"},
    }
    store = Store(tmp_path / "store.db")
    for kill_at in (50, 140, 220):
        proc = run_child(spec, tmp_path)
        try:
            wait_for(lambda k=kill_at: len(store.rows()) >= k, timeout=90, message=f"{kill_at}")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert len(store.rows()) < n, "the backlog finished before the kill"
    proc = run_child(spec, tmp_path)
    try:
        wait_for(
            lambda: not [p for p in files_under(drop) if "processed" not in p.parts],
            timeout=90,
            message="the whole backlog",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    rows = store.rows()
    counts = Counter(r["source_ref"] for r in rows)
    assert set(counts) == set(contents), "a file was lost"
    assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1]
    for r in rows:
        assert r["sha256"] == sha(contents[r["source_ref"]])
        assert r["organization"] == r["source_ref"].split("/")[0]
    moved = files_under(drop / "processed")
    assert len(moved) == n and not [p for p in moved if " (1)" in p.name]
    assert {r["state"] for r in ledger_rows(settings_for(tmp_path, drop))} == {"done"}


def test_processed_dir_named_through_a_link_is_still_excluded(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(drop)
    (drop / "a.pdf").write_bytes(b"a")
    settings = settings_for(
        tmp_path,
        drop,
        stability_delay=0.1,
        processed_dir=str(alias / "done"),
        failed_dir=str(alias / "bad"),
    )
    assert once(settings).delivered == 1
    assert (dated_dir(drop / "done") / "a.pdf").exists()
    again = once(settings)  # done/ is inside the drop folder, under another name
    assert (again.delivered, again.duplicate, again.failed) == (0, 0, 0)
    assert len(ledger_rows(settings)) == 1


def test_retry_delivers_a_failed_file_and_tidies_failed(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    (drop / "Acme").mkdir(parents=True)
    (drop / "Acme" / "notes.txt").write_bytes(b"plain text notes\n")
    strict = settings_for(
        tmp_path,
        drop,
        stability_delay=0.1,
        transforms=("mime", "orgid"),
        transform_opts={"mime": {"deny": ["text/plain"]}},
    )
    assert once(strict).failed == 1
    note = drop / "failed" / "Acme" / "notes.txt.error.txt"
    assert "text/plain" in note.read_text()
    assert "itglue-ingest retry -c <config> --source drop" in note.read_text()

    relaxed = settings_for(tmp_path, drop, stability_delay=0.1)  # the cause is fixed
    engine = make_engine(relaxed)
    try:
        assert engine.ledger.requeue(source="drop") == 1  # what `itglue-ingest retry` does
        assert engine.run_once().delivered == 1
    finally:
        engine.close()
    assert [r["sha256"] for r in Store(tmp_path / "store.db").rows()] == [
        sha(b"plain text notes\n")
    ]
    assert not [p for p in (drop / "failed").rglob("*") if p.is_file()]
    assert (dated_dir(drop / "processed") / "Acme" / "notes.txt").exists()
