"""The daemon's heartbeat in the state database: who runs (pid, host, since when), when
it last beat, its last delivery and each source's state. ``status`` reads it from
another process: a heartbeat older than three intervals without a clean stop means the
daemon died or hangs."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core_client.database import Database, Dialect, SQLiteDatabase

from ..logs import redact
from ..state_database import database_errors
from .source_health import SourceState

log = logging.getLogger("itglue_ingest.engine")

PER_COLLECTOR = """
    CREATE TABLE daemon_heartbeats (
        collector TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        started_at {real} NOT NULL,
        beat_at {real} NOT NULL,
        interval {real} NOT NULL,
        stopped_at {real},
        last_delivery_at {real}
    );
    INSERT INTO daemon_heartbeats SELECT '', pid, host, started_at, beat_at, interval,
        stopped_at, last_delivery_at FROM daemon_heartbeat;
    CREATE TABLE daemon_source_states (
        collector TEXT NOT NULL,
        source TEXT NOT NULL,
        connected INTEGER,
        last_scan_at {real},
        error TEXT,
        PRIMARY KEY (collector, source)
    );
    INSERT INTO daemon_source_states SELECT '', source, connected, last_scan_at, error
        FROM daemon_sources;
    DROP TABLE daemon_heartbeat;
    DROP TABLE daemon_sources
"""

SQLITE_MIGRATIONS = [
    """
    CREATE TABLE daemon_heartbeat (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        started_at REAL NOT NULL,
        beat_at REAL NOT NULL,
        interval REAL NOT NULL,
        stopped_at REAL,
        last_delivery_at REAL
    );
    CREATE TABLE daemon_sources (
        source TEXT PRIMARY KEY,
        connected INTEGER,
        last_scan_at REAL,
        error TEXT
    )
    """,
    # one heartbeat per collector (several share a PostgreSQL state); a SQLite state is
    # one collector's, whose heartbeat keeps the name ''
    PER_COLLECTOR.format(real="REAL"),
]
POSTGRESQL_MIGRATIONS = [
    """
    CREATE TABLE daemon_heartbeat (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        beat_at DOUBLE PRECISION NOT NULL,
        interval DOUBLE PRECISION NOT NULL,
        stopped_at DOUBLE PRECISION,
        last_delivery_at DOUBLE PRECISION
    );
    CREATE TABLE daemon_sources (
        source TEXT PRIMARY KEY,
        connected INTEGER,
        last_scan_at DOUBLE PRECISION,
        error TEXT
    )
    """,
    PER_COLLECTOR.format(real="DOUBLE PRECISION"),
]
MIGRATIONS: dict[Dialect, list[str]] = {
    "sqlite": SQLITE_MIGRATIONS,
    "postgresql": POSTGRESQL_MIGRATIONS,
}
STALE_AFTER_BEATS = 3  # a heartbeat this many intervals old (and no clean stop) is stale


@dataclass(frozen=True)
class Heartbeat:
    """The last heartbeat a daemon wrote."""

    pid: int
    host: str
    started_at: float
    beat_at: float
    interval: float
    stopped_at: float | None
    last_delivery_at: float | None
    sources: dict[str, SourceState] = field(default_factory=dict)

    def daemon_state(self, now: float | None = None) -> str:
        """``running``, ``stopped`` (it said so when it stopped) or ``stale`` (it beat
        last more than three intervals ago without stopping: crashed or hung)."""
        if self.stopped_at is not None:
            return "stopped"
        now = time.time() if now is None else now
        return "stale" if now - self.beat_at > STALE_AFTER_BEATS * self.interval else "running"


class HeartbeatStore:
    """The heartbeat tables of the state database (closed with this store); a path
    opens that SQLite file. ``collector``: whose heartbeat this store writes and
    :meth:`read` returns ('' in a SQLite state: one collector's)."""

    def __init__(self, database: Database | Path, collector: str = "") -> None:
        self._db = SQLiteDatabase(database) if isinstance(database, Path) else database
        self._db.migrate("daemon", MIGRATIONS)
        self.collector = collector

    def close(self) -> None:
        self._db.close()

    def beat(self, hb: Heartbeat) -> None:
        with self._db.transaction() as c:
            c.execute(
                "INSERT INTO daemon_heartbeats (collector, pid, host, started_at, beat_at,"
                " interval, stopped_at, last_delivery_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(collector) DO UPDATE SET pid=excluded.pid, host=excluded.host,"
                " started_at=excluded.started_at, beat_at=excluded.beat_at,"
                " interval=excluded.interval, stopped_at=excluded.stopped_at,"
                " last_delivery_at=excluded.last_delivery_at",
                (
                    self.collector,
                    hb.pid,
                    hb.host,
                    hb.started_at,
                    hb.beat_at,
                    hb.interval,
                    hb.stopped_at,
                    hb.last_delivery_at,
                ),
            )
            c.execute("DELETE FROM daemon_source_states WHERE collector=?", (self.collector,))
            c.executemany(
                "INSERT INTO daemon_source_states (collector, source, connected, last_scan_at,"
                " error) VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        self.collector,
                        name,
                        None if s.connected is None else int(s.connected),
                        s.last_scan_at,
                        redact(s.error) if s.error else None,
                    )
                    for name, s in sorted(hb.sources.items())
                ],
            )

    def read(self) -> Heartbeat | None:
        """This collector's last heartbeat."""
        return self.read_all().get(self.collector)

    def read_all(self) -> dict[str, Heartbeat]:
        """Every collector's last heartbeat (several share a PostgreSQL state)."""
        with self._db.reading() as c:
            beats = c.execute(
                "SELECT collector, pid, host, started_at, beat_at, interval, stopped_at,"
                " last_delivery_at FROM daemon_heartbeats"
            ).fetchall()
            rows = c.execute(
                "SELECT collector, source, connected, last_scan_at, error FROM daemon_source_states"
            ).fetchall()
        sources: dict[str, dict[str, SourceState]] = {}
        for collector, name, up, last, error in rows:
            state = SourceState(None if up is None else bool(up), last, error)
            sources.setdefault(str(collector), {})[str(name)] = state
        return {
            str(collector): Heartbeat(
                pid, host, started, beat, interval, stopped, delivered, sources.get(collector, {})
            )
            for collector, pid, host, started, beat, interval, stopped, delivered in beats
        }


class HeartbeatWriter:
    """Writes the heartbeat every ``interval`` seconds on its own thread, and a last one
    saying "stopped" when :meth:`stop` is called. A write that fails (storage trouble)
    is retried at the next beat: the engine reports that trouble itself."""

    def __init__(
        self,
        database: Database | Path,
        interval: float,
        sources: Callable[[], dict[str, SourceState]],
        last_delivery: Callable[[], float | None],
        collector: str = "",
    ) -> None:
        self._store = HeartbeatStore(database, collector)
        previous = self._store.read()  # the last delivery is remembered across restarts
        self._delivered_before = previous.last_delivery_at if previous else None
        self._interval = interval
        self._sources = sources
        self._last_delivery = last_delivery
        self._started_at = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beat_at: float | None = None  # monotonic time of the last written beat

    def start(self) -> None:
        self._write(stopped=False)
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._write(stopped=False)

    def _write(self, *, stopped: bool) -> None:
        now = time.time()
        try:
            self._store.beat(
                Heartbeat(
                    pid=os.getpid(),
                    host=socket.gethostname(),
                    started_at=self._started_at,
                    beat_at=now,
                    interval=self._interval,
                    stopped_at=now if stopped else None,
                    last_delivery_at=self._last_delivery() or self._delivered_before,
                    sources=self._sources(),
                )
            )
            self.beat_at = time.monotonic()
        except Exception as e:
            if not isinstance(e, database_errors()):
                raise
            log.debug("cannot write the heartbeat: %s", e)  # storage trouble: told elsewhere

    def stop(self) -> None:
        """The last beat says "stopped" (only when a first one said "running")."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._write(stopped=True)
        self._store.close()
