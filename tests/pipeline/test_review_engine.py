"""Review of the engine's exactly-once paths with real components (engine, SQLite ledger,
spool, the test folder source and journaled store sink)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pipeline
from pipeline import DocumentRecord
from pipeline.ledger import Ledger
from pipeline.runner import Engine
from tests.pipeline.pipeline_engine_helpers import DirSource, plugin_manager
from tests.pipeline.test_engine import make_settings, write


@pytest.fixture(autouse=True)
def _reset_calls() -> Iterator[None]:
    DirSource.calls.clear()
    yield
    DirSource.calls.clear()


class RetriedWhileNacked(DirSource):
    """``itglue-ingest retry`` (another process, its own connection) lands while the
    source is still nacking the record (moving the file, flagging the mail)."""

    db: Path
    requeued: list[int] = []

    def nack(self, record: DocumentRecord, reason: str) -> None:
        super().nack(record, reason)
        if not RetriedWhileNacked.requeued:
            assert record.id is not None
            cli = Ledger(RetriedWhileNacked.db)
            try:
                RetriedWhileNacked.requeued.append(cli.requeue(ids=[record.id]))
            finally:
                cli.close()


class RetriedPlugin:
    @pipeline.hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        register("retried-dir", RetriedWhileNacked)


def test_a_retry_during_the_nack_is_not_undone(tmp_path: Path) -> None:
    """The worker's "nacked" bookkeeping must not overwrite the requeued state: the retry
    would report one record requeued while the record stays failed, without a reason,
    never processed again."""
    inbox = tmp_path / "inbox"
    s = make_settings(
        tmp_path,
        sources=[{"name": "inbox", "type": "retried-dir", "path": str(inbox)}],
        pipeline_opts={"transforms": ["org", "picky"]},
    )
    RetriedWhileNacked.db = s.database_path
    RetriedWhileNacked.requeued = []
    write(inbox, "reject-me.txt", "r")
    with Engine(s, plugin_manager(RetriedPlugin())) as engine:
        engine.run_once()
        entry = engine.ledger.find("inbox", "reject-me.txt")
    assert RetriedWhileNacked.requeued == [1]
    assert entry is not None and entry.state == "failed" and entry.acked
    # processed again after the retry: failed again for the same reason, nacked again
    assert entry.reason == "reject-me is not wanted here"
    nacks = [c for c in DirSource.calls if c[0] == "nack"]
    assert len(nacks) == 2


class HeldSink(pipeline.Sink):
    """Delivers at once, except ``a.txt``: IT Glue keeps answering "later" (a breaker
    open for a minute, a rejected key: retried in minutes)."""

    def deliver(
        self, record: DocumentRecord, journal: pipeline.StepJournal
    ) -> pipeline.DeliveryResult:
        if record.source_ref == "a.txt":
            raise pipeline.TransientError("circuit open", retry_after=30.0)
        return pipeline.DeliveryResult(record.organization_id, "documents", record.source_ref)


class HeldPlugin:
    @pipeline.hookimpl
    def ingest_register_sinks(self, register: Any) -> None:
        register("held", HeldSink)


def test_a_copy_waiting_for_a_delivery_in_backoff_does_not_spin(tmp_path: Path) -> None:
    """b.txt has a.txt's content while a.txt is being delivered and waits for it. When
    a.txt's delivery is postponed for 30 s, b.txt must wait as long, not poll the ledger
    every half second (two fsync'd transactions each time, for every waiting copy)."""
    inbox = tmp_path / "inbox"
    write(inbox, "a.txt", "same bytes")
    write(inbox, "b.txt", "same bytes")
    s = make_settings(tmp_path, pipeline_opts={"sink": "held", "workers": 1})
    stop = threading.Event()
    with Engine(s, plugin_manager(HeldPlugin())) as engine:
        t = threading.Thread(target=engine.run, args=(stop,))
        t.start()
        try:
            time.sleep(1.5)  # deliberate: b.txt must not be retried during this time
        finally:
            stop.set()
            t.join(15)
        a = engine.ledger.find("inbox", "a.txt")
        b = engine.ledger.find("inbox", "b.txt")
    assert a is not None and b is not None
    assert (a.state, b.state) == ("delivering", "ready")
    assert b.next_attempt_at >= a.next_attempt_at


class NeverAcked(DirSource):
    """A source whose post-action keeps failing (its records stay delivered, unacked)."""

    def ack(self, record: DocumentRecord, outcome: Any) -> None:
        raise OSError("the processed/ folder is read-only")


class NeverAckedPlugin:
    @pipeline.hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        register("never-acked", NeverAcked)


def test_a_disabled_sources_unacked_records_do_not_stall_the_other_sources(
    tmp_path: Path,
) -> None:
    """Records of a source that is disabled (or removed) wait in the ledger for their
    ack until it is back; they cannot free spool space meanwhile. They must not count
    against the spool's bounds: every other source's emit would block for good."""
    old, new = tmp_path / "old", tmp_path / "new"
    write(old, "o1.txt", "o1")
    write(old, "o2.txt", "o2")
    opts = {"spool_max_records": 2, "retry_base": 30, "retry_max": 60, "once_timeout": 4}
    first = make_settings(
        tmp_path,
        sources=[{"name": "old", "type": "never-acked", "path": str(old)}],
        pipeline_opts=opts,
    )
    with Engine(first, plugin_manager(NeverAckedPlugin())) as engine:
        summary = engine.run_once()
        assert summary.delivered == 2
        assert engine.ledger.counts() == {"old": {"delivered": 2}}  # the acks wait
    write(new, "n1.txt", "n1")
    second = make_settings(
        tmp_path,
        sources=[
            {"name": "old", "type": "never-acked", "path": str(old), "enabled": False},
            {"name": "new", "type": "dir", "path": str(new)},
        ],
        pipeline_opts=opts,
    )
    with Engine(second, plugin_manager(NeverAckedPlugin())) as engine:
        summary = engine.run_once()
        assert not summary.timed_out
        assert engine.ledger.state_of("new", "n1.txt") == "done"
        assert engine.ledger.counts()["old"] == {"delivered": 2}


def test_a_spool_that_cannot_be_written_is_not_blamed_on_the_input(tmp_path: Path) -> None:
    """The spool cannot take the bytes (disk full, its folder broken): the engine's
    problem, not the file's. The record must not be failed as "unreadable" and the
    source nacked (the file moved to failed/ for good); emit raises a TransientError
    (nothing recorded), the source offers the file again later."""
    inbox = tmp_path / "inbox"
    write(inbox, "a.txt", "a")
    s = make_settings(tmp_path)
    with Engine(s, plugin_manager()) as engine:
        engine.recover()
        tmp = engine.spool.tmp
        tmp.rmdir()
        tmp.write_bytes(b"")  # writes into the spool fail (ENOTDIR, as ENOSPC would)
        summary = engine.run_once()
        assert engine.ledger.counts() == {}
        assert "inbox" in summary.source_errors and "spool" in summary.source_errors["inbox"]
        assert not [c for c in DirSource.calls if c[0] == "nack"]
        tmp.unlink()
        tmp.mkdir()
    assert (inbox / "a.txt").exists()
    with Engine(s, plugin_manager()) as engine:
        summary = engine.run_once()
        assert summary.delivered == 1 and summary.ok


class DropSmallFiles(pipeline.Transform):
    """A plugin transform that leaves files out of the record (e.g. signature images of
    a mail): what it drops is still in the spool."""

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        kept = [b for b in record.files if not b.file_name.startswith("logo")]
        return record.model_copy(update={"files": kept})


class TwoFiles(DirSource):
    def scan(self) -> None:
        root = Path(self.options.path)
        self.context.emit(
            pipeline.RecordDraft(
                source_ref="mail-1",
                name="mail 1",
                files=[
                    pipeline.FileInput(file_name="report.pdf", path=root / "report.pdf"),
                    pipeline.FileInput(file_name="logo.png", path=root / "logo.png"),
                ],
            )
        )


class DropPlugin:
    @pipeline.hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        register("two-files", TwoFiles)

    @pipeline.hookimpl
    def ingest_register_transforms(self, register: Any) -> None:
        register("drop-small", DropSmallFiles)


def test_files_a_transform_left_out_are_freed_from_the_spool(tmp_path: Path) -> None:
    """The spool is freed when the record is done -- all of the record's spool files,
    not only those still in the transformed record: a daemon would otherwise keep
    every left-out file until its next restart."""
    inbox = tmp_path / "inbox"
    write(inbox, "report.pdf", "the report")
    write(inbox, "logo.png", "a logo")
    s = make_settings(
        tmp_path,
        sources=[{"name": "mail", "type": "two-files", "path": str(inbox)}],
        pipeline_opts={"transforms": ["org", "drop-small"]},
    )
    with Engine(s, plugin_manager(DropPlugin())) as engine:
        summary = engine.run_once()
        assert summary.delivered == 1 and summary.ok
        assert engine.ledger.counts() == {"mail": {"done": 1}}
        assert list(engine.spool.hashes()) == []
