"""Records entering the ledger and moving between states (each change one transaction;
durable once :meth:`~pipeline.ledger.store.LedgerStore.sync` returns)."""

# SQL here is assembled only from this package's constant fragments and "?" placeholders;
# every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple, cast

from core_client.database import Connection

from ..records import DocumentRecord, qualified
from ..sources import RecordState
from .entry import LedgerEntry
from .schema import COLUMNS, DedupeScope, needs_work
from .store import LedgerStore


def _existing(c: Connection, record: DocumentRecord) -> tuple[int, bool, RecordState]:
    """``(id, False, state)`` of the row that has the identity of ``record`` already."""
    row = c.execute(
        "SELECT id, state FROM ledger_records WHERE source=? AND source_ref=? AND version=?",
        (record.source, record.source_ref, record.version),
    ).fetchone()
    return int(row[0]), False, cast(RecordState, row[1])


class FoundDuplicate(NamedTuple):
    """A record found to be a duplicate as it arrived
    (:meth:`RecordTransitions.insert_duplicates`): ``received`` as it arrived, stored as
    ``routed``, the duplicate of ``duplicate_of``."""

    received: DocumentRecord
    routed: DocumentRecord
    duplicate_of: str
    target_key: str
    due_at: float = 0.0


class RecordTransitions(LedgerStore):
    """Inserting records, moving them between states, requeueing failed ones."""

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
        content_hash = record.content_hash
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO ledger_records (source, source_ref, version, state, record,"
                " original, content_hash, input_hash, organization_id, size, spooled, reason,"
                " acked, work, created_at, updated_at, collector)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,0,1,?,?,?)"
                " ON CONFLICT (source, source_ref, version) DO NOTHING RETURNING id",
                (
                    record.source,
                    record.source_ref,
                    record.version,
                    state,
                    doc,
                    doc,
                    content_hash,
                    content_hash,  # the input's: kept while the transforms change the other
                    record.organization_id,
                    record.total_size,
                    int(state == "received"),
                    reason,
                    now,
                    now,
                    self.collector,
                ),
            )
            inserted = cur.fetchone()
            if inserted is None:
                return _existing(c, record)
            record_id = int(inserted[0])
            c.executemany(
                "INSERT INTO ledger_blobs (record_id, sha256) VALUES (?, ?)"
                " ON CONFLICT (record_id, sha256) DO NOTHING",
                [(record_id, sha) for sha in set(blobs)],
            )
            return record_id, True, state

    def insert_duplicate(
        self,
        received: DocumentRecord,
        routed: DocumentRecord,
        *,
        duplicate_of: str,
        target_key: str,
        due_at: float = 0.0,
    ) -> tuple[int, bool, RecordState]:
        """Insert a record found to be a duplicate as it arrived (nothing spooled):
        ``duplicate``, not acked yet, stored as ``routed``, for a worker to ack from
        ``due_at`` on; ``(id, inserted, state)`` as :meth:`insert` (nothing changes when
        the identity exists already)."""
        (result,) = self.insert_duplicates(
            [FoundDuplicate(received, routed, duplicate_of, target_key, due_at)]
        )
        return result

    def insert_duplicates(
        self, found: Sequence[FoundDuplicate]
    ) -> list[tuple[int, bool, RecordState]]:
        """:meth:`insert_duplicate` of each, in one transaction (one commit for them all:
        what the caller may tell anyone once it returns); ``(id, inserted, state)`` of
        each, in order. A record that cannot be stored (metadata that is not JSON) raises
        before anything is written."""
        now = time.time()
        rows = [self._duplicate_row(f, now) for f in found]
        out: list[tuple[int, bool, RecordState]] = []
        with self.transaction() as c:
            for f, row in zip(found, rows, strict=True):
                cur = c.execute(
                    "INSERT INTO ledger_records (source, source_ref, version, state, record,"
                    " original, content_hash, input_hash, organization_id, target_key, size,"
                    " spooled, duplicate_of, acked, work, next_attempt_at, created_at,"
                    " updated_at, collector)"
                    " VALUES (?,?,?,'duplicate',?,?,?,?,?,?,?,0,?,0,1,?,?,?,?)"
                    " ON CONFLICT (source, source_ref, version) DO NOTHING RETURNING id",
                    row,
                )
                inserted = cur.fetchone()
                if inserted is not None:
                    out.append((int(inserted[0]), True, "duplicate"))
                else:
                    out.append(_existing(c, f.received))
        return out

    def _duplicate_row(self, f: FoundDuplicate, now: float) -> tuple[Any, ...]:
        """The values of :meth:`insert_duplicates`'s row for ``f``."""
        received, routed = f.received, f.routed
        digest = received.content_digest
        # The router's model_copy shares the arrived record's lists of (frozen) files and
        # sections: the same objects hold the same content, so its digest is the same
        # (a digest costs as much as the rest of the row's values together).
        same = routed.files is received.files and routed.sections is received.sections
        routed_digest = digest if same else routed.content_digest
        return (
            received.source,
            received.source_ref,
            received.version,
            routed.model_dump_json(exclude={"id"}),
            "",  # the original is kept for a failed record's reset only
            qualified(routed_digest, routed.instance),
            qualified(digest, received.instance),
            routed.organization_id,
            f.target_key,
            routed.total_size,
            f.duplicate_of,
            f.due_at,
            now,
            now,
            self.collector,
        )

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

    def mark_duplicates_acked(self, record_ids: list[int]) -> None:
        """Duplicates whose source acked them (nothing spooled): one transaction."""
        if not record_ids:
            return
        now = time.time()
        # By their ids: without statistics SQLite's planner would rather walk every
        # duplicate of the ledger through the (state, source) index (milliseconds per
        # batch, growing with each re-run); a unary "+" keeps that index out of the plan
        # (the same condition). PostgreSQL has no unary "+" for text and takes the
        # primary key by itself.
        state = "+state" if self.dialect == "sqlite" else "state"
        with self.transaction() as c:
            for start in range(0, len(record_ids), 500):  # bound the parameters per statement
                chunk = record_ids[start : start + 500]
                c.execute(
                    "UPDATE ledger_records SET acked=1, work=0, updated_at=?"
                    f" WHERE {state}='duplicate' AND id IN ({','.join('?' * len(chunk))})",
                    (now, *chunk),
                )

    def unsettled_duplicates_due(self, now: float) -> int:
        """Duplicates found as they arrived and handed to a settler that did not ack them
        (its process was killed): due ``now`` -- this collector's only (another one's
        settler may be acking its own right now). Returns how many."""
        # work=1 (what an unacked duplicate has, see needs_work): SQLite's planner takes
        # the work index then, which holds the records still to be worked on, where by
        # the state index it read every duplicate ever recorded (each start of a run)
        with self.transaction() as c:
            return int(
                c.execute(
                    "UPDATE ledger_records SET next_attempt_at=? WHERE work=1"
                    " AND state='duplicate' AND acked=0 AND spooled=0 AND next_attempt_at>?"
                    " AND collector=?",
                    (now, now, self.collector),
                ).rowcount
            )

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
        reproducible: bool = True,
        input_hash: str | None = None,
    ) -> tuple[Literal["deliver", "duplicate", "wait"], LedgerEntry | None]:
        """Atomically decide a ready record's fate: a duplicate of an earlier delivery,
        wait (the same content is being delivered right now by another worker), or
        ``delivering``. Keeps two workers from uploading the same content twice.

        ``record`` (the transformed record) is stored in the same transaction -- as
        ``ready`` when the answer is duplicate or wait -- which saves the separate commit
        of the ``ready`` state on the common path. Not ``reproducible`` (a transform may
        give other content for the same input next time: an extraction that timed out)
        forgets the record's input hash, so :meth:`landed_input` never names it;
        ``input_hash`` replaces it (the input's hash in the instance the record goes to).
        """
        now = time.time()
        with self.transaction() as c:
            decision: Literal["deliver", "duplicate", "wait"] = "deliver"
            found: LedgerEntry | None = None
            if check_duplicates:
                where = "content_hash=? AND id<>?"
                params: list[Any] = [content_hash, record_id]
                if scope == "organization":
                    where += " AND organization_id IS NOT DISTINCT FROM ? AND target_key=?"
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
            if not reproducible or input_hash is not None:
                c.execute(
                    "UPDATE ledger_records SET input_hash=? WHERE id=?",
                    (input_hash if reproducible else None, record_id),
                )
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
        self.sync()  # the operator is told how many were requeued
        return int(gone) + int(requeued)
