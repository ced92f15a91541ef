"""Runs: the sources' scan/watch threads next to the worker pool.

``run_once`` calls each enabled source's ``scan()`` once and waits until every record
reached a final state; the daemon (``run``) calls ``scan()`` and then ``watch()``
(restarted with backoff if it raises) until it is told to stop.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping

from ..errors import PipelineError, ScanIncomplete
from ..ledger import Ledger
from ..observability.source_health import SourceHealth
from ..settings import PipelineSettings
from ..sources import Source
from .intake import SourceIntake
from .outcomes import Progress, RunStats, RunSummary
from .ownership import Ownership
from .refusal import KeyRefusal
from .workers import WorkerPool, start_thread

log = logging.getLogger("itglue_ingest.engine")


class StallClock:
    """``once_timeout``: the run is over when no record arrived or finished for that long.

    What is left then are records that keep failing transiently (each waiting for its
    next retry); a backlog that is being worked off keeps the run going however long it
    takes (``once_max_duration`` is the cap on that).
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._seen: tuple[int, int] | None = None
        self._since = 0.0

    def stalled(self, progress: Progress, now: float) -> bool:
        seen = (progress.received, progress.finished)
        if seen != self._seen:
            self._seen, self._since = seen, now
        return now - self._since >= self._timeout


class Scheduler:
    """Starts and stops the sources' threads and the worker pool for a run."""

    def __init__(
        self,
        *,
        sources: Mapping[str, Source],
        pool: WorkerPool,
        ledger: Ledger,
        stats: RunStats,
        stopping: threading.Event,
        settings: PipelineSettings,
        health: SourceHealth,
        refusal: KeyRefusal,
        ownership: Ownership,
        source_stops: Mapping[str, threading.Event],
    ) -> None:
        self._sources = sources
        self._ownership = ownership  # which sources this engine works on now
        self._source_stops = source_stops  # each source's context.stopping
        self._health = health
        self._pool = pool
        self._ledger = ledger
        self._stats = stats
        self._stopping = stopping  # the sources and the back-pressure see it
        self._settings = settings
        self._scan_errors: dict[str, str] = {}  # source name -> why its last scan failed
        self._scan_left: dict[str, str] = {}  # source name -> what its last scan left over
        self._refusal = refusal

    def run_once(
        self,
        stop: threading.Event | None = None,
        *,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> RunSummary:
        """See :meth:`pipeline.runner.Engine.run_once`."""
        started = time.time()
        limit = self._settings.once_max_duration
        cut_at = time.monotonic() + limit if limit is not None else math.inf
        stall = StallClock(self._settings.once_timeout)
        self._stopping.clear()
        self._stats.clear()
        self._refusal.clear()  # found again within a tick if the key is still refused
        self._ownership.on_gain = self._ownership.on_loss = lambda _name: None
        self._ownership.start()  # with several collectors: the sources free or ours
        owned = self._ownership.owned()
        for name in owned:
            self._source_stops[name].clear()
        backlog = self._ledger.count_active()  # unfinished records from earlier runs
        self._pool.start()
        scanning_sources = {n: src for n, src in self._sources.items() if n in owned}
        scanners = [
            start_thread(f"scan-{name}", self._scan, src) for name, src in scanning_sources.items()
        ]
        timed_out = cut = interrupted = False
        try:
            while True:
                if stop is not None and stop.is_set():
                    interrupted = True
                    break
                if self._refusal.event.is_set():  # nothing can land: stop, say so
                    break
                progress = self._stats.progress(backlog)
                now = time.monotonic()
                if now >= cut_at:
                    cut = True
                    break
                if stall.stalled(progress, now):
                    timed_out = True
                    break
                scanning = any(t.is_alive() for t in scanners)
                if on_progress is not None:
                    on_progress(progress)
                if not scanning and self._idle():
                    break
                (stop or threading.Event()).wait(0.1)
        finally:
            unfinished = [
                name for name, t in zip(scanning_sources, scanners, strict=True) if t.is_alive()
            ]
            # one shutdown budget for everything: sources and workers are told at once
            budget_end = time.monotonic() + self._settings.shutdown_timeout
            self._halt()
            self._pool.wind_down()
            for t in scanners:
                t.join(max(0.0, budget_end - time.monotonic()))
            self._pool.stop(max(0.1, budget_end - time.monotonic()))
            self._stopping.clear()
            # the run is over, not the engine: a source used again (the next run, a
            # direct scan) may go on; one whose scan still runs stays told to stop
            for name, t in zip(scanning_sources, scanners, strict=True):
                if not t.is_alive():
                    self._source_stops[name].clear()
        if on_progress is not None:
            on_progress(self._stats.progress(backlog))
        key_refused = self._refusal.reason
        if key_refused is not None:
            for rid in self._refusal.held_records():  # due as soon as the key is fixed
                self._ledger.postpone(rid, 0.0, count_attempt=False)
        summary = self._summary(started)
        summary.timed_out, summary.interrupted = timed_out, interrupted
        summary.max_duration_reached = cut and (summary.pending > 0 or bool(unfinished))
        summary.key_refused = key_refused
        for name in unfinished:
            summary.deferred.setdefault(name, "its scan did not finish; the next run goes on")
        for name in sorted(set(self._sources) - owned):
            holder = self._ownership.holders.get(name, "another collector")
            summary.deferred.setdefault(name, f"collector {holder} owns it (its lease is live)")
        # after the summary (of the owned sources' records) and the pool's stop: a
        # delivery still in flight keeps the lease until the process ends
        self._ownership.stop(release=not self._pool.busy())
        return summary

    def run(self, stop: threading.Event) -> None:
        """See :meth:`pipeline.runner.Engine.run`."""
        self._stopping.clear()
        self._pool.start()
        intake = SourceIntake(self._sources, self._source_stops, self._watch)
        # a source's intake runs while this engine owns it: at once for every source
        # with one collector per state; with several, as its lease comes and goes
        self._ownership.on_gain = intake.start
        self._ownership.on_loss = intake.stop
        self._ownership.start()
        log.info("running: %d source(s), %d worker(s)", len(self._sources), self._pool.size)
        try:
            stop.wait()
        finally:
            log.info("stopping")
            t0 = time.monotonic()
            budget = self._settings.shutdown_timeout
            self._halt()
            self._pool.stop(budget)
            still = intake.join(lambda: budget - (time.monotonic() - t0))
            if still:
                log.warning("sources still busy at shutdown: %s", ", ".join(still))
            # a delivery still in flight keeps the lease until the process ends
            self._ownership.stop(release=not self._pool.busy())
            log.info("stopped in %.1f s", time.monotonic() - t0)

    def _halt(self) -> None:
        """Tell every source, and the back-pressure, that the engine stops."""
        self._stopping.set()
        for event in self._source_stops.values():
            event.set()

    def _scan(self, src: Source) -> None:
        stopping = self._source_stops[src.name]
        mark = self._health.mark(src.name)
        self._scan_left.pop(src.name, None)
        try:
            src.scan()
        except ScanIncomplete as e:  # not an error: the next scan takes the rest
            log.warning("source %s: %s", src.name, e.reason)
            self._scan_left[src.name] = e.reason
            self._scan_errors.pop(src.name, None)
            if not stopping.is_set():  # it answered: reachable
                self._health.scan_returned(src.name, mark)
        except PipelineError as e:  # the source's own account of why it could not scan
            log.error("source %s: scan failed: %s", src.name, e.reason)
            self._scan_errors[src.name] = e.reason
            self._health.trouble(src.name, e.reason)
        except Exception as e:
            log.exception("source %s: scan raised", src.name)
            self._scan_errors[src.name] = f"scan raised {type(e).__name__}: {e}"
            self._health.trouble(src.name, self._scan_errors[src.name])
        else:
            self._scan_errors.pop(src.name, None)
            if not stopping.is_set():  # a scan cut short by a stop proves nothing
                self._health.scan_returned(src.name, mark)

    def _watch(self, src: Source, stopping: threading.Event) -> None:
        delay = 1.0
        self._scan(src)
        while not stopping.is_set():
            try:
                src.watch()
                delay = 1.0
            except Exception:
                log.exception("source %s: watch raised; restarting in %.0f s", src.name, delay)
            if stopping.wait(delay):
                break
            delay = min(delay * 2, 60.0)

    def _idle(self) -> bool:
        # records an instance's refused key holds wait for the next run, as when every
        # instance refused (the loop stops on the refusal's event then)
        held = len(self._refusal.held_records())
        return (
            not self._pool.busy()
            and self._ledger.count_active() <= held
            and self._ledger.count_unacked_due(time.time()) == 0
        )

    def _summary(self, started: float) -> RunSummary:
        s = RunSummary(elapsed=time.time() - started)
        for source, states in self._ledger.counts_since(started).items():
            per = {
                "delivered": states.get("delivered", 0) + states.get("done", 0),
                "duplicate": states.get("duplicate", 0),
                "failed": states.get("failed", 0),
                "pending": sum(states.get(k, 0) for k in ("received", "ready", "delivering")),
            }
            s.by_source[source] = per
            s.delivered += per["delivered"]
            s.duplicate += per["duplicate"]
            s.failed += per["failed"]
        s.pending = self._ledger.count_active()
        s.source_errors = dict(self._scan_errors)
        s.deferred = dict(self._scan_left)
        s.failures = [
            {"id": e.id, "source": e.source, "source_ref": e.source_ref, "reason": e.reason}
            for e in self._ledger.failed(since=started)
        ]
        return s
