"""Group commit never lets the outside learn of a change before it is durable.

With ``[state] group_commit`` the ledger commits each change without an fsync and
fsyncs the WAL once for many (``LedgerStore.sync``). What a power cut may keep is what
the disk held at the last fsync: each fsync here first copies the database and its WAL
(everything in the copy was written before the fsync, so it is durable once it
returns). At every moment the outside learns something -- the sink's API writes, the
outcome hooks, the source's post-actions -- the test reads that durable copy and
checks it already holds the state (or journal step) that licensed it.

The second test is the process-level view: SIGKILL the engine as soon as a post-action
is observed, and the ledger shows the record delivered.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

import pipeline
from pipeline import DeliveryResult, DocumentRecord, PermanentError, Sink, StepJournal
from pipeline.ledger import store as ledger_store
from pipeline.runner import Engine
from pipeline.settings import parse_settings
from tests.child_process import child_env, python_module
from tests.pipeline.pipeline_engine_helpers import DirSource, plugin_manager
from tests.waiting import wait_for


class DurableView:
    """The ledger as of its last fsync (a copy taken by each fsync of the WAL)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.fsyncs = 0

    def fsync_wal(self, path: Path) -> None:
        with self.lock:
            for suffix in ("", "-wal"):
                shutil.copyfile(f"{path}{suffix}", self.folder / f"durable.db{suffix}")
            self.fsyncs += 1
        real_fsync_wal(path)

    def query(self, sql: str, params: tuple[Any, ...]) -> str | None:
        if not self.fsyncs:
            return None
        with self.lock, tempfile.TemporaryDirectory(dir=self.folder) as tmp:
            # opening the copy recovers its WAL: open a copy of the copy
            for suffix in ("", "-wal"):
                shutil.copyfile(self.folder / f"durable.db{suffix}", f"{tmp}/v.db{suffix}")
            conn = sqlite3.connect(f"{tmp}/v.db")
            try:
                row = conn.execute(sql, params).fetchone()
            finally:
                conn.close()
        return str(row[0]) if row else None

    def state(self, record_id: int | None) -> str | None:
        return self.query("SELECT state FROM ledger_records WHERE id=?", (record_id,))

    def step(self, record_id: int | None, step: str) -> str | None:
        return self.query(
            "SELECT value FROM ledger_steps WHERE record_id=? AND step=?", (record_id, step)
        )


real_fsync_wal = ledger_store.fsync_wal
VIEW: DurableView | None = None
SEEN: list[tuple[str, str, str | None]] = []  # (moment, source_ref, what the disk held)


def seen(moment: str, record: DocumentRecord, durable: str | None) -> None:
    SEEN.append((moment, record.source_ref, durable))


class CheckingSource(DirSource):
    """Notes the durable state of each record at its post-action."""

    def ack(self, record: DocumentRecord, outcome: Literal["delivered", "duplicate"]) -> None:
        assert VIEW is not None
        seen(f"ack {outcome}", record, VIEW.state(record.id))
        super().ack(record, outcome)

    def nack(self, record: DocumentRecord, reason: str) -> None:
        assert VIEW is not None
        seen("nack", record, VIEW.state(record.id))
        super().nack(record, reason)


class CheckingSink(Sink):
    """Two "API writes", each after the durable state that licenses it is checked."""

    def find_existing(self, record: DocumentRecord) -> str | None:
        return None

    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        assert VIEW is not None
        if "permanent" in record.name:
            raise PermanentError("refused (422)")
        seen("create", record, VIEW.state(record.id))
        journal.record("document", f"doc-{record.id}")
        seen("upload", record, VIEW.step(record.id, "document"))
        journal.record("attachment:0", f"att-{record.id}")
        return DeliveryResult(record.organization_id, "documents", f"doc-{record.id}")


class CheckingPlugins:
    @pipeline.hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        register("checking-dir", CheckingSource)

    @pipeline.hookimpl
    def ingest_register_sinks(self, register: Any) -> None:
        register("checking", CheckingSink)

    @pipeline.hookimpl
    def ingest_record_delivered(self, record: DocumentRecord, result: DeliveryResult) -> None:
        assert VIEW is not None
        seen("hook delivered", record, VIEW.state(record.id))

    @pipeline.hookimpl
    def ingest_record_duplicate(self, record: DocumentRecord, existing: str) -> None:
        assert VIEW is not None
        seen("hook duplicate", record, VIEW.state(record.id))

    @pipeline.hookimpl
    def ingest_record_failed(self, record: DocumentRecord, reason: str, permanent: bool) -> None:
        assert VIEW is not None
        if permanent:
            seen("hook failed", record, VIEW.state(record.id))


@pytest.fixture
def durable_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DurableView]:
    global VIEW
    (tmp_path / "view").mkdir()
    VIEW = DurableView(tmp_path / "view")
    monkeypatch.setattr(ledger_store, "fsync_wal", VIEW.fsync_wal)
    SEEN.clear()
    DirSource.calls.clear()
    yield VIEW
    VIEW = None
    SEEN.clear()
    DirSource.calls.clear()


# what the durable ledger must hold when the outside learns of each moment
EXPECTED = {
    "create": "delivering",
    "upload": "doc-",  # the journal step before the second API write
    "hook delivered": "delivered",
    "ack delivered": "delivered",
    "hook duplicate": "duplicate",
    "ack duplicate": "duplicate",
    "hook failed": "failed",
    "nack": "failed",
}


def test_nothing_outside_learns_of_a_change_before_it_is_durable(
    tmp_path: Path, durable_view: DurableView
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(12):
        (inbox / f"doc{i:02}.txt").write_text(f"content {i}")
    for i in range(4):  # the same content as doc00..doc03: duplicates
        (inbox / f"zcopy{i}.txt").write_text(f"content {i}")
    (inbox / "permanent.txt").write_text("refused")
    settings = parse_settings(
        {
            "state": {"dir": str(tmp_path / "state"), "group_commit": True},
            "pipeline": {"transforms": ["org"], "sink": "checking", "workers": 3},
            "sources": [{"name": "inbox", "type": "checking-dir", "path": str(inbox)}],
        }
    )
    with Engine(settings, plugin_manager(CheckingPlugins())) as engine:
        summary = engine.run_once()
    assert (summary.delivered, summary.duplicate, summary.failed) == (12, 4, 1)

    moments = {m for m, _, _ in SEEN}
    assert moments == set(EXPECTED), "every kind of moment was observed"
    early = [
        (m, ref, durable)
        for m, ref, durable in SEEN
        if durable is None or not durable.startswith(EXPECTED[m])
    ]
    assert not early, f"the outside learned of changes not yet durable: {early}"
    assert durable_view.fsyncs < len(SEEN), "fsyncs are shared (else: why group commit)"


def test_a_sigkill_right_after_a_post_action_finds_the_record_delivered(tmp_path: Path) -> None:
    """The process-level view: the post-action (the file moved to ``.done``) is seen,
    the engine is SIGKILLed at once, and the ledger holds the record as delivered."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    names = [f"doc{i:02}.txt" for i in range(30)]
    for i, name in enumerate(names):
        (inbox / name).write_text(f"content {i}")
    settings = {
        "state": {"dir": str(tmp_path / "state"), "group_commit": True},
        "pipeline": {"transforms": ["org"], "sink": "store", "workers": 3},
        "sinks": {"store": {"db": str(tmp_path / "store.db")}},
        "sources": [{"name": "inbox", "type": "dir", "path": str(inbox)}],
    }
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(settings))
    proc = subprocess.Popen(
        python_module("tests.pipeline.pipeline_crash_runner", settings_file, "store"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(),
    )
    done = inbox / ".done"
    try:
        wait_for(lambda: done.is_dir() and any(done.iterdir()), timeout=60)
        os.kill(proc.pid, signal.SIGKILL)
        # the files moved by then (listed after the kill: no post-action can follow it)
        proc.wait(10)
        acked = sorted(p.name for p in done.iterdir())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert acked
    conn = sqlite3.connect(tmp_path / "state" / "default.db")
    try:
        states = dict(
            conn.execute("SELECT source_ref, state FROM ledger_records WHERE source='inbox'")
        )
    finally:
        conn.close()
    not_delivered = {
        ref: states.get(ref) for ref in acked if states.get(ref) not in ("delivered", "done")
    }
    assert not not_delivered, f"post-action before the state was kept: {not_delivered}"
