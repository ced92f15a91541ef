"""The daemon's scheduled cache refresh: each cached kind once per ``[cache] refresh_interval``.

Each IT Glue instance has a loop of its own (its own cache and budget). Kinds are
refreshed one at a time, at least ``interval / number of kinds`` apart (at
most a minute), so a refresh never takes a burst out of the account's budget that
deliveries would wait for; each refresh costs requests in proportion to what changed
(:mod:`core_client.cache.incremental`). Only a pipeline that talks to IT Glue (its
client was built) refreshes; a failed refresh keeps the cached data and is tried again
after a tenth of the interval.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core_client.cache import MetadataCache

    from ..context import EngineContext

log = logging.getLogger("itglue_ingest.cache")

MAX_SPACING = 60.0  # seconds between two kinds' refreshes, at most
IDLE_CHECK = 30.0  # seconds between looks for a client while the pipeline has none


class CacheRefreshLoop:
    """A thread refreshing the engine's metadata cache until ``stop`` is set."""

    def __init__(
        self,
        context: EngineContext,
        interval: float,
        stop: threading.Event,
        instance: str | None = None,
    ) -> None:
        from core_client.cache.incremental import PLANS

        self._context = context
        self._instance = instance  # whose cache (None: the default instance's)
        self.interval = interval
        self._stop = stop
        self._kinds = list(PLANS)
        self.spacing = min(interval / len(self._kinds), MAX_SPACING)
        # kind -> not before then (after this run's attempt: the interval, a tenth of it
        # after a failure; also for kinds whose refresh records no time, documents
        # when no organization has any)
        self._not_before: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self.refreshed: list[str] = []  # kinds refreshed, in order (tests, status)

    def start(self) -> None:
        if self.interval <= 0:
            return
        name = f"cache-refresh-{self._instance}" if self._instance else "cache-refresh"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _due(self, cache: MetadataCache, kind: str) -> float:
        """When ``kind`` is next due (epoch seconds)."""
        if kind == "documents":
            times = [cache.last_refresh(kind, org) for org in cache.document_organizations()]
            last = min((t or 0.0 for t in times), default=None)
        else:
            last = cache.last_refresh(kind)
        due = (last or 0.0) + self.interval
        return max(due, self._not_before.get(kind, 0.0))

    def _run(self) -> None:
        from core_client.cache.incremental import CacheRefresher

        while not self._stop.is_set():
            client = self._context.built_client(self._instance)
            if client is None:
                self._stop.wait(IDLE_CHECK)
                continue
            try:
                cache = client.cache
                kind, due = min(((k, self._due(cache, k)) for k in self._kinds), key=lambda x: x[1])
            except Exception as e:  # the database is busy or gone: look again later
                log.warning("scheduled cache refresh: cannot read the cache: %s", e)
                self._stop.wait(self.spacing or 1.0)
                continue
            wait = due - time.time()
            if wait > 0:
                self._stop.wait(min(wait, IDLE_CHECK))
                continue
            try:
                result = CacheRefresher(client, cache).refresh(kind)
            except Exception as e:
                self._not_before[kind] = time.time() + self.interval / 10
                log.warning("scheduled cache refresh of %s failed, cached data kept: %s", kind, e)
            else:
                self._not_before[kind] = time.time() + self.interval
                self.refreshed.append(kind)
                log.info(
                    "cache: %s refreshed (%s): %d records, %d requests",
                    kind,
                    result.mode,
                    result.records,
                    result.requests,
                )
            self._stop.wait(self.spacing)
