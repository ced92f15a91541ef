"""Engine plumbing for the http_feed tests: a journaled SQLite sink and run helpers.

The sink is a real plugin (registered through ``ingest_register_sinks``) that stores
each delivered record and its file bytes in its own SQLite file, in journaled steps with
reconciliation by ``(source_ref, version)``, so a process killed mid-run and restarted
still leaves every record exactly once. Used in-process and by the restart test's
subprocess (``python -m tests.http_feed.http_feed_helpers CONFIG.json``).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pipeline
from pipeline import DeliveryResult, DocumentRecord, Sink, SinkOptions, StepJournal
from pipeline.runner import Engine, RunSummary
from pipeline.settings import Settings, parse_settings

# built-ins these tests do not use (the feed is the only source; the sink is ours)
BLOCK = ("plugins.filesystem", "plugins.imap", "plugins.routing", "plugins.itglue_sink")


class StoreOptions(SinkOptions):
    db: str


class StoreSink(Sink):
    """Delivers to a SQLite file: one row per record, one per file (with its bytes)."""

    options_model = StoreOptions

    def __init__(self, name: str, options: Any, context: Any) -> None:
        super().__init__(name, options, context)
        with self._connect() as c:
            c.executescript(
                "CREATE TABLE IF NOT EXISTS docs (id INTEGER PRIMARY KEY, source_ref TEXT,"
                " version TEXT, name TEXT, organization TEXT, sections TEXT,"
                " UNIQUE (source_ref, version));"
                "CREATE TABLE IF NOT EXISTS files (doc INTEGER, k INTEGER, file_name TEXT,"
                " mime TEXT, content BLOB, PRIMARY KEY (doc, k));"
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.options.db, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        conn = self._connect()
        try:
            doc = journal.get("document")
            if doc is None:
                with conn:
                    conn.execute(
                        "INSERT OR IGNORE INTO docs (source_ref, version, name, organization,"
                        " sections) VALUES (?,?,?,?,?)",
                        (
                            record.source_ref,
                            record.version,
                            record.name,
                            record.organization,
                            json.dumps([s.content for s in record.sections]),
                        ),
                    )
                row = conn.execute(
                    "SELECT id FROM docs WHERE source_ref=? AND version=?",
                    (record.source_ref, record.version),
                ).fetchone()
                doc = str(row[0])
                journal.record("document", doc)
            for k, blob in enumerate(record.files):
                with conn:
                    conn.execute(
                        "INSERT OR IGNORE INTO files VALUES (?,?,?,?,?)",
                        (int(doc), k, blob.file_name, blob.claimed_mime, blob.path.read_bytes()),
                    )
        finally:
            conn.close()
        return DeliveryResult(None, "docs", doc, requests=1 + len(record.files))


class StorePlugin:
    @pipeline.hookimpl
    def ingest_register_sinks(self, register: Any) -> None:
        register("store", StoreSink)


def make_settings(state_dir: Path, db: Path, *sources: dict[str, Any]) -> Settings:
    return parse_settings(
        {
            "state": {"dir": str(state_dir)},
            "pipeline": {
                "transforms": [],
                "sink": "store",
                "workers": 2,
                "retry_base": 0.05,
                "retry_max": 0.2,
                "once_timeout": 60,
            },
            "sinks": {"store": {"db": str(db)}},
            "sources": list(sources),
        }
    )


def engine(settings: Settings) -> Engine:
    from pipeline.plugins import get_plugin_manager

    pm = get_plugin_manager(load_entrypoints=False, block=BLOCK, extra=[StorePlugin()])
    return Engine(settings, pm)


def run_once(settings: Settings) -> tuple[RunSummary, Any]:
    """One ``run_once`` through the real engine; returns the summary and the source's
    last poll report."""
    with engine(settings) as eng:
        summary = eng.run_once()
        src = next(iter(eng.sources.values()))
        return summary, src.last_poll


def stored(db: Path) -> list[dict[str, Any]]:
    """Every delivered record, oldest first, with its files' bytes."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        docs = conn.execute(
            "SELECT id, source_ref, version, name, organization, sections FROM docs ORDER BY id"
        ).fetchall()
        out = []
        for doc_id, ref, version, name, org, sections in docs:
            files = conn.execute(
                "SELECT file_name, mime, content FROM files WHERE doc=? ORDER BY k", (doc_id,)
            ).fetchall()
            out.append(
                {
                    "ref": ref,
                    "version": version,
                    "name": name,
                    "organization": org,
                    "sections": json.loads(sections),
                    "files": [(f, m, bytes(c)) for f, m, c in files],
                }
            )
        return out
    finally:
        conn.close()


if __name__ == "__main__":  # the restart test's child process
    cfg = json.loads(Path(sys.argv[1]).read_text())
    st = make_settings(Path(cfg["state_dir"]), Path(cfg["db"]), cfg["source"])
    summary, _ = run_once(st)
    print(json.dumps(summary.to_dict()))
