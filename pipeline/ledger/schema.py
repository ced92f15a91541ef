"""The ledger's tables, its record states and one row as the code sees it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from ..records import DocumentRecord
from ..sources import RecordState

ACTIVE_STATES: tuple[RecordState, ...] = ("received", "ready", "delivering")
FINAL_STATES: tuple[RecordState, ...] = ("done", "duplicate", "failed")
ALL_STATES: tuple[RecordState, ...] = (
    "received",
    "ready",
    "duplicate",
    "delivering",
    "delivered",
    "done",
    "failed",
)
# Records whose spool bytes still count against the spool's bounds.
SPOOLED_STATES: tuple[RecordState, ...] = ("received", "ready", "delivering", "delivered")

DedupeScope = Literal["organization", "global"]

MIGRATIONS = [
    """
    CREATE TABLE ledger_records (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        source_ref TEXT NOT NULL,
        version TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        record TEXT NOT NULL,
        original TEXT NOT NULL,
        content_hash TEXT,
        organization_id TEXT,
        target_key TEXT NOT NULL DEFAULT '',
        size INTEGER NOT NULL DEFAULT 0,
        spooled INTEGER NOT NULL DEFAULT 1,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        reason TEXT,
        result TEXT,
        duplicate_of TEXT,
        acked INTEGER NOT NULL DEFAULT 0,
        work INTEGER NOT NULL DEFAULT 1,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (source, source_ref, version)
    );
    CREATE INDEX ledger_records_work ON ledger_records (work, next_attempt_at);
    CREATE INDEX ledger_records_state ON ledger_records (state, source);
    CREATE INDEX ledger_records_hash ON ledger_records (content_hash, organization_id);
    CREATE INDEX ledger_records_updated ON ledger_records (updated_at);
    CREATE TABLE ledger_steps (
        record_id INTEGER NOT NULL REFERENCES ledger_records (id) ON DELETE CASCADE,
        step TEXT NOT NULL,
        value TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        PRIMARY KEY (record_id, step)
    );
    CREATE TABLE ledger_blobs (
        record_id INTEGER NOT NULL REFERENCES ledger_records (id) ON DELETE CASCADE,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (record_id, sha256)
    );
    CREATE INDEX ledger_blobs_sha ON ledger_blobs (sha256);
    CREATE TABLE ledger_checkpoints (
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (source, key)
    )
    """,
    # "which record journaled this value" (LedgerJournal.taken_by_another): a sink's
    # reconciliation must never adopt what another record made.
    "CREATE INDEX ledger_steps_value ON ledger_steps (step, value)",
]

COLUMNS = (
    "id, source, source_ref, version, state, record, original, content_hash, organization_id,"
    " target_key, size, spooled, attempts, next_attempt_at, reason, result, duplicate_of,"
    " acked, created_at, updated_at"
)


def needs_work(state: str, acked: bool) -> bool:
    """Whether the engine still has something to do for a record in ``state``."""
    if state in ("received", "ready", "delivering", "delivered"):
        return True
    if state in ("duplicate", "failed"):
        return not acked
    return False


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger row."""

    id: int
    source: str
    source_ref: str
    version: str
    state: RecordState
    record_json: str
    original_json: str
    content_hash: str | None
    organization_id: str | None
    target_key: str
    size: int
    spooled: bool
    attempts: int
    next_attempt_at: float
    reason: str | None
    result: str | None
    duplicate_of: str | None
    acked: bool
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> LedgerEntry:
        return cls(
            id=row[0],
            source=row[1],
            source_ref=row[2],
            version=row[3],
            state=cast(RecordState, row[4]),
            record_json=row[5],
            original_json=row[6],
            content_hash=row[7],
            organization_id=row[8],
            target_key=row[9],
            size=row[10],
            spooled=bool(row[11]),
            attempts=row[12],
            next_attempt_at=row[13],
            reason=row[14],
            result=row[15],
            duplicate_of=row[16],
            acked=bool(row[17]),
            created_at=row[18],
            updated_at=row[19],
        )

    def record(self) -> DocumentRecord:
        """The record as the pipeline last stored it, with ``id`` set."""
        rec = DocumentRecord.model_validate_json(self.record_json)
        rec.id = self.id
        return rec

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (for ``status --json``)."""
        return {
            "id": self.id,
            "source": self.source,
            "source_ref": self.source_ref,
            "version": self.version,
            "state": self.state,
            "organization_id": self.organization_id,
            "attempts": self.attempts,
            "reason": self.reason,
            "acked": self.acked,
            "duplicate_of": self.duplicate_of,
            "result": json.loads(self.result) if self.result else None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
