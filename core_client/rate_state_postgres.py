"""The shared rate window in PostgreSQL: one budget for every collector of an account.

One row per instance (table ``rate_window``) holds the header of
:class:`~core_client.rate_state.WindowState` and its ring of per-slot counts as an
``INTEGER[]`` (about 1.3 KB, whatever the window and the rate). Every decision is one
short transaction -- read the row, decide, write it back -- under the component's
advisory lock (:class:`~core_client.postgres.PostgresDatabase`), so collectors on
several machines draw from one budget and what a 429 taught one of them (the learned
estimate, the pause, the probe in flight) holds for all.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from .database import Database, Migrations
from .exceptions import ClientClosedError
from .postgres import OperationalError
from .rate_state import _HEADER_FIELDS, SLOTS, Store, StoreUnavailable, WindowState, _Ring

log = logging.getLogger("itglue_ingest.client.ratelimit")

MIGRATIONS: Migrations = {
    "postgresql": [
        # one column per WindowState header field (rate_state._HEADER_FIELDS), in order
        "CREATE TABLE rate_window ("
        " instance TEXT PRIMARY KEY,"
        " slot_width DOUBLE PRECISION NOT NULL,"
        " head BIGINT NOT NULL,"
        " total BIGINT NOT NULL,"
        " last_sent DOUBLE PRECISION NOT NULL,"
        " pause_until DOUBLE PRECISION NOT NULL,"
        " probe_until DOUBLE PRECISION NOT NULL,"
        " calm_until DOUBLE PRECISION NOT NULL,"
        " refused_since DOUBLE PRECISION NOT NULL,"
        " recovery DOUBLE PRECISION NOT NULL,"
        " estimate BIGINT NOT NULL,"
        " probe_run BIGINT NOT NULL,"
        " ring INTEGER[] NOT NULL)"
    ]
}

# the header columns in rate_state._HEADER_FIELDS order, then the ring; one row always
# (NULLs: no budget yet), and in the same round trip: losing the last decisions to a
# server crash costs nothing worth a WAL flush per request (the window refills from the
# answers), so this transaction commits without waiting for one
_SELECT = (
    "SELECT slot_width, head, total, last_sent, pause_until, probe_until, calm_until,"
    " refused_since, recovery, estimate, probe_run, ring"
    " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS s"
    " LEFT JOIN rate_window ON instance = ?"
)
_UPSERT = (
    "INSERT INTO rate_window (instance, slot_width, head, total, last_sent, pause_until,"
    " probe_until, calm_until, refused_since, recovery, estimate, probe_run, ring)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS integer[]))"
    " ON CONFLICT (instance) DO UPDATE SET slot_width = excluded.slot_width,"
    " head = excluded.head, total = excluded.total, last_sent = excluded.last_sent,"
    " pause_until = excluded.pause_until, probe_until = excluded.probe_until,"
    " calm_until = excluded.calm_until, refused_since = excluded.refused_since,"
    " recovery = excluded.recovery, estimate = excluded.estimate,"
    " probe_run = excluded.probe_run, ring = excluded.ring"
)


class PostgresStore(Store):
    """The window of instance ``name`` in a PostgreSQL state database (which it owns:
    :meth:`close` closes it). Open one per process: pooled connections do not survive
    a fork."""

    def __init__(self, database: Database, name: str, slot_width: float) -> None:
        if database.dialect != "postgresql":
            raise ValueError("PostgresStore needs a PostgreSQL database")
        self.database = database
        self.name = name
        self.slot_width = slot_width
        self._pid = os.getpid()
        self._closed = threading.Event()
        database.migrate("ratelimit", MIGRATIONS)

    def _load(self, conn: Any) -> WindowState:
        *header, ring = conn.execute(_SELECT, (self.name,)).fetchone()
        if ring is not None:
            if header[0] == self.slot_width and len(ring) == SLOTS:
                fields = dict(zip(_HEADER_FIELDS, header, strict=True))
                return WindowState(**fields, ring=_Ring(list(ring)))
            log.warning(
                "the rate budget of %s in %s was written for another window; starting afresh",
                self.name,
                self.database.describe(),
            )
        return WindowState(self.slot_width)

    def transact(self, fn: Callable[[WindowState], Any]) -> Any:
        if self._closed.is_set():
            raise ClientClosedError("the rate limiter is closed")
        if self._pid != os.getpid():
            raise RuntimeError("a PostgreSQL rate budget cannot cross a fork: open one per process")
        try:
            with self.database.transaction() as conn:
                state = self._load(conn)
                before = (state.header(), state.ring.cells())
                result = fn(state)
                after = (state.header(), state.ring.cells())
                if after != before:
                    # the ring as an array literal: cheaper to send than 301 parameters
                    ring = "{" + ",".join(map(str, after[1])) + "}"
                    conn.execute(_UPSERT, (self.name, *after[0], ring))
                return result
        except Exception as e:
            if self._closed.is_set():  # close() took the pool from under a waiter
                raise ClientClosedError("the rate limiter is closed") from None
            if isinstance(e, OperationalError):  # unreachable, restarted, connection lost
                raise StoreUnavailable(f"rate budget in {self.database.describe()}: {e}") from e
            raise

    def close(self) -> None:
        self._closed.set()
        if self._pid == os.getpid():
            self.database.close()
