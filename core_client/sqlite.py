"""Opening the instance's SQLite database: one file for cache and ledger.

Created with mode 0600 before SQLite touches it (SQLite gives its -wal and -shm files
the database's permissions), WAL journal, a busy timeout so that several threads and
processes can share it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def connect(path: Path, *, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection to ``path`` (created 0600 in a 0700 folder when missing), WAL mode."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    return conn


def ensure_schema_table(conn: sqlite3.Connection) -> None:
    """The migrations table shared by every component of the database."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )


def migrate(conn: sqlite3.Connection, component: str, migrations: list[str]) -> None:
    """Apply the missing ``migrations`` of ``component`` (each a SQL script).

    Each runs in its own IMMEDIATE transaction that re-reads the version first, so
    several processes opening the database at once apply each migration exactly once.
    """
    ensure_schema_table(conn)
    for version, script in enumerate(migrations, start=1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT version FROM schema_version WHERE component=?", (component,)
            ).fetchone()
            if row is None or row[0] < version:
                # executescript would COMMIT first; run the statements inside our transaction
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version(component, version) VALUES(?, ?)"
                    " ON CONFLICT(component) DO UPDATE SET version=excluded.version",
                    (component, version),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
