"""The ledger's connection: one shared under a lock, its write transaction and reads.

Group commit: with ``group_commit`` every change is still committed before its
transaction returns (a SIGKILL loses none: the WAL is written), but without an fsync of
its own (``synchronous=NORMAL``); :meth:`LedgerStore.sync` makes everything committed so
far durable with one fsync, which the threads waiting for it share. The engine calls it
before anything outside learns of a change (a post-action, a hook, an API write after a
journal step): a power cut may then lose only changes nobody was told about, and the
WAL's order keeps what survives a prefix of what was committed.
"""

# SQL here is assembled only from this package's constant fragments and "?" placeholders;
# every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from core_client.sqlite import connect, fsync_wal, migrate, transaction

from ..sources import RecordState
from .entry import LedgerEntry
from .schema import COLUMNS, MIGRATIONS


class LedgerStore:
    """The connection the ledger's parts share (under ``_lock``) and its plain reads."""

    def __init__(self, path: Path, *, group_commit: bool = False) -> None:
        self.path = path
        self._conn = connect(path)
        self._lock = threading.RLock()
        self._sync_lock = threading.Lock()  # one fsync at a time; the others wait for it
        self.group_commit = group_commit
        self._committed = 0  # changes committed by this connection ...
        self._durable = 0  # ... of which fsync'd
        with self._lock:
            migrate(self._conn, "ledger", MIGRATIONS)
            if group_commit:
                # what a killed process committed without fsync is made durable before
                # this one acts on it
                self._fsync_all()
                self._conn.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        with self._lock:
            try:
                self.sync()
            except sqlite3.Error:  # committed already: the OS writes it out in time
                pass
            finally:
                self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), committed on return;
        durable too unless ``group_commit`` (then: after the next :meth:`sync`)."""
        with self._lock:
            with transaction(self._conn):
                yield self._conn
            self._committed += 1
            if not self.group_commit:
                self._durable = self._committed

    def sync(self) -> None:
        """Make every change committed so far durable (no-op when it is already).

        One fsync covers every change before it, whoever made it: callers that arrive
        while another thread's fsync runs wait for it, and return at once when it
        covered their changes. Commits and reads go on meanwhile (the fsync is of the
        ``-wal`` file, outside the connection's lock).
        """
        target = self._committed  # read before waiting: what this caller has seen done
        if self._durable >= target:
            return
        with self._sync_lock:
            if self._durable >= target:
                return
            committed = self._committed  # written to the WAL before the fsync starts
            try:
                fsync_wal(self.path)
            except FileNotFoundError:  # no WAL file (never here while connected): commit
                with self._lock:
                    self._conn.execute("PRAGMA synchronous=FULL")
                    try:
                        self._fsync_all()
                    finally:
                        self._conn.execute("PRAGMA synchronous=NORMAL")
            self._durable = max(self._durable, committed)

    def _fsync_all(self) -> None:
        """One commit with ``synchronous=FULL``: in WAL mode it fsyncs the WAL file, and
        with it every frame committed before. A commit needs a change: the mark row (a
        source name never is empty, so it is nobody's checkpoint)."""
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO ledger_checkpoints (source, key, value, updated_at)"
                " VALUES ('', 'durable', ?, ?) ON CONFLICT (source, key) DO UPDATE"
                " SET value=excluded.value, updated_at=excluded.updated_at",
                (str(self._committed), time.time()),
            )

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
