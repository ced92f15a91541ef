"""The ledger's state database (SQLite or PostgreSQL), its write transaction and reads.

Group commit (SQLite only): with ``group_commit`` every change is still committed before
its transaction returns (a SIGKILL loses none: the WAL is written), but without an fsync
of its own (``synchronous=NORMAL``); :meth:`LedgerStore.sync` makes everything committed
so far durable with one fsync, which the threads waiting for it share. The engine calls
it before anything outside learns of a change (a post-action, a hook, an API write after
a journal step): a power cut may then lose only changes nobody was told about, and the
WAL's order keeps what survives a prefix of what was committed. A PostgreSQL commit is
durable when it returns (the server groups its own WAL flushes), so there ``sync`` has
nothing to do.
"""

# SQL here is assembled only from this package's constant fragments and "?" placeholders;
# every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from core_client.database import Connection, Database, SQLiteDatabase
from core_client.sqlite import fsync_wal, transaction

from ..sources import RecordState
from .entry import LedgerEntry
from .schema import COLUMNS, MIGRATIONS

# keys per statement of a batched read: far below SQLite's 32,766 and PostgreSQL's 65,535
# bound parameters, and a statement text the engines parse quickly
BATCH = 500


def chunks(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    """``items`` in slices of at most ``size`` (one statement each)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LedgerStore:
    """The database the ledger's parts share and its plain reads.

    ``database``: the state database (the ledger closes it with itself), or the path of
    a SQLite file to open. ``collector`` (``[state] collector``) names the collector
    whose records this process inserts.

    :attr:`own_sources` is the one place that says which records the engine works on:
    None (every record: one collector's SQLite state, or ``status``), or a function
    returning the sources this engine owns now (several collectors share the ledger: the
    others' records, their spool bytes on other machines, are theirs to work on).
    """

    def __init__(
        self, database: Database | Path, *, group_commit: bool = False, collector: str = ""
    ) -> None:
        self.db: Database = SQLiteDatabase(database) if isinstance(database, Path) else database
        self.dialect = self.db.dialect
        sqlite_db = self.db if isinstance(self.db, SQLiteDatabase) else None
        self._sqlite = sqlite_db
        self.path: Path | None = sqlite_db.path if sqlite_db is not None else None
        # what a PostgreSQL commit returns from is durable: nothing to group here
        self.group_commit = group_commit and sqlite_db is not None
        self._counted = _Counted(self, sqlite_db) if sqlite_db is not None else None
        self._lock = sqlite_db.lock if sqlite_db is not None else threading.RLock()
        self._sync_lock = threading.Lock()  # one fsync at a time; the others wait for it
        self._committed = 0  # changes committed by this connection ...
        self._durable = 0  # ... of which fsync'd
        self.collector = collector
        self.own_sources: Callable[[], Collection[str]] | None = None
        self.db.migrate("ledger", MIGRATIONS)
        if collector and sqlite_db is not None:
            # a SQLite ledger is one collector's: the records from before it had a name
            # are its own (kept out of the way on PostgreSQL: there it is anyone's guess)
            with self.db.transaction() as c:
                c.execute("UPDATE ledger_records SET collector=? WHERE collector=''", (collector,))
        if self.group_commit:
            with self._lock:
                # what a killed process committed without fsync is made durable before
                # this one acts on it
                self._fsync_all()
                self._raw().execute("PRAGMA synchronous=NORMAL")

    def _raw(self) -> sqlite3.Connection:
        assert self._sqlite is not None  # group commit is SQLite's
        return self._sqlite.conn

    def close(self) -> None:
        with self._lock:
            try:
                self.sync()
            except sqlite3.Error:  # committed already: the OS writes it out in time
                pass
            finally:
                self.db.close()

    def transaction(self) -> AbstractContextManager[Connection]:
        """One serialised write transaction, committed on return; durable too unless
        ``group_commit`` (then: after the next :meth:`sync`)."""
        if not self.group_commit:
            return cast(AbstractContextManager[Connection], self.db.transaction())
        assert self._counted is not None  # group commit is SQLite's
        return self._counted

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
        assert self.path is not None  # only group commit (SQLite) leaves changes undurable
        with self._sync_lock:
            if self._durable >= target:
                return
            committed = self._committed  # written to the WAL before the fsync starts
            try:
                fsync_wal(self.path)
            except FileNotFoundError:  # no WAL file (never here while connected): commit
                with self._lock:
                    self._raw().execute("PRAGMA synchronous=FULL")
                    try:
                        self._fsync_all()
                    finally:
                        self._raw().execute("PRAGMA synchronous=NORMAL")
            self._durable = max(self._durable, committed)

    def _fsync_all(self) -> None:
        """One commit with ``synchronous=FULL``: in WAL mode it fsyncs the WAL file, and
        with it every frame committed before. A commit needs a change: the mark row (a
        source name never is empty, so it is nobody's checkpoint)."""
        conn = self._raw()
        with transaction(conn):
            conn.execute(
                "INSERT INTO ledger_checkpoints (source, key, value, updated_at)"
                " VALUES ('', 'durable', ?, ?) ON CONFLICT (source, key) DO UPDATE"
                " SET value=excluded.value, updated_at=excluded.updated_at",
                (str(self._committed), time.time()),
            )

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.db.query(sql, params)

    def _owned(self) -> tuple[str, list[Any]]:
        """``" AND source IN (...)"`` and its parameters: the records of the sources this
        engine owns (see :attr:`own_sources`); nothing when it works on every record."""
        if self.own_sources is None:
            return "", []
        names = sorted(self.own_sources())
        if not names:
            return " AND 1=0", []
        return f" AND source IN ({','.join('?' * len(names))})", list(names)

    def get(self, record_id: int) -> LedgerEntry | None:
        rows = self._query(f"SELECT {COLUMNS} FROM ledger_records WHERE id=?", (record_id,))
        return LedgerEntry.from_row(rows[0]) if rows else None

    def find(self, source: str, source_ref: str, version: str = "") -> LedgerEntry | None:
        rows = self._query(
            f"SELECT {COLUMNS} FROM ledger_records WHERE source=? AND source_ref=? AND version=?",
            (source, source_ref, version),
        )
        return LedgerEntry.from_row(rows[0]) if rows else None

    def find_many(
        self, source: str, identities: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], LedgerEntry]:
        """:meth:`find` for many ``(source_ref, version)`` of ``source`` at once: the
        entries found, by identity (the missing ones are absent). One statement per
        :data:`BATCH` values."""
        found: dict[tuple[str, str], LedgerEntry] = {}
        for part in chunks(sorted(set(identities)), BATCH // 3):
            # one index lookup per identity, each term the whole unique key: a file dropped
            # again and again has many versions, which ``source_ref IN (...)`` would all
            # read, and SQLite reads every row of the source for ``source=? AND (... OR
            # ...)`` where it does one lookup per term of this form (``MULTI-INDEX OR``)
            terms = " OR ".join(["(source=? AND source_ref=? AND version=?)"] * len(part))
            rows = self._query(
                f"SELECT {COLUMNS} FROM ledger_records WHERE {terms}",
                [value for ref, version in part for value in (source, ref, version)],
            )
            for row in rows:
                entry = LedgerEntry.from_row(row)
                found[entry.source_ref, entry.version] = entry
        return found

    def state_of(self, source: str, source_ref: str, version: str = "") -> RecordState | None:
        rows = self._query(
            "SELECT state FROM ledger_records WHERE source=? AND source_ref=? AND version=?",
            (source, source_ref, version),
        )
        return cast(RecordState, rows[0][0]) if rows else None


class _Counted:
    """Group commit's transaction: the database's, and once it committed, one more change
    counted for :meth:`LedgerStore.sync`. The connection's lock is held from enter to
    exit, so commits are counted in their order; one instance serves every thread (a
    plain object, not a generator context manager: every insert goes through here)."""

    def __init__(self, store: LedgerStore, db: SQLiteDatabase) -> None:
        self._store = store
        self._tx = db.transaction()  # one object for every transaction of ``db``

    def __enter__(self) -> Connection:
        store = self._store
        store._lock.acquire()
        try:
            return self._tx.__enter__()
        except BaseException:
            store._lock.release()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        store = self._store
        try:
            self._tx.__exit__(exc_type, exc, tb)
            if exc_type is None:
                store._committed += 1
        finally:
            store._lock.release()
