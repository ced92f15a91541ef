"""A throw-away PostgreSQL cluster for tests and benches: ``initdb`` and ``pg_ctl`` from
the Debian packages, in a temporary folder, listening only on a Unix socket there.

Started as an unprivileged user: ``initdb`` refuses to run as root, so when the tests
run as root the cluster's folder is given to ``nobody`` and the server runs as it (root
still connects through the socket). Durability settings are off unless ``durable``:
the tests kill collectors, never the database server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

SUPERUSER = "postgres"


def find_bin(name: str) -> str:
    """``initdb``/``pg_ctl``: on PATH, else in Debian's ``/usr/lib/postgresql/N/bin``."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not candidates:
        raise FileNotFoundError(
            f"{name} not found: install PostgreSQL (scripts/bootstrap.sh --test does)"
        )
    return candidates[0]


class PostgresServer:
    """One cluster; :meth:`create_database` hands out fresh, empty databases."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="itglue-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.port = 5432  # names the socket file only: no TCP listener
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            self._run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        self.started = False

    def _run(self, *args: str) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        done = subprocess.run(
            args,
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            **self._run_as,
        )
        if done.returncode:
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr[-2000:]}"
            )

    def start(self) -> PostgresServer:
        self._run(
            find_bin("initdb"),
            "-D", str(self.data),
            "-U", SUPERUSER,
            "-A", "trust",
            "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        self._serve()
        self.started = True
        return self

    def _serve(self) -> None:
        options = [
            "-k", str(self.socket_dir),
            "-p", str(self.port),
            "-c", "listen_addresses=",
            "-c", "max_connections=200",
            "-c", "shared_buffers=16MB",
        ]  # fmt: skip
        if not self.durable:
            options += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        self._run(
            find_bin("pg_ctl"),
            "-D", str(self.data),
            "-l", str(self.root / "server.log"),
            "-o", " ".join(options),
            "-w", "-t", "60",
            "start",
        )  # fmt: skip

    def pause(self) -> None:
        """Shut the server down (``pg_ctl stop -m fast``: connections are cut), keeping
        its data: what clients see when their database server goes away."""
        self._run(find_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server again on the same data after :meth:`pause`."""
        self._serve()

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(RuntimeError):
                self._run(find_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq connection string to ``dbname`` (as the superuser, no password)."""
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={dbname}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its DSN."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
