"""Back-pressure: the spool holds at most ``spool_max_records``/``spool_max_bytes`` of
unfinished records, the state folder keeps ``[state] min_free_bytes`` free, and nothing
is spooled in storage trouble; an emitting source waits until there is room again."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import TransientError
from ..ledger import Ledger
from ..sources import Source
from ..spool import Spool
from .storage import StorageTrouble

log = logging.getLogger("itglue_ingest.engine")
LOG_EVERY = 60.0  # seconds between two "waiting" lines for the same reason
GIB = 1024**3
SPOOL_FULL = "spool full"
ESTIMATE_AGE = 1.0  # seconds the spool's load is estimated between two ledger queries
EXACT_AGE = 0.02  # ... and how old the ledger's answer may be when the estimate is full


def default_min_free(folder: Path) -> int:
    """``[state] min_free_bytes`` when unset: 5% of the state folder's file system, at
    most 1 GiB (a small disk keeps room for the ledger to finish what it holds)."""
    st = os.statvfs(folder)
    return min(GIB, st.f_blocks * st.f_frsize // 20)


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged writer can still use on ``folder``'s file system."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


class BackPressure:
    """The spool's bounds, and the freeing of spool files no record needs any more."""

    def __init__(
        self,
        ledger: Ledger,
        spool: Spool,
        sources: Mapping[str, Source],
        *,
        max_records: int,
        max_bytes: int,
        min_free: int,
        trouble: StorageTrouble,
        stopping: threading.Event,
    ) -> None:
        self._ledger = ledger
        self._spool = spool
        self._sources = sources  # the engine's (filled after this is made)
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._min_free = min_free
        self._trouble = trouble
        self._stopping = stopping
        self._space = threading.Condition()
        self._logged: dict[str, float] = {}  # reason -> when it was last logged
        # The spool's load as the ledger last said, plus what was spooled since: never
        # less than the truth (records only leave it meanwhile), so the ledger is asked
        # once a second, and again only when this estimate reaches a bound.
        self._load_lock = threading.Lock()
        self._load: tuple[int, int] | None = None
        self._load_at = 0.0  # monotonic

    def full(self) -> str | None:
        """Why a source must wait before spooling more, or None."""
        if self._trouble.active:
            return "storage trouble"
        if self._min_free and free_bytes(self._spool.root) < self._min_free:
            return f"less than [state] min_free_bytes = {self._min_free} bytes free"
        # records of disabled or removed sources wait for their ack until the source is
        # back: they cannot make room, so they do not count (they would block every emit)
        if self._over(self._estimate(exact=False)) and self._over(self._estimate(exact=True)):
            return SPOOL_FULL
        return None

    def _over(self, load: tuple[int, int]) -> bool:
        return load[0] >= self._max_records or load[1] >= self._max_bytes

    def _estimate(self, *, exact: bool) -> tuple[int, int]:
        """The spool's load: the ledger's answer (``exact``: asked now, unless it was in
        the last ``EXACT_AGE`` seconds) or the estimate."""
        now = time.monotonic()
        with self._load_lock:
            age = now - self._load_at
            if self._load is None or age >= (EXACT_AGE if exact else ESTIMATE_AGE):
                self._load = self._ledger.spool_load(self._sources)
                self._load_at = now
            return self._load

    def spooled(self, size: int) -> None:
        """A record of ``size`` bytes now holds spool space (its row is committed)."""
        with self._load_lock:
            if self._load is not None:
                self._load = (self._load[0] + 1, self._load[1] + size)

    def wait_for_space(self) -> None:
        """Block an emitting source while the spool is full (until ``stopping``).

        :raises TransientError: stopping while the state folder has no room (a full
            spool's bounds may be overrun a little at shutdown; the disk may not).
        """
        why: str | None = None
        while not self._stopping.is_set():
            why = self.full()
            if why is None:
                return
            self._log_once_a_minute(why)
            with self._space:
                self._space.wait(0.2)
        if why is not None and why != SPOOL_FULL:
            raise TransientError(f"{why}; taken later")

    def _log_once_a_minute(self, why: str) -> None:
        # every source thread waits here: one line per reason and minute, not per emit
        now = time.monotonic()
        with self._space:
            if now - self._logged.get(why, -LOG_EVERY) < LOG_EVERY:
                return
            self._logged[why] = now
        log.info("%s; sources wait before spooling more", why)

    def free_unreferenced(self, hashes: Iterable[str]) -> None:
        """Remove spool files that no unfinished record references any more."""
        with self._spool.lock:
            for sha in set(hashes):
                if not self._ledger.is_referenced(sha):
                    self._spool.free(sha)
        self.space_may_be_free()

    def space_may_be_free(self) -> None:
        """A record finished: wake the waiting sources to look again."""
        with self._space:
            self._space.notify_all()
