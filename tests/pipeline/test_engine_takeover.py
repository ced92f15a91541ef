"""Two engines sharing one PostgreSQL state and one input folder (issue 15): a standby
resumes the records the owner left, reading their bytes again from the source; an engine
whose source another collector took stops working on it."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pipeline
from core_client.postgres import PostgresDatabase
from pipeline import DocumentRecord, Transform
from pipeline.leases import Leases
from pipeline.runner import Engine
from pipeline.settings import Settings, parse_settings
from pipeline.testing.postgres import PostgresServer
from tests.pipeline.pipeline_engine_helpers import plugin_manager, store_attachments
from tests.waiting import wait_for


def collector(
    tmp_path: Path,
    dsn: str,
    name: str,
    *,
    failures: int = 0,
    lease: float = 30.0,
    transforms: tuple[str, ...] = ("org",),
) -> Settings:
    return parse_settings(
        {
            "state": {
                "dir": str(tmp_path / name / "state"),
                "backend": "postgresql",
                "dsn": dsn,
                "collector": name,
                "lease_seconds": lease,
            },
            "pipeline": {
                "transforms": list(transforms),
                "sink": "store",
                "retry_base": 0.02,
                "retry_max": 0.05,
                "workers": 2,
                "once_timeout": 1.5,
            },
            "sinks": {"store": {"db": str(tmp_path / "store.db"), "transient_failures": failures}},
            "sources": [{"name": "inbox", "type": "dir", "path": str(tmp_path / "inbox")}],
        }
    )


class GateTransform(Transform):
    """Holds every record until the test opens the gate (a long transform: OCR...)."""

    entered = threading.Event()
    gate = threading.Event()
    left = threading.Event()

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        GateTransform.entered.set()
        GateTransform.gate.wait(30)
        GateTransform.left.set()
        return record.model_copy(update={"name": record.name + " (transformed)"})


class GatePlugin:
    @pipeline.hookimpl
    def ingest_register_transforms(self, register: Any) -> None:
        register("gate", GateTransform)


def take_over(dsn: str, collector: str) -> None:
    """Collector ``collector`` takes every source, as if the owner's lease had run out."""
    expire(dsn)
    db = PostgresDatabase(dsn, component="leases")
    try:
        Leases(db, collector, 30.0).claim(["inbox"])
    finally:
        db.close()


def expire(dsn: str) -> None:
    db = PostgresDatabase(dsn, component="leases")
    try:
        with db.transaction() as c:
            c.execute("UPDATE source_leases SET expires_at=expires_at-3600")
    finally:
        db.close()


def test_the_standby_reads_again_what_the_owner_had_spooled(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    dsn = postgres_server.create_database()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    contents = {f"doc{i}.txt": f"content {i}\n".encode() * (i + 1) for i in range(5)}
    for name, data in contents.items():
        (inbox / name).write_bytes(data)
    # "a" spools every file but cannot deliver (the store is down for it)
    with Engine(collector(tmp_path, dsn, "a", failures=1000), plugin_manager()) as a:
        first = a.run_once()
    assert first.delivered == 0 and first.pending == len(contents)
    # a's machine is gone, its spool with it: "b" has only the source and the shared state
    shutil.rmtree(tmp_path / "a")
    with Engine(collector(tmp_path, dsn, "b"), plugin_manager()) as b:
        second = b.run_once()
        counts = b.ledger.counts()
    assert second.delivered == len(contents)
    assert counts == {"inbox": {"done": len(contents)}}
    landed = {name: data for _, _, name, data in store_attachments(tmp_path / "store.db")}
    assert landed == contents  # each once, byte for byte, read again from the inbox
    assert len(store_attachments(tmp_path / "store.db")) == len(contents)


def test_an_engine_whose_source_was_taken_stops_it_until_it_gets_it_back(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    dsn = postgres_server.create_database()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "before.txt").write_text("before")
    stop = threading.Event()
    with Engine(collector(tmp_path, dsn, "a", lease=3.0), plugin_manager()) as a:
        runner = threading.Thread(target=a.run, args=(stop,))
        runner.start()
        try:
            wait_for(lambda: a.ledger.counts() == {"inbox": {"done": 1}}, timeout=30)

            def watching() -> bool:
                return any(t.name == "watch-inbox" for t in threading.enumerate())

            assert watching() and a.ownership.owns("inbox")
            # collector "b" takes the source (as if a's lease had run out)
            expire(dsn)
            other_db = PostgresDatabase(dsn, component="leases")
            try:
                assert Leases(other_db, "b", 3.0).claim(["inbox"]).held() == {"inbox"}
            finally:
                other_db.close()
            wait_for(lambda: not a.ownership.owns("inbox") and not watching(), timeout=30)
            assert a.ownership.holders["inbox"] == "b"
            # b stops renewing: a takes the source back and goes on with its input
            expire(dsn)
            (inbox / "after.txt").write_text("after")
            wait_for(lambda: a.ledger.counts() == {"inbox": {"done": 2}}, timeout=30)
            assert a.ownership.owns("inbox") and a.ownership.takeovers == 1
        finally:
            stop.set()
            runner.join(30)
    landed: list[Any] = [name for _, _, name, _ in store_attachments(tmp_path / "store.db")]
    assert sorted(landed) == ["after.txt", "before.txt"]


def test_a_record_transformed_after_its_source_went_elsewhere_is_left_alone(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """A transform outlasts the lease: what it made is not written to the record, which
    is the new owner's now (it transforms it itself)."""
    dsn = postgres_server.create_database()
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "slow.txt").write_text("slow")
    settings = collector(tmp_path, dsn, "a", lease=3.0, transforms=("gate", "org"))
    stop = threading.Event()
    with Engine(settings, plugin_manager(GatePlugin())) as a:
        runner = threading.Thread(target=a.run, args=(stop,))
        runner.start()
        try:
            assert GateTransform.entered.wait(30)
            take_over(dsn, "b")
            wait_for(lambda: not a.ownership.owns("inbox"), timeout=30)
            GateTransform.gate.set()
            assert GateTransform.left.wait(30)
            wait_for(lambda: not a._pool.busy(), timeout=30)
            entry = a.ledger.find("inbox", "slow.txt")
            assert entry is not None
            assert entry.state == "received"
            assert entry.record().name == "slow"  # b transforms it from the start
        finally:
            stop.set()
            runner.join(30)
