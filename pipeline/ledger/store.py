"""The ledger's connection: one shared under a lock, its write transaction and reads."""

# SQL here is assembled only from this package's constant fragments and "?" placeholders;
# every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from core_client.sqlite import connect, migrate, transaction

from ..sources import RecordState
from .entry import LedgerEntry
from .schema import COLUMNS, MIGRATIONS


class LedgerStore:
    """The connection the ledger's parts share (under ``_lock``) and its plain reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        self._lock = threading.RLock()
        with self._lock:
            migrate(self._conn, "ledger", MIGRATIONS)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``)."""
        with self._lock, transaction(self._conn):
            yield self._conn

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
