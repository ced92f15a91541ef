"""Test plugins for the engine tests: a directory source and a journaled SQLite sink.

They are real plugins (registered through the hooks like any other), kept small: the
source emits every file of a folder and moves it aside on ack/nack; the sink delivers to
a separate SQLite file standing in for an external system, in two journaled steps
(create the document, then store each file), reconciling a create whose journal entry
was lost by name, exactly as the IT Glue sink must. Used in-process and by the crash
test's subprocess.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pipeline
from pipeline import (
    DeliveryResult,
    DocumentRecord,
    FileInput,
    PathField,
    PermanentError,
    RecordDraft,
    Rejected,
    Sink,
    SinkOptions,
    Source,
    SourceOptions,
    StepJournal,
    Transform,
    TransformOptions,
    TransientError,
)

# Built-ins the engine tests do not need (blocked modules are not even imported).
BUILTINS = (
    "plugins.filesystem",
    "plugins.imap",
    "plugins.http_feed",
    "plugins.mime",
    "plugins.routing",
    "plugins.title",
    "plugins.itglue_sink",
)


class DirOptions(SourceOptions):
    path: PathField  # relative: from the configuration file's folder
    organization_id: str | None = None


class DirSource(Source):
    """Every regular file directly in ``path``; acked -> ``.done/``, nacked -> ``.failed/``."""

    options_model = DirOptions
    poll_interval = 0.1
    calls: list[tuple[str, str, str]] = []  # (kind, source_ref, detail) -- in-process tests
    lock = threading.Lock()

    def scan(self) -> None:
        root = Path(self.options.path)
        for p in sorted(root.iterdir()):
            if self.context.stopping.is_set():
                return
            if not p.is_file():
                continue
            draft = RecordDraft(
                source_ref=p.name,
                name=p.stem,
                files=[FileInput(file_name=p.name, path=p)],
                metadata={"organization_id": self.options.organization_id},
            )
            self.context.emit(draft)

    def _move(self, record: DocumentRecord, folder: str) -> None:
        root = Path(self.options.path)
        src = root / record.source_ref
        dst_dir = root / folder
        dst_dir.mkdir(exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # idempotent: moved before
            os.replace(src, dst_dir / record.source_ref)

    def ack(self, record: DocumentRecord, outcome: Literal["delivered", "duplicate"]) -> None:
        with self.lock:
            DirSource.calls.append(("ack", record.source_ref, outcome))
        self._move(record, ".done")

    def nack(self, record: DocumentRecord, reason: str) -> None:
        with self.lock:
            DirSource.calls.append(("nack", record.source_ref, reason))
        self._move(record, ".failed")


class OrgOptions(TransformOptions):
    default: str = "1"
    instance_from_name: bool = False  # "a-1.txt" goes to instance "a"


class OrgTransform(Transform):
    """Routes to the organization id in the record's metadata (or a default)."""

    options_model = OrgOptions

    def routes_alone(self, before: Sequence[str]) -> bool:
        return not before  # it reads only what the source set

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        org = record.metadata.get("organization_id") or self.options.default
        update: dict[str, Any] = {"organization_id": str(org)}
        if self.options.instance_from_name:
            update["instance"] = record.source_ref.split("-")[0]
        return record.model_copy(update=update)


class TagOptions(TransformOptions):
    tag: str = ""


class TagTransform(Transform):
    """Appends its tag to metadata["trail"] (checks the configured order)."""

    options_model = TagOptions

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        trail = [*record.metadata.get("trail", []), self.options.tag or self.name]
        return record.model_copy(update={"metadata": {**record.metadata, "trail": trail}})


class OutcomeOptions(TransformOptions):
    outcome: str = "ok"


class OutcomeTransform(Transform):
    """Reports ``outcome`` in ``metadata["transform_outcomes"]`` (as ``extract`` does)
    and counts its calls in ``metadata["runs"]``."""

    options_model = OutcomeOptions

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        outcomes = {**record.metadata.get("transform_outcomes", {})}
        outcomes[self.name] = self.options.outcome
        metadata = {**record.metadata, "transform_outcomes": outcomes, "runs": 1}
        return record.model_copy(update={"metadata": metadata})


class PickyTransform(Transform):
    """Rejects names containing "reject", raises a bug on "boom"."""

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        if "reject" in record.name:
            raise Rejected(f"{record.name} is not wanted here")
        if "boom" in record.name:
            raise KeyError("oops")
        return record


class StoreOptions(SinkOptions):
    db: str
    transient_failures: int = 0  # per record, before it succeeds
    step_delay: float = 0.0  # seconds between the two steps (widens crash windows)


class StoreSink(Sink):
    """Delivers to an external SQLite store in journaled steps."""

    options_model = StoreOptions

    def __init__(self, name: str, options: Any, context: Any) -> None:
        super().__init__(name, options, context)
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        with contextlib.closing(self._connect()) as c:
            c.executescript(
                "CREATE TABLE IF NOT EXISTS documents (id INTEGER PRIMARY KEY, org TEXT,"
                " name TEXT, source_ref TEXT);"
                "CREATE TABLE IF NOT EXISTS attachments (id INTEGER PRIMARY KEY,"
                " document_id INTEGER, file_name TEXT, size INTEGER, content BLOB);"
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.options.db, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def find_existing(self, record: DocumentRecord) -> str | None:
        return None

    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        if "permanent" in record.name:
            raise PermanentError("the store refuses this one (422)")
        if "crash" in record.name:
            raise RuntimeError("sink bug")
        with self._lock:
            n = self._attempts.get(record.source_ref, 0)
            self._attempts[record.source_ref] = n + 1
        if n < self.options.transient_failures or "flaky" in record.name:
            raise TransientError("store busy (503)", retry_after=0.01)
        conn = self._connect()
        try:
            doc = journal.get("document")
            if doc is None:
                # reconcile first: a create whose journal entry was lost (crash) exists
                row = conn.execute(
                    "SELECT id FROM documents WHERE source_ref=? AND org IS ?",
                    (record.source_ref, record.organization_id),
                ).fetchone()
                if row is None:
                    cur = conn.execute(
                        "INSERT INTO documents (org, name, source_ref) VALUES (?,?,?)",
                        (record.organization_id, record.name, record.source_ref),
                    )
                    row = (cur.lastrowid,)
                doc = str(row[0])
                journal.record("document", doc)
            if self.options.step_delay:
                time.sleep(self.options.step_delay)  # deliberate: a slow sink
            ids = []
            for k, blob in enumerate(record.files):
                att = journal.get(f"attachment:{k}")
                if att is None:
                    row = conn.execute(
                        "SELECT id FROM attachments WHERE document_id=? AND file_name=? AND size=?",
                        (int(doc), blob.file_name, blob.size),
                    ).fetchone()
                    if row is None:
                        cur = conn.execute(
                            "INSERT INTO attachments (document_id, file_name, size, content)"
                            " VALUES (?,?,?,?)",
                            (int(doc), blob.file_name, blob.size, blob.path.read_bytes()),
                        )
                        row = (cur.lastrowid,)
                    att = str(row[0])
                    journal.record(f"attachment:{k}", att)
                ids.append(att)
        finally:
            conn.close()
        return DeliveryResult(
            organization_id=record.organization_id,
            resource_type="documents",
            resource_id=doc,
            attachment_ids=ids,
            requests=1 + len(ids),
        )


class EnginePlugins:
    """The hook implementations registering the classes above."""

    @pipeline.hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        register("dir", DirSource)

    @pipeline.hookimpl
    def ingest_register_transforms(self, register: Any) -> None:
        register("org", OrgTransform)
        register("tag1", TagTransform)
        register("tag2", TagTransform)
        register("picky", PickyTransform)
        register("outcome", OutcomeTransform)

    @pipeline.hookimpl
    def ingest_register_sinks(self, register: Any) -> None:
        register("store", StoreSink)


class Recorder:
    """Collects outcome hook calls."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.duplicate: list[tuple[str, str]] = []
        self.failed: list[tuple[str, str, bool]] = []

    @pipeline.hookimpl
    def ingest_record_delivered(self, record: DocumentRecord, result: DeliveryResult) -> None:
        self.delivered.append(record.source_ref)

    @pipeline.hookimpl
    def ingest_record_duplicate(self, record: DocumentRecord, existing: str) -> None:
        self.duplicate.append((record.source_ref, existing))

    @pipeline.hookimpl
    def ingest_record_failed(self, record: DocumentRecord, reason: str, permanent: bool) -> None:
        self.failed.append((record.source_ref, reason, permanent))


def plugin_manager(*extra: object) -> Any:
    from pipeline.plugins import get_plugin_manager

    return get_plugin_manager(
        load_entrypoints=False, block=BUILTINS, extra=[EnginePlugins(), *extra]
    )


def store_documents(db: Path) -> list[tuple[int, str | None, str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT id, org, name, source_ref FROM documents ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def store_attachments(db: Path) -> list[tuple[int, int, str, bytes]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT id, document_id, file_name, content FROM attachments ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
