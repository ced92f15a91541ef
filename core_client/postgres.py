"""The state database on PostgreSQL (psycopg 3 with a connection pool).

Several collectors share one PostgreSQL database: the ledger, the step journal, the
cache, the rate budget and the heartbeats of all of them. SQL is written once with
``?`` placeholders (:mod:`core_client.database`); here they become psycopg's ``%s``.

Writers are serialised per component with a transaction-level advisory lock, taken as
the transaction's first statement and released by its commit or rollback: the same
guarantee SQLite's ``BEGIN IMMEDIATE`` gives, so "read, decide, write" inside one
transaction never races another collector. The password never appears in the DSN this
module keeps, in a repr or in an error message: it is handed to libpq as a separate
connection argument.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from .database import Cursor, Database, Dialect, Migrations, scripts_for

# the errors of an unreachable or failing server (the storage-trouble mode backs off on
# them rather than failing records)
OperationalError = psycopg.OperationalError


class _QuietReconnects(logging.Filter):
    """Drops psycopg_pool's warning per failed reconnection and per discarded broken
    connection: while the server is down each pool logs them about once a second, where
    the callers log an outage when it starts, once a minute and when it ends."""

    NOISE = ("error connecting in ", "discarding closed connection")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.NOISE)


logging.getLogger("psycopg.pool").addFilter(_QuietReconnects())


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(
        hashlib.sha256(f"itglue-ingest:{name}".encode()).digest()[:8], "big", signed=True
    )


@lru_cache(maxsize=1024)
def to_psycopg(sql: str) -> str:
    """``?`` placeholders to ``%s`` (and a literal ``%`` to ``%%``). The SQL given here
    is this project's own constant text: it never holds a ``?`` inside a string literal."""
    return sql.replace("%", "%%").replace("?", "%s")


def dsn_has_password(dsn: str) -> bool:
    """Whether ``dsn`` carries a password (refused in the configuration: secrets are
    read from the environment, a file or the keyring)."""
    try:
        return bool(conninfo_to_dict(dsn).get("password"))
    except psycopg.ProgrammingError as e:
        raise ValueError(f"dsn is not a valid libpq connection string: {e}") from None


def safe_dsn(dsn: str) -> str:
    """``dsn`` without its password (for logs, ``status`` and reprs)."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<invalid dsn>"
    parts.pop("password", None)
    return make_conninfo("", **{k: v for k, v in parts.items() if v is not None})


class _Connection:
    """A psycopg connection speaking ``?`` placeholders."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if not params:  # no placeholders: the text goes as written, "%" included
            return self.raw.execute(sql)
        return self.raw.execute(to_psycopg(sql), tuple(params))

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        rows = [tuple(p) for p in params]
        if rows:
            with self.raw.cursor() as cur:
                cur.executemany(to_psycopg(sql), rows)


class PostgresDatabase(Database):
    """One PostgreSQL database shared by every collector (see the module's docstring).

    ``component`` names the advisory lock that serialises this object's write
    transactions (e.g. ``"ledger"``): writers of different components do not wait for
    each other. ``password`` (from the environment, a file or the keyring) is kept out
    of ``dsn``.
    """

    dialect: Dialect = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        component: str,
        password: str | None = None,
        max_connections: int = 4,
        connect_timeout: float = 10.0,
    ) -> None:
        self._dsn = safe_dsn(dsn)
        self.component = component
        self._lock_key = advisory_key(component)
        kwargs: dict[str, Any] = {"autocommit": True}
        if password:
            kwargs["password"] = password
        self._local = threading.local()
        self._pool = ConnectionPool(
            dsn,
            kwargs=kwargs,
            min_size=1,
            max_size=max_connections,
            open=False,
            name=f"itglue-ingest-{component}",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout:
            self._pool.close()
            raise OperationalError(
                f"PostgreSQL at {self._dsn} is unreachable (no connection within"
                f" {connect_timeout:g} s)"
            ) from None

    # ------------------------------------------------------------------ interface

    @contextmanager
    def transaction(self) -> Iterator[_Connection]:
        current: _Connection | None = getattr(self._local, "conn", None)
        if current is not None:  # nested: part of the outer transaction
            yield current
            return
        with self._pool.connection() as raw, raw.transaction():
            conn = _Connection(raw)
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextmanager
    def reading(self) -> Iterator[_Connection]:
        current: _Connection | None = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self._pool.connection() as raw:
            yield _Connection(raw)

    def migrate(self, component: str, migrations: Migrations) -> None:
        scripts = scripts_for("postgresql", migrations)
        for version, script in enumerate(scripts, start=1):
            with self._pool.connection() as raw, raw.transaction():
                # one migrator at a time over the whole database: CREATE TABLE IF NOT
                # EXISTS itself races in PostgreSQL
                raw.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key("schema"),))
                raw.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
                )
                row = raw.execute(
                    "SELECT version FROM schema_version WHERE component=%s", (component,)
                ).fetchone()
                if row is None or row[0] < version:
                    raw.execute(script)  # several statements, no params
                    raw.execute(
                        "INSERT INTO schema_version (component, version) VALUES (%s, %s)"
                        " ON CONFLICT (component) DO UPDATE SET version=excluded.version",
                        (component, version),
                    )

    def close(self) -> None:
        self._pool.close()

    def describe(self) -> str:
        return self._dsn

    def __repr__(self) -> str:
        return f"PostgresDatabase({self._dsn!r}, component={self.component!r})"
