"""The daemon's intake: each source's scan-then-watch thread, started and stopped one
source at a time, as the engine gains and loses the source (its lease, with several
collectors; every source at once, with one)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping

from ..sources import Source
from .workers import start_thread


class SourceIntake:
    """Starts and stops the watch threads of ``sources``; ``stops[name]`` is the event
    the source sees as ``context.stopping``; ``watch(source, stop)`` runs until
    ``stop`` is set."""

    def __init__(
        self,
        sources: Mapping[str, Source],
        stops: Mapping[str, threading.Event],
        watch: Callable[[Source, threading.Event], None],
    ) -> None:
        self._sources = sources
        self._stops = stops
        self._watch = watch
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._starts: Counter[str] = Counter()  # the latest start of each source wins

    def start(self, name: str) -> None:
        src = self._sources.get(name)
        if src is None:
            return
        with self._lock:
            self._starts[name] += 1
            start = self._starts[name]
            self._stops[name].clear()
            before = self._threads.get(name)
            self._threads[name] = start_thread(f"watch-{name}", self._run, src, start, before)

    def _run(self, src: Source, start: int, before: threading.Thread | None) -> None:
        # One watcher per source: a thread of an earlier start that did not see its stop
        # (stopped and started again at once) goes on watching; this one only waits.
        if before is not None:
            before.join()
        stop = self._stops[src.name]
        with self._lock:
            latest = self._starts[src.name] == start
        if latest and not stop.is_set():
            self._watch(src, stop)

    def stop(self, name: str) -> None:
        """Stop the source's intake (its thread ends when the source returns)."""
        if name in self._stops:
            self._stops[name].set()

    def stop_all(self) -> None:
        for stop in self._stops.values():
            stop.set()

    def join(self, deadline: Callable[[], float]) -> list[str]:
        """Wait for the threads, each at most ``deadline()`` seconds; the names of
        those still running."""
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(max(0.1, deadline()))
        return [t.name for t in threads if t.is_alive()]
