"""Opening the instance's SQLite database: one file for cache and ledger.

The database file is created 0600 before SQLite opens it (SQLite gives its -wal and
-shm files the database's permissions), WAL journal, a busy timeout so that several
threads and processes can share it.

Never open or close a descriptor of the database file outside SQLite: SQLite's locks
are POSIX advisory locks, which the kernel drops for the whole process when *any*
descriptor of the file is closed ("How To Corrupt An SQLite Database File", §2.2).
Another process would then believe it is the last user, checkpoint and delete the
``-wal`` and ``-shm`` files under this process's live connections. A missing file is
therefore created under a temporary name and linked into place, so no descriptor of
the final path is ever opened here.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists, without ever opening it.

    The file is made under a temporary name in the same folder (its descriptor is
    closed before the file has its final name) and hard-linked into place; ``link``
    refuses to replace, so a file another thread or process created first is kept.
    """
    if path.exists():
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    try:
        os.close(fd)  # mkstemp makes it 0600
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def connect(path: Path, *, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection to ``path`` (created 0600 in a 0700 folder when missing), WAL mode."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    create_private(path)
    os.chmod(path, 0o600)  # by path: no descriptor of the database is opened here
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def fsync_wal(path: Path) -> None:
    """fsync the ``-wal`` file of the WAL-mode database ``path``: every transaction
    committed before the call (with ``synchronous=NORMAL``: written, not synced) is
    durable on return, as if each had been committed with ``synchronous=FULL``.

    Unlike the database file, the ``-wal`` file carries none of SQLite's locks (they are
    on the database and ``-shm`` files), so opening and closing a descriptor of it here
    releases nothing of SQLite's (see the module's docstring). Raises
    ``FileNotFoundError`` when there is no WAL file.
    """
    fd = os.open(f"{path}-wal", os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    """One transaction of ``conn`` (autocommit mode): ``begin`` ... ``COMMIT``, rolled back
    on any exception, including a failed ``COMMIT`` (see :func:`finish`)."""
    conn.execute(begin)
    try:
        yield
    except BaseException:
        finish(conn, failed=True)
        raise
    finish(conn, failed=False)


def finish(conn: sqlite3.Connection, *, failed: bool) -> None:
    """End the open transaction of ``conn``: ``COMMIT``, or ``ROLLBACK`` when ``failed``;
    a ``COMMIT`` that fails is rolled back and its error raised.

    SQLite rolls a transaction back by itself on some errors (a full disk, an I/O error):
    a second ``ROLLBACK`` would then raise "cannot rollback - no transaction is active"
    over the real error, and a transaction left open by a failed ``COMMIT`` would make
    every later ``BEGIN`` fail. So: roll back only what is still open, keep the real error.
    """
    if not failed:
        try:
            conn.execute("COMMIT")
            return
        except BaseException:
            _roll_back_open(conn)
            raise
    _roll_back_open(conn)


def _roll_back_open(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def ensure_schema_table(conn: sqlite3.Connection) -> None:
    """The migrations table shared by every component of the database."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )


def statements(script: str) -> list[str]:
    """The SQL statements of ``script``: split at each ``;`` that ends a complete
    statement, so a trigger's ``BEGIN ... END`` body stays one statement."""
    out: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                out.append(pending.strip())
            pending = ""
    if pending.strip(" \t\n;"):
        out.append(pending.strip().removesuffix(";"))
    return out


def migrate(conn: sqlite3.Connection, component: str, migrations: list[str]) -> None:
    """Apply the missing ``migrations`` of ``component`` (each a SQL script).

    Each runs in its own IMMEDIATE transaction that re-reads the version first, so
    several processes opening the database at once apply each migration exactly once.
    """
    ensure_schema_table(conn)
    for version, script in enumerate(migrations, start=1):
        with transaction(conn):
            row = conn.execute(
                "SELECT version FROM schema_version WHERE component=?", (component,)
            ).fetchone()
            if row is None or row[0] < version:
                # executescript would COMMIT first; run the statements inside our transaction
                for statement in statements(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version(component, version) VALUES(?, ?)"
                    " ON CONFLICT(component) DO UPDATE SET version=excluded.version",
                    (component, version),
                )
