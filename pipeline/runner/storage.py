"""Trouble with the engine's own storage: the state folder's disk full, an I/O error, the
database locked or read-only, the PostgreSQL server unreachable. Never a record's fault,
so never a record's failure.

While it lasts the engine pauses (sources wait as for a full spool, workers start
nothing, the dispatcher probes with a capped exponential backoff), says so once when it
starts, at most once a minute while it lasts and once when it ends (an
:class:`~itglue_common.episode.Episode`), and goes on by itself as soon as a probe write
to the ledger and the spool succeeds.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable

from itglue_common.episode import Episode, Note

from ..spool import SpoolWriteError

log = logging.getLogger("itglue_ingest.engine")

# the file system refuses writes: full, over quota, failing, mounted read-only
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})
# SQLite's words for the same, and for a database another process holds or broke
_SQLITE_STORAGE = (
    "disk is full",
    "disk i/o error",
    "cannot rollback",
    "cannot commit",
    "no transaction is active",
    "within a transaction",
    "locked",
    "busy",
    "readonly",
    "unable to open",
    "malformed",
    "not a database",
    "out of memory",
)
FIRST_DELAY = 1.0  # seconds before the first probe; doubles per failed probe
MAX_DELAY = 60.0
REPORT_EVERY = 60.0  # seconds between "still in trouble" lines
CALM_AFTER = 60.0  # trouble again within this long after recovering: the same episode


class StorageError(Exception):
    """The engine's storage failed while moving a record: the record keeps its state."""


def storage_error(e: BaseException) -> str | None:
    """What is wrong with the engine's storage when ``e`` (or an exception it was raised
    from or while handling) is such trouble; None for anything else."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, SpoolWriteError):
            return str(cur)
        if isinstance(cur, sqlite3.OperationalError | sqlite3.DatabaseError):
            message = str(cur).lower()
            if type(cur) is sqlite3.DatabaseError or any(m in message for m in _SQLITE_STORAGE):
                return f"state database: {cur}"
        why = _postgres_trouble(cur)
        if why is not None:
            return f"state database: {why}"
        if isinstance(cur, OSError) and cur.errno in STORAGE_ERRNOS:
            where = f": {cur.filename}" if cur.filename else ""
            return f"{os.strerror(cur.errno or 0)}{where}"
        if isinstance(cur, StorageError):
            return str(cur)
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    return None


def _postgres_trouble(e: BaseException) -> str | None:
    """The PostgreSQL server unreachable, gone or refusing writes (connection lost, shut
    down, no connection from the pool in time, disk full, read-only): what the engine
    waits out like a full disk; None for anything else (a bug in a query is not)."""
    psycopg = sys.modules.get("psycopg")  # never imported: no PostgreSQL error exists
    if psycopg is None:
        return None
    if isinstance(e, psycopg.OperationalError | psycopg.errors.ReadOnlySqlTransaction):
        return str(e).strip() or type(e).__name__
    return None


class StorageTrouble:
    """The engine's "storage trouble" mode, shared by its threads (thread-safe).

    :param probe: a small write to the ledger and the spool; raises while it fails.
    """

    def __init__(
        self,
        probe: Callable[[], None],
        *,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        report_every: float = REPORT_EVERY,
    ) -> None:
        self._probe = probe
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._episode = Episode(every=report_every, calm_after=CALM_AFTER)
        self._cond = threading.Condition()
        self._active = False
        self._probing = False
        self._delay = first_delay
        self._next_probe = 0.0

    @property
    def active(self) -> bool:
        return self._active

    def report(self, e: BaseException, what: str) -> None:
        """The storage failed while doing ``what``: enter (or stay in) trouble mode."""
        why = storage_error(e) or f"{type(e).__name__}: {e}"
        now = time.monotonic()
        with self._cond:
            note = self._episode.failure(f"{what}: {why}")
            if self._active:
                if note is not None:
                    self._tell_still(note)
                return
            self._active = True
            if note is not None and note.kind == "start":  # a new episode
                self._delay = self._first_delay
                log.error(
                    "storage trouble (%s); pausing sources and deliveries, trying again in"
                    " %.0f s (backing off up to %.0f s); nothing is set aside",
                    note.last,
                    self._delay,
                    self._max_delay,
                )
            else:  # trouble right after it ended: the same episode, its backoff goes on
                self._delay = min(self._delay * 2, self._max_delay)
            self._next_probe = now + self._delay

    def wait_until_clear(self, stop: threading.Event) -> bool:
        """Block while in trouble, probing when due; True when clear, False on ``stop``."""
        while self._active and not stop.is_set():
            with self._cond:
                now = time.monotonic()
                if self._probing or now < self._next_probe:
                    # short waits: ``stop`` is an Event, not this condition
                    self._cond.wait(min(0.5, max(0.01, self._next_probe - now)))
                    continue
                self._probing = True
            try:
                self._probe_once()
            finally:
                with self._cond:
                    self._probing = False
                    self._cond.notify_all()
        return not stop.is_set()

    def _probe_once(self) -> None:
        try:
            self._probe()
        except Exception as e:
            with self._cond:
                why = storage_error(e) or f"{type(e).__name__}: {e}"
                note = self._episode.failure(f"probe: {why}")
                self._delay = min(self._delay * 2, self._max_delay)
                self._next_probe = time.monotonic() + self._delay
                if note is not None:
                    self._tell_still(note)
            return
        with self._cond:
            self._active = False
            episode = self._episode
            note = episode.success()
            (log.warning if note is not None else log.debug)(
                "storage usable again after %.0f s (%d error(s)); resuming",
                episode.seconds(),
                episode.failures,
            )

    def _tell_still(self, note: Note) -> None:
        log.warning(
            "storage trouble for %.0f s (%d error(s), last: %s); next try in %.0f s",
            note.seconds,
            note.failures,
            note.last,
            self._delay,
        )
