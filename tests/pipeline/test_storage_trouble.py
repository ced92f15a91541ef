"""Trouble with the engine's own storage is never a record's failure (issue 10, defect 3),
and sources keep ``[state] min_free_bytes`` free on the state folder (defect 2)."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pipeline
from pipeline import DocumentRecord, PermanentError, Transform
from pipeline.runner import Engine
from pipeline.runner.backpressure import GIB, default_min_free, free_bytes
from pipeline.settings import Settings, parse_settings
from tests.pipeline.pipeline_engine_helpers import (
    DirSource,
    Recorder,
    plugin_manager,
    store_documents,
)


@pytest.fixture(autouse=True)
def _reset_calls() -> Iterator[None]:
    DirSource.calls.clear()
    yield
    DirSource.calls.clear()


class FlakyCache(Transform):
    """Like the route transform writing its cache: the first two calls of each record
    find the state folder's disk full (as an ``OSError``, or as SQLite's error wrapped in
    a ``PermanentError`` by a plugin that thought it knew better)."""

    calls: dict[str, int] = {}
    lock = threading.Lock()

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        with self.lock:
            n = FlakyCache.calls.get(record.source_ref, 0)
            FlakyCache.calls[record.source_ref] = n + 1
        if n < 2:
            if "wrapped" in record.source_ref:
                try:
                    raise sqlite3.OperationalError("cannot rollback - no transaction is active")
                except sqlite3.Error as e:
                    raise PermanentError(f"routing cache: {e}") from e
            cache = self.context.state_dir / "cache.db"
            raise OSError(errno.ENOSPC, "No space left on device", str(cache))
        return record


class FlakyPlugin:
    @pipeline.hookimpl
    def ingest_register_transforms(self, register: Any) -> None:
        register("flaky-cache", FlakyCache)


def settings(tmp_path: Path, **state: Any) -> Settings:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return parse_settings(
        {
            "state": {"dir": str(tmp_path / "state"), **state},
            "pipeline": {
                "transforms": ["org", "flaky-cache"],
                "sink": "store",
                "retry_base": 0.02,
                "retry_max": 0.2,
                "workers": 2,
                "once_timeout": 60,
            },
            "sinks": {"store": {"db": str(tmp_path / "store.db")}},
            "sources": [{"name": "inbox", "type": "dir", "path": str(inbox)}],
        }
    )


def test_a_storage_error_in_a_transform_leaves_the_record_and_pauses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    FlakyCache.calls.clear()
    s = settings(tmp_path)
    for name in ("plain.txt", "wrapped.txt"):
        (tmp_path / "inbox" / name).write_text(name)
    rec = Recorder()
    caplog.set_level(logging.INFO, "itglue_ingest.engine")
    with Engine(s, plugin_manager(FlakyPlugin(), rec)) as engine:
        summary = engine.run_once()
        assert (summary.delivered, summary.failed, summary.pending) == (2, 0, 0), summary
        assert engine.ledger.counts() == {"inbox": {"done": 2}}
        assert engine.ledger.failed() == []
    assert [c for c in DirSource.calls if c[0] == "nack"] == []
    assert [f for f in rec.failed if f[2]] == []  # never reported as a permanent failure
    assert sorted(d[3] for d in store_documents(tmp_path / "store.db")) == [
        "plain.txt",
        "wrapped.txt",
    ]
    assert FlakyCache.calls == {"plain.txt": 3, "wrapped.txt": 3}
    trouble = [r.getMessage() for r in caplog.records if "storage trouble (" in r.getMessage()]
    assert len(trouble) == 1, trouble  # one line when it starts, not one per error
    assert "No space left on device" in trouble[0] or "cannot rollback" in trouble[0]
    assert any("storage usable again" in r.getMessage() for r in caplog.records)


def test_sources_keep_min_free_bytes_free_on_the_state_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    FlakyCache.calls = {"a.txt": 2}  # no disk trouble here
    s = settings(tmp_path, min_free_bytes=free_bytes(tmp_path) + 1024 * GIB)
    (tmp_path / "inbox" / "a.txt").write_text("a")
    s.pipeline.once_timeout = 2.0
    caplog.set_level(logging.INFO, "itglue_ingest.engine")
    with Engine(s, plugin_manager(FlakyPlugin())) as engine:
        summary = engine.run_once()
        assert summary.timed_out  # the source waited for room the whole time
        assert engine.ledger.counts() == {}
        assert list(engine.spool.hashes()) == []
    waits = [r for r in caplog.records if "min_free_bytes = " in r.getMessage()]
    waits = [r for r in waits if "sources wait" in r.getMessage()]
    assert len(waits) == 1, [r.getMessage() for r in waits]

    with Engine(settings(tmp_path), plugin_manager(FlakyPlugin())) as engine:  # the default
        assert engine.run_once().delivered == 1


def test_the_default_watermark_is_5_percent_of_the_disk_at_most_1_gib(tmp_path: Path) -> None:
    st = os.statvfs(tmp_path)
    assert default_min_free(tmp_path) == min(GIB, st.f_blocks * st.f_frsize // 20)
