"""The WAL of the state database is checkpointed every ``WAL_AUTOCHECKPOINT`` pages."""

from __future__ import annotations

import os
from pathlib import Path

from core_client.sqlite import WAL_AUTOCHECKPOINT, connect, transaction

PAGE = 4096


def test_the_wal_holds_many_transactions_before_a_checkpoint(tmp_path: Path) -> None:
    """SQLite's default checkpoints after 1,000 pages, so its WAL file never grew much
    past that; here 3,000 pages of transactions all stay in the WAL (each index page is
    copied into the database once per checkpoint, however often it was written)."""
    db = tmp_path / "x.db"
    conn = connect(db)
    try:
        assert WAL_AUTOCHECKPOINT >= 4_000
        conn.execute("CREATE TABLE t (k BLOB PRIMARY KEY, v BLOB)")
        for _ in range(30):  # 30 transactions of about 100 pages each
            with transaction(conn):
                conn.executemany(
                    "INSERT INTO t VALUES (?, ?)",
                    ((os.urandom(16), os.urandom(3800)) for _ in range(100)),
                )
        assert os.path.getsize(f"{db}-wal") > 2_500 * PAGE
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (3000,)
    finally:
        conn.close()
