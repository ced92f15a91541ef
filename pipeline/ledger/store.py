"""The ledger's reads and writes: one ``BEGIN IMMEDIATE`` transaction per state change."""

# SQL here is assembled only from this module's constant fragments and "?" placeholders;
# every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, cast

from core_client.sqlite import connect, migrate

from ..records import DocumentRecord
from ..sources import RecordState
from .schema import (
    COLUMNS,
    MIGRATIONS,
    SPOOLED_STATES,
    DedupeScope,
    LedgerEntry,
    needs_work,
)


class Ledger:
    """The ledger tables of the instance database.

    Thread-safe: one connection shared under a lock (SQLite serialises writers anyway;
    other processes, such as ``itglue-ingest status`` next to a daemon, wait on the busy
    timeout).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        self._lock = threading.RLock()
        with self._lock:
            migrate(self._conn, "ledger", MIGRATIONS)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def get(self, record_id: int) -> LedgerEntry | None:
        rows = self._query(f"SELECT {COLUMNS} FROM ledger_records WHERE id=?", (record_id,))
        return LedgerEntry.from_row(rows[0]) if rows else None

    def find(self, source: str, source_ref: str, version: str = "") -> LedgerEntry | None:
        rows = self._query(
            f"SELECT {COLUMNS} FROM ledger_records WHERE source=? AND source_ref=? AND version=?",
            (source, source_ref, version),
        )
        return LedgerEntry.from_row(rows[0]) if rows else None

    def state_of(self, source: str, source_ref: str, version: str = "") -> RecordState | None:
        rows = self._query(
            "SELECT state FROM ledger_records WHERE source=? AND source_ref=? AND version=?",
            (source, source_ref, version),
        )
        return cast(RecordState, rows[0][0]) if rows else None

    # ------------------------------------------------------------------ new records

    def insert(
        self,
        record: DocumentRecord,
        *,
        state: Literal["received", "failed"] = "received",
        reason: str | None = None,
        blobs: Iterable[str] = (),
    ) -> tuple[int, bool, RecordState]:
        """Insert a new record; ``(id, inserted, state)``.

        When ``(source, source_ref, version)`` exists already nothing changes and
        ``inserted`` is False (idempotent emit). A ``failed`` insert is a record whose
        input could not be spooled (``spooled`` = 0).
        """
        now = time.time()
        doc = record.model_dump_json(exclude={"id"})
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO ledger_records (source, source_ref, version, state, record,"
                " original, content_hash, organization_id, size, spooled, reason, acked, work,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,0,1,?,?)"
                " ON CONFLICT (source, source_ref, version) DO NOTHING",
                (
                    record.source,
                    record.source_ref,
                    record.version,
                    state,
                    doc,
                    doc,
                    record.content_hash,
                    record.organization_id,
                    record.total_size,
                    int(state == "received"),
                    reason,
                    now,
                    now,
                ),
            )
            if cur.rowcount == 0:
                row = c.execute(
                    "SELECT id, state FROM ledger_records"
                    " WHERE source=? AND source_ref=? AND version=?",
                    (record.source, record.source_ref, record.version),
                ).fetchone()
                return int(row[0]), False, cast(RecordState, row[1])
            record_id = int(cast(int, cur.lastrowid))
            c.executemany(
                "INSERT OR IGNORE INTO ledger_blobs (record_id, sha256) VALUES (?, ?)",
                [(record_id, sha) for sha in set(blobs)],
            )
            return record_id, True, state

    # ------------------------------------------------------------------ transitions

    def update(
        self,
        record_id: int,
        state: RecordState,
        *,
        record: DocumentRecord | None = None,
        reason: str | None = None,
        result: str | None = None,
        duplicate_of: str | None = None,
        acked: bool | None = None,
        next_attempt_at: float | None = None,
        attempts: int | None = None,
        target_key: str | None = None,
        expect: RecordState | None = None,
    ) -> bool:
        """Move a record to ``state`` (one transaction); None arguments leave columns as is.

        Reaching ``done`` or an acked ``duplicate`` releases the record's spool
        references (see :meth:`is_referenced`). With ``expect``, nothing changes unless
        the record is in that state (another process, ``itglue-ingest retry``, may have
        moved it meanwhile); returns whether the row changed.
        """
        now = time.time()
        sets = ["state=?", "updated_at=?"]
        params: list[Any] = [state, now]
        if record is not None:
            sets += ["record=?", "content_hash=?", "organization_id=?", "size=?"]
            params += [
                record.model_dump_json(exclude={"id"}),
                record.content_hash,
                record.organization_id,
                record.total_size,
            ]
        for column, value in (
            ("reason", reason),
            ("result", result),
            ("duplicate_of", duplicate_of),
            ("next_attempt_at", next_attempt_at),
            ("attempts", attempts),
            ("target_key", target_key),
        ):
            if value is not None:
                sets.append(f"{column}=?")
                params.append(value)
        if acked is not None:
            sets.append("acked=?")
            params.append(int(acked))
        if state == "done":
            sets.append("original=''")  # only failed records are ever reset to it
        with self.transaction() as c:
            if acked is None:
                row = c.execute("SELECT acked FROM ledger_records WHERE id=?", (record_id,))
                current = row.fetchone()
                is_acked = bool(current[0]) if current else False
            else:
                is_acked = acked
            sets.append("work=?")
            params.append(int(needs_work(state, is_acked)))
            where = "id=?" if expect is None else "id=? AND state=?"
            args = (record_id,) if expect is None else (record_id, expect)
            cur = c.execute(
                f"UPDATE ledger_records SET {', '.join(sets)} WHERE {where}", (*params, *args)
            )
            if cur.rowcount == 0:
                return False
            if state == "done" or (state == "duplicate" and is_acked):
                c.execute("DELETE FROM ledger_blobs WHERE record_id=?", (record_id,))
            return True

    def postpone(
        self, record_id: int, until: float, *, reason: str | None = None, count_attempt: bool = True
    ) -> int:
        """Leave the record in its state, due again at ``until``; returns the attempts."""
        with self.transaction() as c:
            c.execute(
                "UPDATE ledger_records SET attempts=attempts+?, next_attempt_at=?,"
                " reason=COALESCE(?, reason), updated_at=? WHERE id=?",
                (int(count_attempt), until, reason, time.time(), record_id),
            )
            row = c.execute("SELECT attempts FROM ledger_records WHERE id=?", (record_id,))
            return int(row.fetchone()[0])

    def claim_delivery(
        self,
        record_id: int,
        *,
        content_hash: str,
        organization_id: str | None,
        target_key: str,
        scope: DedupeScope,
        check_duplicates: bool = True,
        record: DocumentRecord | None = None,
    ) -> tuple[Literal["deliver", "duplicate", "wait"], LedgerEntry | None]:
        """Atomically decide a ready record's fate: a duplicate of an earlier delivery,
        wait (the same content is being delivered right now by another worker), or
        ``delivering``. Keeps two workers from uploading the same content twice.

        ``record`` (the transformed record) is stored in the same transaction -- as
        ``ready`` when the answer is duplicate or wait -- which saves the separate commit
        of the ``ready`` state on the common path.
        """
        now = time.time()
        with self.transaction() as c:
            decision: Literal["deliver", "duplicate", "wait"] = "deliver"
            found: LedgerEntry | None = None
            if check_duplicates:
                where = "content_hash=? AND id<>?"
                params: list[Any] = [content_hash, record_id]
                if scope == "organization":
                    where += " AND organization_id IS ? AND target_key=?"
                    params += [organization_id, target_key]
                row = c.execute(
                    f"SELECT {COLUMNS} FROM ledger_records WHERE {where}"
                    " AND state IN ('delivered', 'done', 'delivering')"
                    " ORDER BY state='delivering', id LIMIT 1",
                    params,
                ).fetchone()
                if row is not None:
                    found = LedgerEntry.from_row(row)
                    decision = "wait" if found.state == "delivering" else "duplicate"
            state = "delivering" if decision == "deliver" else "ready"
            if record is not None:
                c.execute(
                    "UPDATE ledger_records SET state=?, record=?, content_hash=?,"
                    " organization_id=?, size=?, target_key=?, work=1, updated_at=? WHERE id=?",
                    (
                        state,
                        record.model_dump_json(exclude={"id"}),
                        record.content_hash,
                        record.organization_id,
                        record.total_size,
                        target_key,
                        now,
                        record_id,
                    ),
                )
            elif decision == "deliver":
                c.execute(
                    "UPDATE ledger_records SET state='delivering', work=1, updated_at=? WHERE id=?",
                    (now, record_id),
                )
            return decision, found

    # ------------------------------------------------------------------ work queries

    def due(self, now: float, limit: int, exclude: Iterable[int] = ()) -> list[int]:
        """Ids of records the engine should work on now (oldest due first), a batch at
        a time so a huge backlog is never loaded at once."""
        skip = list(exclude)
        marks = ",".join("?" * len(skip))
        not_in = f" AND id NOT IN ({marks})" if skip else ""
        rows = self._query(
            "SELECT id FROM ledger_records WHERE work=1 AND next_attempt_at<=?"
            f"{not_in} ORDER BY next_attempt_at, id LIMIT ?",
            (now, *skip, limit),
        )
        return [int(r[0]) for r in rows]

    def next_due_at(self) -> float | None:
        rows = self._query("SELECT MIN(next_attempt_at) FROM ledger_records WHERE work=1")
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def count_active(self, sources: Iterable[str] | None = None) -> int:
        """Records not yet delivered, duplicate or failed (including waiting retries)."""
        sql = "SELECT COUNT(*) FROM ledger_records WHERE state IN ('received','ready','delivering')"
        params: list[Any] = []
        if sources is not None:
            names = list(sources)
            sql += f" AND source IN ({','.join('?' * len(names))})"
            params += names
        return int(self._query(sql, params)[0][0])

    def count_unacked_due(self, now: float) -> int:
        """Finished records whose source post-action is due (not yet acked/nacked)."""
        rows = self._query(
            "SELECT COUNT(*) FROM ledger_records WHERE work=1 AND next_attempt_at<=?"
            " AND state IN ('delivered','duplicate','failed')",
            (now,),
        )
        return int(rows[0][0])

    def delivered_unacked(self, limit: int = 1000) -> list[int]:
        """Records delivered but whose source was not told yet (crash before the ack)."""
        rows = self._query(
            "SELECT id FROM ledger_records WHERE state='delivered' ORDER BY id LIMIT ?", (limit,)
        )
        return [int(r[0]) for r in rows]

    def spool_load(self, sources: Iterable[str] | None = None) -> tuple[int, int]:
        """(records, bytes) that hold spool space and count against its bounds; only of
        ``sources`` when given (the records of another source cannot be acked, so they
        cannot free space: counting them could block every emit for good)."""
        marks = ",".join("?" * len(SPOOLED_STATES))
        sql = (
            f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM ledger_records WHERE state IN ({marks})"
        )
        params: list[Any] = list(SPOOLED_STATES)
        if sources is not None:
            names = list(sources)
            sql += f" AND source IN ({','.join('?' * len(names))})"
            params += names
        rows = self._query(sql, params)
        return int(rows[0][0]), int(rows[0][1])

    def is_referenced(self, sha256: str) -> bool:
        """Whether a record that is not finished still needs the spool file ``sha256``."""
        rows = self._query("SELECT 1 FROM ledger_blobs WHERE sha256=? LIMIT 1", (sha256,))
        return bool(rows)

    def referenced_hashes(self) -> set[str]:
        return {str(r[0]) for r in self._query("SELECT DISTINCT sha256 FROM ledger_blobs")}

    def blobs_of(self, record_id: int) -> list[str]:
        rows = self._query("SELECT sha256 FROM ledger_blobs WHERE record_id=?", (record_id,))
        return [str(r[0]) for r in rows]

    # ------------------------------------------------------------------ reporting

    def counts(self) -> dict[str, dict[str, int]]:
        """``{source: {state: n}}`` over the whole ledger."""
        out: dict[str, dict[str, int]] = {}
        for source, state, n in self._query(
            "SELECT source, state, COUNT(*) FROM ledger_records GROUP BY source, state"
        ):
            out.setdefault(source, {})[state] = int(n)
        return out

    def counts_since(self, since: float) -> dict[str, dict[str, int]]:
        """``{source: {state: n}}`` of the records changed at or after ``since``."""
        out: dict[str, dict[str, int]] = {}
        for source, state, n in self._query(
            "SELECT source, state, COUNT(*) FROM ledger_records WHERE updated_at>=?"
            " GROUP BY source, state",
            (since,),
        ):
            out.setdefault(source, {})[state] = int(n)
        return out

    def failed(
        self, source: str | None = None, *, since: float | None = None, limit: int = 1000
    ) -> list[LedgerEntry]:
        """Failed records with their reasons, newest first."""
        sql = f"SELECT {COLUMNS} FROM ledger_records WHERE state='failed'"
        params: list[Any] = []
        if source is not None:
            sql += " AND source=?"
            params.append(source)
        if since is not None:
            sql += " AND updated_at>=?"
            params.append(since)
        sql += " ORDER BY updated_at DESC LIMIT ?"
        params.append(limit)
        return [LedgerEntry.from_row(r) for r in self._query(sql, params)]

    def waiting(self, limit: int = 100) -> list[LedgerEntry]:
        """Active records waiting for a retry (attempts > 0), soonest first."""
        rows = self._query(
            f"SELECT {COLUMNS} FROM ledger_records WHERE state IN"
            " ('received','ready','delivering') AND attempts>0"
            " ORDER BY next_attempt_at LIMIT ?",
            (limit,),
        )
        return [LedgerEntry.from_row(r) for r in rows]

    def requeue(
        self,
        *,
        source: str | None = None,
        ids: Iterable[int] = (),
        all_failed: bool = False,
    ) -> int:
        """Send failed records back to ``received`` (attempts reset, reason cleared) and
        make waiting retries due now. Selected by ``source``, by ``ids``, or every failed
        record with ``all_failed``; returns how many records were requeued.

        A record that failed before its input was spooled (unreadable, too large) has
        nothing to process again: its row is removed, so the source emits it afresh.
        """
        id_list = list(ids)
        if not (source or id_list or all_failed):
            return 0
        where: list[str] = []
        params: list[Any] = []
        if source is not None:
            where.append("source=?")
            params.append(source)
        if id_list:
            where.append(f"id IN ({','.join('?' * len(id_list))})")
            params += id_list
        cond = " AND ".join(where) if where else "1=1"
        now = time.time()
        with self.transaction() as c:
            gone = c.execute(
                f"DELETE FROM ledger_records WHERE state='failed' AND spooled=0 AND {cond}",
                params,
            ).rowcount
            requeued = c.execute(
                "UPDATE ledger_records SET state='received', record=original, attempts=0,"
                " next_attempt_at=0, reason=NULL, acked=0, work=1, updated_at=?"
                f" WHERE state='failed' AND {cond}",
                (now, *params),
            ).rowcount
            c.execute(
                "UPDATE ledger_records SET next_attempt_at=0, updated_at=?"
                f" WHERE state IN ('received','ready','delivering') AND {cond}",
                (now, *params),
            )
        return int(gone) + int(requeued)

    # ------------------------------------------------------------------ steps, checkpoints

    def journal(self, record_id: int) -> LedgerJournal:
        return LedgerJournal(self, record_id)

    def get_step(self, record_id: int, step: str) -> str | None:
        rows = self._query(
            "SELECT value FROM ledger_steps WHERE record_id=? AND step=?", (record_id, step)
        )
        return str(rows[0][0]) if rows else None

    def set_step(self, record_id: int, step: str, value: str) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT INTO ledger_steps (record_id, step, value, recorded_at) VALUES (?,?,?,?)"
                " ON CONFLICT (record_id, step) DO UPDATE SET value=excluded.value,"
                " recorded_at=excluded.recorded_at",
                (record_id, step, value, time.time()),
            )

    def step_taken(self, step: str, value: str, *, other_than: int) -> bool:
        """Whether a record other than ``other_than`` journaled ``value`` under a step
        matching ``step`` (a GLOB pattern: ``"attachment:*"``)."""
        rows = self._query(
            "SELECT 1 FROM ledger_steps WHERE step GLOB ? AND value=? AND record_id<>? LIMIT 1",
            (step, value, other_than),
        )
        return bool(rows)

    def steps(self, record_id: int) -> dict[str, str]:
        rows = self._query(
            "SELECT step, value FROM ledger_steps WHERE record_id=? ORDER BY recorded_at, step",
            (record_id,),
        )
        return {str(k): str(v) for k, v in rows}

    def get_checkpoint(self, source: str, key: str) -> str | None:
        rows = self._query(
            "SELECT value FROM ledger_checkpoints WHERE source=? AND key=?", (source, key)
        )
        return str(rows[0][0]) if rows else None

    def set_checkpoint(self, source: str, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT INTO ledger_checkpoints (source, key, value, updated_at) VALUES (?,?,?,?)"
                " ON CONFLICT (source, key) DO UPDATE SET value=excluded.value,"
                " updated_at=excluded.updated_at",
                (source, key, value, time.time()),
            )


class LedgerJournal:
    """The :class:`pipeline.sinks.StepJournal` of one record, backed by ``ledger_steps``."""

    def __init__(self, ledger: Ledger, record_id: int) -> None:
        self._ledger = ledger
        self.record_id = record_id

    def get(self, step: str) -> str | None:
        return self._ledger.get_step(self.record_id, step)

    def record(self, step: str, value: str) -> None:
        self._ledger.set_step(self.record_id, step, value)

    def steps(self) -> dict[str, str]:
        return self._ledger.steps(self.record_id)

    def taken_by_another(self, step: str, value: str) -> bool:
        """Whether another record's journal holds ``value`` under a step matching
        ``step`` (a GLOB pattern), e.g. the document or attachment it made: a sink's
        reconciliation must not adopt it, even after a restart, when the sink's in-memory
        knowledge is gone."""
        return self._ledger.step_taken(step, value, other_than=self.record_id)
