"""SQLite's locks survive other processes opening the database (issue 10, defect 1).

SQLite's locks are POSIX advisory locks: closing *any* descriptor of the database file
in a process drops them all. A process that opened the file outside SQLite lost its
locks; a second process (``status``, a monitoring script) then believed it was the last
user and deleted ``-wal`` and ``-shm`` under the live connections.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core_client.sqlite import connect, create_private

OPEN_AND_CLOSE = (
    "import sys; from pathlib import Path; from core_client.sqlite import connect\n"
    "c = connect(Path(sys.argv[1])); c.execute('SELECT count(*) FROM t').fetchone(); c.close()"
)


def deleted_wal_descriptors(pid: int) -> list[str]:
    """The targets of ``pid``'s descriptors that name a deleted -wal or -shm file."""
    out = []
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed while we looked
            continue
        if target.endswith(" (deleted)") and ("-wal" in target or "-shm" in target):
            out.append(target)
    return out


def test_another_process_closing_the_database_keeps_our_wal(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    first = connect(db)
    first.execute("CREATE TABLE t (v INTEGER)")
    first.execute("INSERT INTO t VALUES (1)")
    second = connect(db)  # the engine opens several connections to one file
    second.execute("INSERT INTO t VALUES (2)")
    try:
        for _ in range(3):
            subprocess.run([sys.executable, "-c", OPEN_AND_CLOSE, str(db)], check=True)
        assert deleted_wal_descriptors(os.getpid()) == []
        assert (tmp_path / "x.db-wal").exists()
        # writes after the other process left still reach the database
        second.execute("INSERT INTO t VALUES (3)")
    finally:
        second.close()
        first.close()
    check = connect(db)
    try:
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 3
    finally:
        check.close()


def test_create_private_makes_0600_and_never_replaces(tmp_path: Path) -> None:
    db = tmp_path / "y.db"
    create_private(db)
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    db.write_bytes(b"kept")
    create_private(db)
    assert db.read_bytes() == b"kept"
    assert [p.name for p in tmp_path.iterdir()] == ["y.db"]  # no temporary left behind
