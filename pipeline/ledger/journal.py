"""Per-record delivery steps (a sink's :class:`~pipeline.sinks.StepJournal`) and source
checkpoints."""

# SQL here is assembled only from this package's constant fragments and "?" placeholders;
# every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

import time

from .store import LedgerStore


def glob_to_like(pattern: str) -> str:
    """A GLOB pattern (``*``, ``?``) as a LIKE pattern (``%``, ``_``; backslash escapes)."""
    out = []
    for ch in pattern:
        if ch in "\\%_":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


class StepsAndCheckpoints(LedgerStore):
    """``ledger_steps`` (what a delivery already did) and ``ledger_checkpoints``."""

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
        if self.dialect == "postgresql":  # no GLOB there: the same pattern as LIKE
            match, pattern = "step LIKE ?", glob_to_like(step)
        else:
            match, pattern = "step GLOB ?", step
        rows = self._query(
            f"SELECT 1 FROM ledger_steps WHERE {match} AND value=? AND record_id<>? LIMIT 1",
            (pattern, value, other_than),
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

    def probe_write(self) -> None:
        """One small committed write: whether the ledger can record anything now (a
        source name never is empty, so this row is nobody's checkpoint)."""
        self.set_checkpoint("", "storage-probe", str(time.time()))

    def set_checkpoint(self, source: str, key: str, value: str) -> None:
        """Durable on return: a source acts on its checkpoint (skips what it covers)."""
        with self.transaction() as c:
            c.execute(
                "INSERT INTO ledger_checkpoints (source, key, value, updated_at) VALUES (?,?,?,?)"
                " ON CONFLICT (source, key) DO UPDATE SET value=excluded.value,"
                " updated_at=excluded.updated_at",
                (source, key, value, time.time()),
            )
        self.sync()


class LedgerJournal:
    """The :class:`pipeline.sinks.StepJournal` of one record, backed by ``ledger_steps``."""

    def __init__(self, ledger: StepsAndCheckpoints, record_id: int) -> None:
        self._ledger = ledger
        self.record_id = record_id

    def get(self, step: str) -> str | None:
        return self._ledger.get_step(self.record_id, step)

    def record(self, step: str, value: str) -> None:
        """Durable on return: a sink journals a step before the API write it guards."""
        self._ledger.set_step(self.record_id, step, value)
        self._ledger.sync()

    def steps(self) -> dict[str, str]:
        return self._ledger.steps(self.record_id)

    def taken_by_another(self, step: str, value: str) -> bool:
        """Whether another record's journal holds ``value`` under a step matching
        ``step`` (a GLOB pattern), e.g. the document or attachment it made: a sink's
        reconciliation must not adopt it, even after a restart, when the sink's in-memory
        knowledge is gone."""
        return self._ledger.step_taken(step, value, other_than=self.record_id)
