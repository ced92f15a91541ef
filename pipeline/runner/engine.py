"""The engine of one configuration: its parts put together, started and closed."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pluggy

from core_client.database import Database

from ..clients import build_client
from ..context import EngineContext
from ..hooks import HookFacade
from ..leases import COMPONENT, Leases
from ..ledger import Ledger
from ..observability.collector import EngineParts
from ..observability.daemon import DaemonWatch
from ..observability.source_health import SourceHealth
from ..observability.tally import Tally
from ..settings import ConfigError, Settings, SourceSettings
from ..sinks import Sink
from ..sources import Source
from ..spool import Spool
from ..state_database import heartbeat_name, open_state_database
from ..transforms import Transform
from .assembly import Assembly, engine_context, plugin_manager_for
from .backpressure import BackPressure, default_min_free
from .cache_refresh import CacheRefreshLoop
from .dry_run import DryRunSink
from .outcomes import Progress, RunStats, RunSummary
from .ownership import Ownership
from .record_flow import RecordFlow
from .refusal import KeyRefusal
from .scheduler import Scheduler
from .source_context import EngineSourceContext, SourceServices
from .storage import StorageTrouble
from .workers import WorkerPool, start_thread

SOURCE_CLOSE_TIMEOUT = 2.0  # seconds all sources together may take to close on shutdown
log = logging.getLogger("itglue_ingest.engine")


class _StateLock:
    """An exclusive lock on the state folder: one engine per ledger and spool.

    ``flock`` is released by the kernel when the process dies (even on SIGKILL), so a
    crash never leaves a stale lock behind.
    """

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise ConfigError(
                f"state.dir: another itglue-ingest engine is running on {path.parent}"
                " (stop it first, or give this configuration its own [state] dir)"
            ) from None

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = -1


class Engine:
    """The pipeline of one configuration (see :mod:`pipeline.runner`).

    :param settings: the validated configuration.
    :param pm: a plugin manager (default: :func:`plugin_manager_for` ``(settings)``).
    :param client_factory: builds the IT Glue client of the default instance on first
        use (default: :func:`pipeline.clients.build_client` of ``settings``).
    :param instances: with ``[itglue.instances.NAME]`` tables, a client factory per
        instance name (default: :func:`pipeline.clients.instance_factories`).
    :param dry_run: deliver nothing and never ack or nack a source (see
        :mod:`pipeline.runner.dry_run`; give it a copy of the state).
    :raises ConfigError: unknown source/transform/sink names or invalid options, naming
        the key (``sources[1].path: ...``).
    """

    def __init__(
        self,
        settings: Settings,
        pm: pluggy.PluginManager | None = None,
        *,
        client_factory: Callable[[], Any] | None = None,
        instances: Mapping[str, Callable[[], Any]] | None = None,
        dry_run: bool = False,
    ) -> None:
        self.dry_run = dry_run
        if pm is None:
            pm = plugin_manager_for(settings)
        self.settings = settings
        self.pm = pm
        try:
            self.hook = HookFacade(pm)
        except pluggy.PluginValidationError as e:
            raise ConfigError(f"plugins: {e}") from None
        self.stopping = threading.Event()  # sources and the spool's back-pressure see it
        self.state_dir = settings.state.dir
        self.tally = Tally()  # what this engine did, for the metrics endpoint
        if client_factory is None and not settings.itglue.instances:
            client_factory = partial(build_client, settings)
        self.context: EngineContext = engine_context(
            settings, self.hook, client_factory, self.tally, instances
        )
        self._recovered = False
        self._closed = False
        self._stats = RunStats()
        self.source_health = SourceHealth()
        self.started_at = time.time()
        # an instance refused its key (once: exit 5 when every instance did)
        self.key_refusal = KeyRefusal(len(settings.itglue.named))
        self.transforms: list[Transform] = []
        self.sources: dict[str, Source] = {}
        self.source_settings: dict[str, SourceSettings] = {}
        self._sink: Sink | None = None
        self._ledger: Ledger | None = None
        self._lease_db: Database | None = None
        self._state_lock: _StateLock | None = None
        self._pool: WorkerPool | None = None
        self.ownership = Ownership(())  # replaced once the state is open
        self._source_stops: dict[str, threading.Event] = {}  # each source's own stop
        self._scheduler: Scheduler | None = None
        self.watch: DaemonWatch | None = None  # while the daemon runs

        assembly = Assembly(settings, self.hook)
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(PermissionError):  # not ours to change: leave it
                self.state_dir.chmod(0o700)  # also when an installer made it 0755 before
            self._state_lock = _StateLock(self.state_dir / "engine.lock")
        except OSError as e:  # a file in the way (made since validation), no permission
            raise ConfigError(
                f"state.dir: cannot use {self.state_dir}: {e.strerror or e}"
            ) from None
        try:
            self._ledger = ledger = Ledger(
                open_state_database(settings, "ledger"),
                group_commit=settings.state.group_commit,
                collector=settings.state.collector,
            )
            if ledger.dialect != "sqlite":  # shared with other collectors: only ours
                ledger.own_sources = self.owned_sources
            self.spool = Spool(self.state_dir / "spool")
            self.ownership = self._ownership()
            self.transforms = assembly.transforms(self.context)
            sink = assembly.sink(self.context)
            self._sink = DryRunSink(sink) if dry_run else sink
            self._assemble(assembly, ledger)
        except BaseException:
            self.close()
            raise

    def _ownership(self) -> Ownership:
        """The sources this engine works on: all of them with its own state (SQLite);
        with a shared state (PostgreSQL), those whose lease it holds. A dry run takes
        no lease (it delivers nothing)."""
        names = [s.name for s in self.settings.sources if s.enabled]
        state = self.settings.state
        if state.backend != "postgresql" or self.dry_run:
            return Ownership(names)
        self._lease_db = open_state_database(self.settings, COMPONENT)
        return Ownership(names, Leases(self._lease_db, state.collector, state.lease_seconds))

    def _assemble(self, assembly: Assembly, ledger: Ledger) -> None:
        p = self.settings.pipeline
        winding_down = threading.Event()  # set while the pool stops: no new delivery
        self.trouble = trouble = StorageTrouble(self._probe_storage)
        min_free = self.settings.state.min_free_bytes
        pressure = BackPressure(
            ledger,
            self.spool,
            self.sources,
            max_records=p.spool_max_records,
            max_bytes=p.spool_max_bytes,
            min_free=default_min_free(self.state_dir) if min_free is None else min_free,
            trouble=trouble,
            stopping=self.stopping,
        )
        flow = RecordFlow(
            ledger=ledger,
            transforms=self.transforms,
            sink=self.sink,
            sources=self.sources,
            hook=self.hook,
            pressure=pressure,
            stats=self._stats,
            tally=self.tally,
            settings=p,
            winding_down=winding_down,
            trouble=trouble,
            refusal=self.key_refusal,
            post_actions=not self.dry_run,
            ownership=self.ownership,
            spool=self.spool if self.ownership.shared else None,
        )
        self._pool = pool = WorkerPool(
            ledger,
            p.workers,
            process=flow.process,
            on_error=flow.engine_error,
            after_each=pressure.space_may_be_free,
            winding_down=winding_down,
            trouble=trouble,
            settle=flow.settle,
        )
        services = SourceServices(
            ledger=ledger,
            spool=self.spool,
            pressure=pressure,
            hook=self.hook,
            stats=self._stats,
            notify_work=pool.notify_work,
            stopping=self.stopping,
            max_file_size=p.max_file_size,
            trouble=trouble,
            tally=self.tally,
            health=self.source_health,
            dry_run=self.dry_run,
            reread_foreign=self.ownership.shared,
            duplicates=flow,
            settle=pool.settle,
        )
        for i, s in enumerate(self.settings.sources):
            if s.enabled:
                self.sources[s.name] = assembly.source(i, s, self._source_context(services))
                self.source_settings[s.name] = s
        self._scheduler = Scheduler(
            sources=self.sources,
            pool=pool,
            ledger=ledger,
            stats=self._stats,
            stopping=self.stopping,
            settings=p,
            health=self.source_health,
            refusal=self.key_refusal,
            ownership=self.ownership,
            source_stops=self._source_stops,
        )

    def _source_context(
        self, services: SourceServices
    ) -> Callable[[SourceSettings], EngineSourceContext]:
        def make(s: SourceSettings) -> EngineSourceContext:
            ctx = EngineSourceContext(services, s)
            self._source_stops[s.name] = ctx.stopping
            return ctx

        return make

    def _probe_storage(self) -> None:
        """Storage trouble ends when the ledger and the spool take a small write again."""
        self.ledger.probe_write()
        self.spool.probe()

    def owned_sources(self) -> frozenset[str]:
        """The sources whose records this engine works on when the ledger is shared
        (PostgreSQL): the ones whose lease it holds now (:mod:`.ownership`). The one
        place that says so (the ledger's due, spool-load and unacked queries ask it).
        (A SQLite ledger is one collector's: all its records.)"""
        return self.ownership.owned()

    @property
    def ledger(self) -> Ledger:
        assert self._ledger is not None, "engine is closed"
        return self._ledger

    @property
    def sink(self) -> Sink:
        assert self._sink is not None, "engine has no sink"
        return self._sink

    # ------------------------------------------------------------------ runs

    def run_once(
        self,
        stop: threading.Event | None = None,
        *,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> RunSummary:
        """Scan every enabled source once and process until every record reached a final
        state (done, duplicate, failed), or no record arrived or finished for
        ``[pipeline] once_timeout`` seconds (only records failing transiently are left:
        ``timed_out``), or ``[pipeline] once_max_duration`` passed
        (``max_duration_reached``), or ``stop`` was set. Transient failures are retried
        with backoff meanwhile; a backlog is worked off however long it takes."""
        assert self._scheduler is not None, "engine is closed"
        self.recover()
        return self._scheduler.run_once(stop, on_progress=on_progress)

    def run(self, stop: threading.Event) -> None:
        """The daemon: every enabled source scans its backlog, then watches; workers
        deliver and retry, until ``stop`` is set. Then sources are told to stop, no new
        record is started, deliveries in flight finish their current record or are cut
        (their journal makes that safe), within ``[pipeline] shutdown_timeout`` seconds.
        Meanwhile the metadata cache is refreshed every ``[cache] refresh_interval``."""
        assert self._scheduler is not None, "engine is closed"
        self.recover()
        self._prepare_transforms()
        interval = self.settings.cache.refresh_interval
        refreshes = [
            CacheRefreshLoop(self.context, interval, stop, name or None)
            for name in (self.settings.itglue.instances or [""])
        ]
        with self.daemon_watch() as watch:
            self.watch = watch
            for refresh in refreshes:
                refresh.start()
            try:
                self._scheduler.run(stop)
            finally:
                self.watch = None
                stop.set()  # also when the scheduler failed: the refresh threads end
                for refresh in refreshes:
                    refresh.join(1.0)

    def _prepare_transforms(self) -> None:
        """Let the transforms get ready before the first record (see Transform.prepare)."""
        for transform in self.transforms:
            try:
                transform.prepare()
            except Exception:
                log.exception("transform %s raised while getting ready", transform.name)

    def observed_parts(self) -> EngineParts:
        """What the metrics and health endpoints read of this engine."""
        return EngineParts(
            tally=self.tally,
            sources=self.source_health,
            ledger=self.ledger,
            state_dir=self.state_dir,
            client=self.context.built_client,
            storage_trouble=lambda: self.trouble.active,
            started_at=self.started_at,
            clients=self.context.built_clients if self.settings.itglue.instances else None,
            owns=self.ownership.owns,
        )

    def daemon_watch(self) -> DaemonWatch:
        """The heartbeat and the ``[observability]`` endpoint of this engine's daemon."""
        pool = self._pool
        assert pool is not None, "engine is closed"
        return DaemonWatch(
            self.settings.observability,
            lambda component: open_state_database(self.settings, component),
            self.observed_parts(),
            last_tick=lambda: pool.last_tick,
            collector=heartbeat_name(self.settings),
        )

    def recover(self) -> None:
        """Start-of-run housekeeping after a crash: partial spool copies and spool files
        no record references are removed. (Records themselves resume on their own:
        every unfinished one is due.)"""
        if self._recovered:
            return
        self._recovered = True
        removed = self.spool.clean_tmp()
        with self.spool.lock:
            removed += self.spool.sweep(self.ledger.is_referenced)
        if removed:
            log.info("removed %d leftover spool file(s)", removed)
        # duplicates the settler of a killed process had not acked: a worker's, now
        self.ledger.unsettled_duplicates_due(time.time())
        unfinished: dict[str, int] = {}
        for states in self.ledger.counts().values():
            for state, n in states.items():
                if state in ("received", "ready", "delivering", "delivered"):
                    unfinished[state] = unfinished.get(state, 0) + n
        if unfinished:
            log.info(
                "resuming unfinished records: %s",
                ", ".join(f"{n} {state}" for state, n in sorted(unfinished.items())),
            )

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop everything still running and release sources, sink, client and ledger."""
        if self._closed:
            return
        self._closed = True
        self.stopping.set()
        for event in self._source_stops.values():
            event.set()
        if self._pool is not None:
            self._pool.stop(self.settings.pipeline.shutdown_timeout)
        # a delivery still in flight keeps the lease until the process ends
        self.ownership.stop(release=self._pool is None or not self._pool.busy())
        self._close_sources(SOURCE_CLOSE_TIMEOUT)
        for transform in self.transforms:
            try:
                transform.close()
            except Exception:
                log.exception("transform %s raised on close", transform.name)
        if self._sink is not None:
            try:
                self._sink.close()
            except Exception:
                log.exception("sink raised on close")
        try:
            self.context._close()
        except Exception:
            log.exception("client raised on close")
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        if self._lease_db is not None:
            self._lease_db.close()
            self._lease_db = None
        if self._state_lock is not None:
            self._state_lock.release()
            self._state_lock = None

    def _close_sources(self, timeout: float) -> None:
        """Close every source at once, waiting at most ``timeout`` seconds in all: a
        server that hangs on logout must not hold the shutdown past its 10 s."""

        def close(src: Source) -> None:
            try:
                src.close()
            except Exception:
                log.exception("source %s raised on close", src.name)

        closers = [start_thread(f"close-{n}", close, src) for n, src in self.sources.items()]
        deadline = time.monotonic() + timeout
        for t in closers:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("%s did not finish within %.0f s; not waiting for it", t.name, timeout)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
