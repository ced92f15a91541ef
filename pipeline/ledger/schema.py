"""The ledger's tables (migrated as component ``"ledger"``) and its record states."""

from __future__ import annotations

from typing import Literal

from core_client.database import Dialect

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

# Which collector ([state] collector) took each record in: several share one ledger on
# PostgreSQL. Records from before have '' (a SQLite ledger names its collector on open).
COLLECTOR_MIGRATION = "ALTER TABLE ledger_records ADD COLUMN collector TEXT NOT NULL DEFAULT ''"

# The landed records with given inputs (LedgerQueries.landed_inputs, a batch of emits: up
# to 500 inputs per statement) by both terms of the question: with ``input_hash IN
# (...)`` SQLite's planner, which has no statistics, preferred the state index and read
# every landed record (20 ms for 64 inputs among 3,000; 0.4 ms with this one).
LANDED_MIGRATION = """
DROP INDEX ledger_records_input;
CREATE INDEX ledger_records_landed ON ledger_records (input_hash, state)
"""

SQLITE_MIGRATIONS = [
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
    COLLECTOR_MIGRATION,
    # the content as it arrived (before the transforms): a record whose input a landed
    # record had is found a duplicate without being transformed again (RecordFlow)
    """
    ALTER TABLE ledger_records ADD COLUMN input_hash TEXT;
    CREATE INDEX ledger_records_input ON ledger_records (input_hash, organization_id)
    """,
    LANDED_MIGRATION,
]

# The same schema on PostgreSQL: 64-bit ids and sizes, DOUBLE PRECISION timestamps
# (REAL is float4 there: seconds since 1970 would lose their fractions).
POSTGRESQL_MIGRATIONS = [
    """
    CREATE TABLE ledger_records (
        id BIGSERIAL PRIMARY KEY,
        source TEXT NOT NULL,
        source_ref TEXT NOT NULL,
        version TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        record TEXT NOT NULL,
        original TEXT NOT NULL,
        content_hash TEXT,
        organization_id TEXT,
        target_key TEXT NOT NULL DEFAULT '',
        size BIGINT NOT NULL DEFAULT 0,
        spooled INTEGER NOT NULL DEFAULT 1,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0,
        reason TEXT,
        result TEXT,
        duplicate_of TEXT,
        acked INTEGER NOT NULL DEFAULT 0,
        work INTEGER NOT NULL DEFAULT 1,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        UNIQUE (source, source_ref, version)
    );
    CREATE INDEX ledger_records_work ON ledger_records (work, next_attempt_at);
    CREATE INDEX ledger_records_state ON ledger_records (state, source);
    CREATE INDEX ledger_records_hash ON ledger_records (content_hash, organization_id);
    CREATE INDEX ledger_records_updated ON ledger_records (updated_at);
    CREATE TABLE ledger_steps (
        record_id BIGINT NOT NULL REFERENCES ledger_records (id) ON DELETE CASCADE,
        step TEXT NOT NULL,
        value TEXT NOT NULL,
        recorded_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (record_id, step)
    );
    CREATE TABLE ledger_blobs (
        record_id BIGINT NOT NULL REFERENCES ledger_records (id) ON DELETE CASCADE,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (record_id, sha256)
    );
    CREATE INDEX ledger_blobs_sha ON ledger_blobs (sha256);
    CREATE TABLE ledger_checkpoints (
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (source, key)
    )
    """,
    "CREATE INDEX ledger_steps_value ON ledger_steps (step, value)",
    COLLECTOR_MIGRATION,
    """
    ALTER TABLE ledger_records ADD COLUMN input_hash TEXT;
    CREATE INDEX ledger_records_input ON ledger_records (input_hash, organization_id)
    """,
    LANDED_MIGRATION,
]

MIGRATIONS: dict[Dialect, list[str]] = {
    "sqlite": SQLITE_MIGRATIONS,
    "postgresql": POSTGRESQL_MIGRATIONS,
}

COLUMNS = (
    "id, source, source_ref, version, state, record, original, content_hash, organization_id,"
    " target_key, size, spooled, attempts, next_attempt_at, reason, result, duplicate_of,"
    " acked, created_at, updated_at, collector"
)


def needs_work(state: str, acked: bool) -> bool:
    """Whether the engine still has something to do for a record in ``state``."""
    if state in ("received", "ready", "delivering", "delivered"):
        return True
    if state in ("duplicate", "failed"):
        return not acked
    return False
