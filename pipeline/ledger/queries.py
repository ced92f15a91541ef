"""What the engine and ``status`` ask the ledger: due work, spool load, counts."""

# SQL here is assembled only from this package's constant fragments and "?" placeholders;
# every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from .entry import LedgerEntry
from .schema import COLUMNS, SPOOLED_STATES
from .store import LedgerStore, chunks


class LandedInput(NamedTuple):
    """A delivered (or done) record, by its input, as :meth:`LedgerQueries.landed_inputs`
    names it."""

    id: int
    organization_id: str | None
    target_key: str

    def matches(self, organization_id: str | None, target_key: str | None) -> bool:
        """Whether this record is the landed original for a record going to
        ``organization_id`` and ``target_key`` (None: any organization and target, the
        global scope)."""
        if target_key is None:
            return True
        return self.organization_id == organization_id and self.target_key == target_key


class LedgerQueries(LedgerStore):
    """Read-only questions: what is due, what the spool holds, per-state counts.

    What the engine works on (due, active, unacked, spool load, a run's summary) is only
    the records of the sources it owns (:attr:`~pipeline.ledger.store.LedgerStore.own_sources`);
    what ``status`` and the metrics report (counts, failed, waiting) is every record."""

    def due(self, now: float, limit: int, exclude: Iterable[int] = ()) -> list[int]:
        """Ids of records the engine should work on now (oldest due first), a batch at
        a time so a huge backlog is never loaded at once."""
        skip = list(exclude)
        marks = ",".join("?" * len(skip))
        not_in = f" AND id NOT IN ({marks})" if skip else ""
        owned, names = self._owned()
        rows = self._query(
            "SELECT id FROM ledger_records WHERE work=1 AND next_attempt_at<=?"
            f"{not_in}{owned} ORDER BY next_attempt_at, id LIMIT ?",
            (now, *skip, *names, limit),
        )
        return [int(r[0]) for r in rows]

    def next_due_at(self) -> float | None:
        owned, names = self._owned()
        rows = self._query(
            f"SELECT MIN(next_attempt_at) FROM ledger_records WHERE work=1{owned}", names
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def count_active(self, sources: Iterable[str] | None = None) -> int:
        """Records not yet delivered, duplicate or failed (including waiting retries), of
        ``sources`` when given, else of the sources this engine owns."""
        sql = "SELECT COUNT(*) FROM ledger_records WHERE state IN ('received','ready','delivering')"
        return int(self._query(*_of(sql, sources, self._owned()))[0][0])

    def oldest_active_created_at(self) -> float | None:
        """When the oldest record not yet delivered, duplicate or failed arrived."""
        owned, names = self._owned()
        rows = self._query(
            "SELECT MIN(created_at) FROM ledger_records"
            f" WHERE state IN ('received','ready','delivering'){owned}",
            names,
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def count_unacked_due(self, now: float) -> int:
        """Finished records whose source post-action is due (not yet acked/nacked)."""
        owned, names = self._owned()
        rows = self._query(
            "SELECT COUNT(*) FROM ledger_records WHERE work=1 AND next_attempt_at<=?"
            f" AND state IN ('delivered','duplicate','failed'){owned}",
            (now, *names),
        )
        return int(rows[0][0])

    def delivered_unacked(self, limit: int = 1000) -> list[int]:
        """Records delivered but whose source was not told yet (crash before the ack)."""
        owned, names = self._owned()
        rows = self._query(
            f"SELECT id FROM ledger_records WHERE state='delivered'{owned} ORDER BY id LIMIT ?",
            (*names, limit),
        )
        return [int(r[0]) for r in rows]

    def spool_load(self, sources: Iterable[str] | None = None) -> tuple[int, int]:
        """(records, bytes) that hold spool space and count against its bounds; only of
        ``sources`` when given (the records of another source cannot be acked, so they
        cannot free space: counting them could block every emit for good), else of the
        sources this engine owns (another collector's spool is on another machine)."""
        marks = ",".join("?" * len(SPOOLED_STATES))
        sql = (
            f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM ledger_records WHERE state IN ({marks})"
        )
        query, params = _of(sql, sources, self._owned())
        rows = self._query(query, [*SPOOLED_STATES, *params])
        return int(rows[0][0]), int(rows[0][1])

    def landed_inputs(self, input_hashes: Iterable[str]) -> dict[str, list[LandedInput]]:
        """For each of ``input_hashes``, every delivered (or done) record whose input, as
        it arrived, had that content: ``{input_hash: [landed, ...]}``, lowest id first
        (absent: none landed). :meth:`LandedInput.matches` answers the organization
        scope's question of each. One statement per :data:`~.store.BATCH` hashes."""
        out: dict[str, list[LandedInput]] = {}
        for part in chunks(sorted(set(input_hashes))):
            rows = self._query(
                "SELECT input_hash, id, organization_id, target_key FROM ledger_records"
                f" WHERE input_hash IN ({','.join('?' * len(part))})"
                " AND state IN ('delivered', 'done') ORDER BY id",
                part,
            )
            for input_hash, rid, organization_id, target_key in rows:
                out.setdefault(str(input_hash), []).append(
                    LandedInput(int(rid), organization_id, str(target_key))
                )
        return out

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

    def transform_outcomes(self) -> dict[str, dict[str, int]]:
        """``{transform: {outcome: n}}``: what transforms reported in a record's
        ``metadata["transform_outcomes"]`` (e.g. ``extract``: ``ok``, ``timeout``)."""
        out: dict[str, dict[str, int]] = {}
        if self.dialect == "postgresql":
            outcomes = "ledger_records.record::jsonb #> '{metadata,transform_outcomes}'"
            each = (
                f"jsonb_each_text(CASE WHEN jsonb_typeof({outcomes}) = 'object'"
                f" THEN {outcomes} END) AS j"
            )
        else:
            each = "json_each(ledger_records.record, '$.metadata.transform_outcomes') AS j"
        for name, outcome, n in self._query(
            f"SELECT j.key, j.value, COUNT(*) FROM ledger_records, {each} GROUP BY j.key, j.value"
        ):
            out.setdefault(str(name), {})[str(outcome)] = int(n)
        return out

    def counts_by_collector(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{collector: {source: {state: n}}}`` over the whole ledger."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for collector, source, state, n in self._query(
            "SELECT collector, source, state, COUNT(*) FROM ledger_records"
            " GROUP BY collector, source, state"
        ):
            out.setdefault(collector, {}).setdefault(source, {})[state] = int(n)
        return out

    def counts_since(self, since: float) -> dict[str, dict[str, int]]:
        """``{source: {state: n}}`` of the records of the owned sources changed at or
        after ``since`` (what this engine's run did)."""
        out: dict[str, dict[str, int]] = {}
        owned, names = self._owned()
        # Only the rows changed since, through the updated_at index: SQLite's planner,
        # without statistics, would rather group along the (state, source) index and so
        # read every row of the ledger (a second at 600,000 rows, more with each re-run
        # of a backlog); a unary "+" keeps that index out of the plan (the same groups).
        # PostgreSQL has no unary "+" for text and plans by its statistics.
        group = "+source, +state" if self.dialect == "sqlite" else "source, state"
        for source, state, n in self._query(
            f"SELECT source, state, COUNT(*) FROM ledger_records WHERE updated_at>=?{owned}"
            f" GROUP BY {group}",
            (since, *names),
        ):
            out.setdefault(source, {})[state] = int(n)
        return out

    def changed_since(self, since: float) -> list[LedgerEntry]:
        """Every record of the owned sources changed at or after ``since``, oldest first."""
        owned, names = self._owned()
        rows = self._query(
            f"SELECT {COLUMNS} FROM ledger_records WHERE updated_at>=?{owned} ORDER BY id",
            (since, *names),
        )
        return [LedgerEntry.from_row(r) for r in rows]

    def failed(
        self, source: str | None = None, *, since: float | None = None, limit: int = 1000
    ) -> list[LedgerEntry]:
        """Failed records with their reasons, newest first: every collector's, or with
        ``since`` (a run's summary) those of the owned sources."""
        sql = f"SELECT {COLUMNS} FROM ledger_records WHERE state='failed'"
        params: list[Any] = []
        if source is not None:
            sql += " AND source=?"
            params.append(source)
        if since is not None:
            owned, names = self._owned()
            sql += f" AND updated_at>=?{owned}"
            params += [since, *names]
        sql += " ORDER BY updated_at DESC LIMIT ?"
        params.append(limit)
        return [LedgerEntry.from_row(r) for r in self._query(sql, params)]

    def recent(self, limit: int = 20) -> list[LedgerEntry]:
        """The records changed last, newest first (``status --records``)."""
        sql = f"SELECT {COLUMNS} FROM ledger_records ORDER BY updated_at DESC, id DESC LIMIT ?"
        return [LedgerEntry.from_row(r) for r in self._query(sql, (limit,))]

    def waiting(self, limit: int = 100) -> list[LedgerEntry]:
        """Active records waiting for a retry (attempts > 0), soonest first."""
        rows = self._query(
            f"SELECT {COLUMNS} FROM ledger_records WHERE state IN"
            " ('received','ready','delivering') AND attempts>0"
            " ORDER BY next_attempt_at LIMIT ?",
            (limit,),
        )
        return [LedgerEntry.from_row(r) for r in rows]


def _of(
    sql: str, sources: Iterable[str] | None, owned: tuple[str, list[Any]]
) -> tuple[str, list[Any]]:
    """``sql`` (ending in a WHERE clause) limited to ``sources``, else to ``owned``."""
    if sources is None:
        return sql + owned[0], owned[1]
    names = list(sources)
    if not names:
        return sql + " AND 1=0", []
    return sql + f" AND source IN ({','.join('?' * len(names))})", names
