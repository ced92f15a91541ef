"""Back-pressure: the spool holds at most ``spool_max_records``/``spool_max_bytes`` of
unfinished records; an emitting source waits until deliveries free room."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping

from ..ledger import Ledger
from ..sources import Source
from ..spool import Spool

log = logging.getLogger("itglue_ingest.engine")


class BackPressure:
    """The spool's bound, and the freeing of spool files no record needs any more."""

    def __init__(
        self,
        ledger: Ledger,
        spool: Spool,
        sources: Mapping[str, Source],
        *,
        max_records: int,
        max_bytes: int,
        stopping: threading.Event,
    ) -> None:
        self._ledger = ledger
        self._spool = spool
        self._sources = sources  # the engine's (filled after this is made)
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._stopping = stopping
        self._space = threading.Condition()

    def full(self) -> bool:
        # records of disabled or removed sources wait for their ack until the source is
        # back: they cannot make room, so they do not count (they would block every emit)
        records, size = self._ledger.spool_load(self._sources)
        return records >= self._max_records or size >= self._max_bytes

    def wait_for_space(self) -> None:
        """Block an emitting source while the spool is full (until ``stopping``)."""
        warned = False
        while not self._stopping.is_set() and self.full():
            if not warned:
                log.info("spool full; waiting for deliveries to free space")
                warned = True
            with self._space:
                self._space.wait(0.2)

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
