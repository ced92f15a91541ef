"""Shared pieces of the drop-folder tests: a small SQLite sink, engine set-up, waiting.

The sink stands in for IT Glue where delivery to IT Glue is not the point: it stores
each delivered record (reference, version, organization, file name, sha256 of the bytes
it read from the spool) in a SQLite file, so in-process tests and the crash test's
subprocess can both be checked afterwards. It is a real plugin, registered through the
hooks like any other.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pipeline
from pipeline import (
    DeliveryResult,
    DocumentRecord,
    Sink,
    SinkOptions,
    StepJournal,
    Transform,
    TransformOptions,
)
from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import Settings, parse_settings

# Built-ins these tests do not need (blocked modules are not imported at all).
UNUSED_BUILTINS = (
    "plugins.imap",
    "plugins.http_feed",
    "plugins.routing",
    "plugins.title",
    "plugins.itglue_sink",
)


class StoreOptions(SinkOptions):
    db: str
    delay: float = 0.0  # seconds per delivery (keeps records in flight longer)


class StoreSink(Sink):
    """Delivers into a SQLite file; one row per delivered record."""

    options_model = StoreOptions

    def __init__(self, name: str, options: Any, context: Any) -> None:
        super().__init__(name, options, context)
        with contextlib.closing(connect_store(options.db)) as c:
            c.execute(
                "CREATE TABLE IF NOT EXISTS delivered (id INTEGER PRIMARY KEY, source_ref TEXT,"
                " version TEXT, name TEXT, organization TEXT, file_name TEXT, size INTEGER,"
                " sha256 TEXT, relative_path TEXT)"
            )

    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        done = journal.get("row")
        if done is not None:
            return DeliveryResult(record.organization_id, "documents", done)
        if self.options.delay:
            time.sleep(self.options.delay)  # deliberate: a slow sink
        blob = record.files[0]
        digest = hashlib.sha256(blob.path.read_bytes()).hexdigest()
        with contextlib.closing(connect_store(self.options.db)) as c:
            # reconcile a row whose journal entry was lost in a crash
            row = c.execute(
                "SELECT id FROM delivered WHERE source_ref=? AND version=?",
                (record.source_ref, record.version),
            ).fetchone()
            if row is None:
                cur = c.execute(
                    "INSERT INTO delivered (source_ref, version, name, organization, file_name,"
                    " size, sha256, relative_path) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        record.source_ref,
                        record.version,
                        record.name,
                        record.organization,
                        blob.file_name,
                        blob.size,
                        digest,
                        record.metadata.get("relative_path"),
                    ),
                )
                row = (cur.lastrowid,)
        journal.record("row", str(row[0]))
        return DeliveryResult(record.organization_id, "documents", str(row[0]), requests=1)


class OrgIdTransform(Transform):
    """Uses the organization name as the organization id (no IT Glue lookup)."""

    options_model = TransformOptions

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        return record.model_copy(update={"organization_id": record.organization or "none"})


class FsTestPlugins:
    @pipeline.hookimpl
    def ingest_register_transforms(self, register: Any) -> None:
        register("orgid", OrgIdTransform)

    @pipeline.hookimpl
    def ingest_register_sinks(self, register: Any) -> None:
        register("store", StoreSink)


def connect_store(db: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(db), timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


class Store:
    """Read side of the test sink's database."""

    def __init__(self, db: Path) -> None:
        self.db = db

    def rows(self) -> list[dict[str, Any]]:
        if not self.db.exists():
            return []
        with contextlib.closing(connect_store(self.db)) as c:
            c.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in c.execute("SELECT * FROM delivered ORDER BY id")]
            except sqlite3.OperationalError:
                return []

    def refs(self) -> list[str]:
        return [r["source_ref"] for r in self.rows()]

    def by_ref(self, ref: str) -> list[dict[str, Any]]:
        return [r for r in self.rows() if r["source_ref"] == ref]


def settings_for(
    tmp: Path,
    drop: Path,
    *,
    transforms: tuple[str, ...] = ("orgid",),
    sink_delay: float = 0.0,
    pipeline_opts: dict[str, Any] | None = None,
    transform_opts: dict[str, Any] | None = None,
    organization: str | None = None,
    **source_opts: Any,
) -> Settings:
    source: dict[str, Any] = {"name": "drop", "type": "filesystem", "path": str(drop)}
    if organization is not None:
        source["organization"] = organization
    source["stability_delay"] = 0.3
    source.update(source_opts)
    return parse_settings(
        {
            "state": {"dir": str(tmp / "state")},
            "pipeline": {
                "transforms": list(transforms),
                "sink": "store",
                "workers": 2,
                "retry_base": 0.05,
                "retry_max": 0.5,
                "once_timeout": 60,
                "shutdown_timeout": 5,
                **(pipeline_opts or {}),
            },
            "transforms": transform_opts or {},
            "sinks": {"store": {"db": str(tmp / "store.db"), "delay": sink_delay}},
            "sources": [source],
        }
    )


def make_engine(settings: Settings) -> Engine:
    pm = get_plugin_manager(load_entrypoints=False, block=UNUSED_BUILTINS, extra=[FsTestPlugins()])
    settings.state.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Engine(settings, pm)


@contextlib.contextmanager
def running(engine: Engine) -> Iterator[Engine]:
    """The daemon (``Engine.run``) in a thread for the duration of the block."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            engine.run(stop)
        except BaseException as e:  # surfaced after the block
            errors.append(e)

    t = threading.Thread(target=target, name="engine-run", daemon=True)
    t.start()
    try:
        yield engine
    finally:
        stop.set()
        t.join(30)
        engine.close()
    assert not t.is_alive(), "engine did not stop"
    assert not errors, errors


def observer_started(engine: Engine, source: str = "drop") -> bool:
    """Whether the source's observer watches its folder: files dropped from now on arrive
    as events (what the watch tests exercise), not through the start-up walk."""
    return bool(engine.sources[source]._watch_ok())


def files_under(folder: Path) -> list[Path]:
    """Files (and links) below ``folder``; os.walk, because the engine may remove an
    empty claim folder while this looks (rglob raises for a folder that vanished)."""
    found: list[Path] = []
    for parent, dirs, files in os.walk(folder):
        found += [Path(parent, f) for f in files]
        found += [Path(parent, d) for d in dirs if Path(parent, d).is_symlink()]
    return sorted(found)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ledger_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every ledger row of the instance (read straight from its SQLite file)."""
    with contextlib.closing(sqlite3.connect(settings.database_path, timeout=30)) as c:
        c.row_factory = sqlite3.Row
        return [
            dict(r)
            for r in c.execute(
                "SELECT source_ref, version, state, reason, acked FROM ledger_records ORDER BY id"
            )
        ]
