"""The state database behind the cache, the ledger and the heartbeats: SQLite or PostgreSQL.

One small interface, :class:`Database`, with two implementations: the embedded
:class:`SQLiteDatabase` (default: one 0600 file per instance, nothing to run) and
:class:`core_client.postgres.PostgresDatabase` (several collectors sharing one state).
Callers write their SQL once, with ``?`` placeholders, in the subset both engines speak
(``INSERT ... ON CONFLICT``, ``RETURNING``, ``IS NOT DISTINCT FROM``, ``COALESCE``);
what differs (column types, full-text search, JSON) is asked of :attr:`Database.dialect`,
and migrations are given per dialect.

Writes go through :meth:`Database.transaction`, which serialises writers of the same
database the way SQLite's ``BEGIN IMMEDIATE`` does (on PostgreSQL: a transaction-level
advisory lock named after the component), so a read-then-write decision inside one
transaction -- "is this content delivered already? then claim it" -- holds across
threads, processes and collectors alike.
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

from .sqlite import connect, finish, migrate

Dialect = Literal["sqlite", "postgresql"]

# Migrations of one component: a list of scripts applied in order (the same for both
# dialects), or one list per dialect (the lists' versions must stay aligned).
Migrations = Sequence[str] | Mapping[Dialect, Sequence[str]]


class Cursor(Protocol):
    """What :meth:`Connection.execute` returns (sqlite3 and psycopg cursors both fit)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The connection a transaction or a read hands out: ``?`` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...


class Database(ABC):
    """A state database: serialised write transactions, reads, migrations."""

    dialect: Dialect

    @abstractmethod
    def transaction(self) -> Any:
        """Context manager: one write transaction, committed on return, rolled back on
        any exception; yields a :class:`Connection`. Writers of this database (any
        thread, process or collector) run one at a time. Nested use in the same thread
        joins the outer transaction."""

    @abstractmethod
    def reading(self) -> Any:
        """Context manager yielding a :class:`Connection` for reads (inside a
        transaction of this thread: that transaction's connection, which sees its
        uncommitted writes)."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """All rows of one read."""
        with self.reading() as c:
            return list(c.execute(sql, params).fetchall())

    @abstractmethod
    def migrate(self, component: str, migrations: Migrations) -> None:
        """Apply the missing migrations of ``component``, each exactly once even when
        several processes open the database at once."""

    def sync(self) -> None:  # noqa: B027 -- optional: durable already unless overridden
        """Make every committed change durable (a no-op where commits are durable)."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, for humans (a path, or the DSN without its password)."""


def scripts_for(dialect: Dialect, migrations: Migrations) -> list[str]:
    """The migration scripts of ``dialect``."""
    if isinstance(migrations, Mapping):
        return list(migrations[dialect])
    return list(migrations)


class SQLiteDatabase(Database):
    """One SQLite file (:func:`core_client.sqlite.connect`: WAL, 0600, busy timeout):
    one connection shared under a lock; SQLite serialises the writers of all processes."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = path
        self.conn = connect(path, timeout=timeout)
        self.lock = threading.RLock()
        self._depth = 0  # transactions of the thread holding the lock (nesting joins)
        # Every read and write of the engine comes through these two: plain objects
        # rather than generator context managers, whose setup costs several times the
        # lock itself. One of each serves every thread: their only state is the nesting
        # depth, read and written by the thread that holds the lock.
        self._reading = _Reading(self)
        self._transaction = _Transaction(self)

    def transaction(self) -> _Transaction:
        return self._transaction

    def reading(self) -> _Reading:
        return self._reading

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        # reading()'s work inline: the ledger's every lookup is one of these
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def migrate(self, component: str, migrations: Migrations) -> None:
        with self.lock:
            migrate(self.conn, component, scripts_for("sqlite", migrations))

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def describe(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"SQLiteDatabase({str(self.path)!r})"


class _Reading:
    """``with SQLiteDatabase.reading()``: the connection, under the database's lock."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._lock = db.lock
        self._conn = db.conn

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        return self._conn

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class _Transaction:
    """``with SQLiteDatabase.transaction()``: ``BEGIN IMMEDIATE`` ... ``COMMIT`` under the
    database's lock, rolled back on any exception (:func:`core_client.sqlite.finish`);
    a nested one, in the thread that holds the lock, joins the outer transaction."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        db = self._db
        db.lock.acquire()
        if db._depth:  # nested: part of the outer transaction
            db._depth += 1
            return db.conn
        try:
            db.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            db.lock.release()
            raise
        db._depth = 1
        return db.conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        db = self._db
        try:
            if db._depth > 1:
                db._depth -= 1
                return
            try:
                finish(db.conn, failed=exc_type is not None)
            finally:
                db._depth = 0
        finally:
            db.lock.release()
