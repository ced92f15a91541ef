"""The engine: sources -> spool + ledger -> transforms -> dedupe -> sink -> ack.

Sources run in their own threads and :meth:`EngineSourceContext.emit` drafts: the bytes go
to the spool and the record to the ledger as ``received`` before ``emit`` returns. A
dispatcher thread hands due ledger rows (a batch at a time) to a small worker pool; a
worker moves one record as far as it can go, committing each state before the next
step:

    received --transforms--> ready --dedupe--> delivering --sink.deliver--> delivered
             --source.ack--> done (spool freed)

(``ready`` and the dedupe decision are committed in one transaction.) ``run_once`` calls
each enabled source's ``scan()`` once; the daemon (``run``) calls ``scan()`` and then
``watch()`` (restarted with backoff if it raises). Transforms and the sink are shared by
all workers, so they must be thread-safe.

Failures: ``PermanentError`` (and any unexpected exception, named after the plugin that
raised it) -> ``failed`` + reason -> ``source.nack``; ``TransientError`` (or a client
exception whose ``transient`` attribute is True) -> the record keeps its state and is due
again after a jittered exponential backoff. Because every step is durable, restarting
after a crash (even SIGKILL) resumes each record where it was: ``delivering`` records are
delivered again with the same step journal (the sink skips finished steps and reconciles
ambiguous creates), ``delivered`` records are acked again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import keyring
import pluggy
from pydantic import BaseModel, ValidationError

from itglue_common import APP_NAME, backoff_delay

from .context import EngineContext
from .errors import PermanentError, PipelineError, TransientError
from .hooks import HookFacade
from .ledger import Ledger, LedgerEntry
from .logs import register_secret
from .records import Blob, DocumentRecord, FileInput, RecordDraft
from .settings import ConfigError, Settings, SourceSettings
from .sinks import DeliveryResult, Sink
from .sources import EmitResult, RecordState, Source, SourceContext
from .spool import Spool, SpoolTooLarge, SpoolWriteError, Staged
from .transforms import Transform

SOURCE_CLOSE_TIMEOUT = 2.0  # seconds all sources together may take to close on shutdown
ENGINE_ERROR_LIMIT = 5  # unexpected engine errors on one record before it is set aside
log = logging.getLogger("itglue_ingest.engine")


class PluginConflictError(ConfigError, ValueError):
    """Two plugins registered the same source, transform or sink name (a configuration
    problem for the CLI; still the ``ValueError`` the registry raises)."""


@dataclass
class RunSummary:
    """What a run did: counts of the records that reached each outcome during the run,
    and the records still pending at its end (waiting for a retry, or cut by a stop)."""

    delivered: int = 0
    duplicate: int = 0
    failed: int = 0
    pending: int = 0
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    source_errors: dict[str, str] = field(default_factory=dict)  # sources whose scan failed
    elapsed: float = 0.0
    timed_out: bool = False
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Everything landed (delivered or duplicate): nothing failed, nothing left, and
        every source could scan."""
        return self.failed == 0 and self.pending == 0 and not self.source_errors

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Progress:
    """Progress of a ``run_once``: records received so far and how many are finished."""

    received: int
    finished: int
    delivered: int
    duplicate: int
    failed: int


def _options_error(prefix: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        lines.append(f"{prefix}.{loc}: {e['msg']}" if loc else f"{prefix}: {e['msg']}")
    return "\n".join(lines)


def _validate(model: type[BaseModel], data: dict[str, Any], prefix: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_options_error(prefix, e)) from None


def _default_client_factory(settings: Settings) -> Callable[[], Any]:
    def build() -> Any:
        from .commands.common import build_client  # the CLI's one way to build a client

        return build_client(settings)

    return build


def _once(factory: Callable[[], Any]) -> Callable[[], Any]:
    """The factory, called at most once even when several workers ask at the same time
    (EngineContext builds the client lazily and without a lock)."""
    lock = threading.Lock()
    made: list[Any] = []

    def build() -> Any:
        with lock:
            if not made:
                made.append(factory())
            return made[0]

    return build


class _StateLock:
    """An exclusive lock on the state folder: one engine per ledger and spool.

    ``flock`` is released by the kernel when the process dies (even on SIGKILL), so a
    crash never leaves a stale lock behind.
    """

    def __init__(self, path: Path) -> None:
        import fcntl

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


def plugin_manager_for(settings: Settings) -> pluggy.PluginManager:
    """The plugin manager a configuration asks for: built-ins and installed plugins
    except ``[plugins] block``, plus ``[plugins] modules`` (importable module names of
    local plugins that are not packaged with an entry point).

    :raises ConfigError: an unknown ``[plugins]`` key or a module that cannot be imported.
    """
    import importlib

    from .plugins import get_plugin_manager

    for key in settings.plugins:
        if key not in ("block", "modules"):
            raise ConfigError(f"plugins.{key}: unknown key (use block or modules)")
    extra: list[object] = []
    for i, name in enumerate(settings.plugins.get("modules", [])):
        try:
            extra.append(importlib.import_module(name))
        except Exception as e:
            raise ConfigError(
                f"plugins.modules[{i}]: cannot import {name!r}: {type(e).__name__}: {e}"
            ) from None
    try:
        return get_plugin_manager(block=settings.plugins.get("block", ()), extra=extra)
    except ImportError as e:
        raise ConfigError(f"plugins: a plugin cannot be loaded: {e}") from None


def target_key(record: DocumentRecord) -> str:
    """The part of the dedupe key beyond the organization: where in it the files go."""
    t = record.target
    if t is None or t.kind == "document":
        return ""
    return f"{t.resource_type}:{t.resource_id or ''}:{(t.resource_name or '').casefold()}"


class EngineSourceContext:
    """The :class:`pipeline.sources.SourceContext` the engine gives each source.

    What source authors can rely on:

    * ``emit(draft)`` first looks the identity ``(source, source_ref, version)`` up:
      known -> ``EmitResult("known", id, state)`` and nothing is read. Otherwise it
      blocks while the spool is full (``spool_max_records``/``spool_max_bytes`` of
      unfinished records) unless ``stopping`` is set, reads every ``FileInput`` once
      (``path`` opened by the engine, or ``open()`` called and the stream closed
      afterwards), and commits the spooled files and the ``received`` row before it
      returns ``EmitResult("accepted", id, "received")`` -- only then may the source
      advance a checkpoint. The draft's ``organization`` defaults to the
      ``[[sources]]`` table's ``organization``.
    * A file over ``max_file_size`` -> ``EmitResult("failed", reason="too large: N
      bytes > limit M; ...")``; an ``OSError`` while opening/reading -> ``failed`` with
      ``"unreadable: <file>: <why>"``. The failed record is in the ledger (``status``)
      and the source is nacked for it by a worker, like any failed record. A
      :class:`~pipeline.errors.TransientError` raised while reading records nothing and
      propagates (the source tries again later), and so does one raised by ``emit``
      when the spool cannot be written (disk full): that is not the input's fault. Any
      other exception propagates too.
    * ``fail(draft, reason)`` records a failed row (nacked later) unless known.
    * ``ack``/``nack`` come from worker threads, never before the outcome is committed,
      possibly again after a crash (make them idempotent); an exception from them is
      logged and the call retried with backoff.
    * ``secret(key, env)``: the variable ``env`` when set, else keyring service
      ``itglue-ingest`` user ``source:<name>:<key>``, else ``PermanentError`` saying how
      to set it. Values are registered for log redaction.
    """

    def __init__(self, engine: Engine, settings: SourceSettings) -> None:
        self._engine = engine
        self._settings = settings
        self.source_name = settings.name
        self.stopping = engine.stopping
        self.log = logging.getLogger(f"itglue_ingest.source.{settings.name}")
        self.max_file_size = engine.settings.pipeline.max_file_size

    # -- records

    def emit(self, draft: RecordDraft) -> EmitResult:
        eng = self._engine
        existing = eng.ledger.find(self.source_name, draft.source_ref, draft.version)
        if existing is not None:
            return EmitResult("known", existing.id, existing.state)
        eng.wait_for_spool_space()
        staged: list[tuple[FileInput, Staged]] = []
        failure: str | None = None
        try:
            for f in draft.files:
                try:
                    staged.append((f, self._stage(f)))
                except TransientError:
                    raise  # "not now" (e.g. still being written): nothing is recorded
                except SpoolWriteError as e:  # disk full...: not the input's fault
                    raise TransientError(f"{e}; {_file_label(draft, f)} is taken later") from e
                except SpoolTooLarge as e:
                    failure = f"{e} ({_file_label(draft, f)})"
                    break
                except OSError as e:
                    failure = f"unreadable: {_file_label(draft, f)}: {e.strerror or e}"
                    break
        except BaseException:
            for _, s in staged:
                eng.spool.discard(s)
            raise
        if failure is not None:
            for _, s in staged:
                eng.spool.discard(s)
            return self._record_failure(draft, failure)
        with eng.spool.lock:  # the files must not be freed before the row references them
            blobs = []
            for f, s in staged:
                spooled = eng.spool.commit(s)
                blobs.append(
                    Blob(
                        file_name=f.file_name,
                        path=spooled.path,
                        size=spooled.size,
                        sha256=spooled.sha256,
                        claimed_mime=f.claimed_mime,
                        metadata=dict(f.metadata),
                    )
                )
            try:
                record = self._record(draft, blobs)
                record_id, inserted, state = eng.ledger.insert(
                    record, blobs=[b.sha256 for b in blobs]
                )
            except BaseException:  # e.g. metadata that is not JSON: nothing may stay behind
                eng.free_unreferenced(b.sha256 for b in blobs)
                raise
        if not inserted:  # emitted concurrently by another thread of this source
            eng.free_unreferenced(b.sha256 for b in blobs)
            return EmitResult("known", record_id, state)
        eng.notify_work()
        eng._count("received")
        self.log.debug(
            "received %s",
            draft.source_ref,
            extra={"record_id": record_id, "source": self.source_name},
        )
        return EmitResult("accepted", record_id, "received")

    def _stage(self, f: FileInput) -> Staged:
        limit = self.max_file_size
        spool = self._engine.spool
        if f.path is not None:
            size = os.stat(f.path).st_size
            if size > limit:
                raise SpoolTooLarge(size, limit)
            with open(f.path, "rb") as stream:
                return spool.stage(stream, limit)
        assert f.open is not None
        opened: IO[bytes] = f.open()
        with opened as stream:
            return spool.stage(stream, limit)

    def _record(self, draft: RecordDraft, blobs: list[Blob]) -> DocumentRecord:
        return DocumentRecord(
            source=self.source_name,
            source_ref=draft.source_ref,
            version=draft.version,
            name=draft.name,
            files=blobs,
            sections=list(draft.sections),
            metadata=dict(draft.metadata),
            organization=draft.organization or self._settings.organization,
        )

    def _record_failure(self, draft: RecordDraft, reason: str) -> EmitResult:
        eng = self._engine
        record = self._record(draft, [])
        record_id, inserted, state = eng.ledger.insert(record, state="failed", reason=reason)
        if not inserted:
            return EmitResult("known", record_id, state)
        self.log.warning(
            "failed %s: %s",
            draft.source_ref,
            reason,
            extra={"record_id": record_id, "source": self.source_name},
        )
        record.id = record_id
        eng._count("failed")
        eng.hook.record_failed(record, reason, True)
        eng.notify_work()  # the source is nacked by a worker, like any failed record
        return EmitResult("failed", record_id, "failed", reason)

    def known(self, source_ref: str, version: str = "") -> RecordState | None:
        return self._engine.ledger.state_of(self.source_name, source_ref, version)

    def fail(self, draft: RecordDraft, reason: str) -> None:
        self._record_failure(draft, reason)

    # -- checkpoints and secrets

    def get_checkpoint(self, key: str) -> str | None:
        return self._engine.ledger.get_checkpoint(self.source_name, key)

    def set_checkpoint(self, key: str, value: str) -> None:
        self._engine.ledger.set_checkpoint(self.source_name, key, value)

    def access_token(self, account: str) -> str | None:
        token = self._engine.hook.access_token(self.source_name, account)
        if token:
            register_secret(token)
        return token

    def secret(self, key: str, env: str | None = None) -> str:
        if env:
            value = os.environ.get(env)
            if value:
                register_secret(value)
                return value
        user = f"source:{self.source_name}:{key}"
        try:
            value = keyring.get_password(APP_NAME, user)
        except Exception as e:  # no usable keyring backend
            value = None
            why = f" (keyring unavailable: {type(e).__name__})"
        else:
            why = ""
        if value:
            register_secret(value)
            return value
        hint = f"set the environment variable {env}, or " if env else ""
        raise PermanentError(
            f"source {self.source_name!r}: secret {key!r} is not set{why}; {hint}store it with"
            f" `keyring set {APP_NAME} {user}`"
        )


def _file_label(draft: RecordDraft, f: FileInput) -> str:
    return f.file_name or draft.source_ref


class Engine:
    """The pipeline of one configuration. See the module docstring.

    :param settings: the validated configuration.
    :param pm: a plugin manager (default: :func:`pipeline.plugins.get_plugin_manager`
        with ``[plugins] block``).
    :param client_factory: builds the IT Glue client on first use (default: the CLI's
        ``build_client(settings)``).
    :raises ConfigError: unknown source/transform/sink names or invalid options, naming
        the key (``sources[1].path: ...``).
    """

    def __init__(
        self,
        settings: Settings,
        pm: pluggy.PluginManager | None = None,
        *,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        if pm is None:
            pm = plugin_manager_for(settings)
        self.settings = settings
        self.pm = pm
        self.hook = HookFacade(pm)
        self.stopping = threading.Event()  # sources and the spool's back-pressure see it
        self.state_dir = settings.state.dir
        self.context = EngineContext(
            settings=settings,
            state_dir=self.state_dir,
            hook=self.hook,
            log=logging.getLogger("itglue_ingest.plugins"),
            _client_factory=_once(client_factory or _default_client_factory(settings)),
        )
        self._in_flight: set[int] = set()
        self._in_flight_lock = threading.Lock()
        self._scan_errors: dict[str, str] = {}  # source name -> why its last scan failed
        self._queue: queue.Queue[int | None] = queue.Queue(maxsize=settings.pipeline.workers * 4)
        self._wake = threading.Event()
        self._space = threading.Condition()
        self._workers: list[threading.Thread] = []
        self._dispatcher: threading.Thread | None = None
        self._stop_dispatch = threading.Event()
        self._recovered = False
        self._closed = False
        self._stats: dict[str, int] = {}
        self._stats_lock = threading.Lock()
        self.transforms: list[Transform] = []
        self.sources: dict[str, Source] = {}
        self.source_settings: dict[str, SourceSettings] = {}
        self._sink: Sink | None = None
        self._ledger: Ledger | None = None
        self._state_lock: _StateLock | None = None

        try:
            source_types = self.hook.sources()
            transform_types = self.hook.transforms()
            sink_types = self.hook.sinks()
        except ValueError as e:  # a name registered twice: say which plugins clash
            raise PluginConflictError(f"plugins: {e}") from None
        self._check_names(source_types, transform_types, sink_types)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(PermissionError):  # not ours to change: leave it
            self.state_dir.chmod(0o700)  # also when an installer made it 0755 before
        self._state_lock = _StateLock(self.state_dir / "engine.lock")
        try:
            self._ledger = Ledger(settings.database_path)
            self.spool = Spool(self.state_dir / "spool")
            for i, name in enumerate(settings.pipeline.transforms):
                cls = transform_types[name]
                opts = dict(settings.transforms.get(name, {}))
                if name == "route":
                    opts.update(settings.routing)
                prefix = "routing" if name == "route" else f"transforms.{name}"
                options = _validate(cls.options_model, opts, prefix)
                self.transforms.append(
                    self._construct(cls, name, options, f"pipeline.transforms[{i}]")
                )
            sink_name = settings.pipeline.sink
            sink_cls = sink_types[sink_name]
            sink_options = _validate(
                sink_cls.options_model, settings.sinks.get(sink_name, {}), f"sinks.{sink_name}"
            )
            self._sink = self._construct(sink_cls, sink_name, sink_options, "pipeline.sink")
            for i, s in enumerate(settings.sources):
                if not s.enabled:
                    continue
                cls_s = source_types[s.type]
                options = _validate(cls_s.options_model, s.options, f"sources[{i}]")
                ctx = EngineSourceContext(self, s)
                self.sources[s.name] = self._construct(cls_s, s.name, options, f"sources[{i}]", ctx)
                self.source_settings[s.name] = s
        except BaseException:
            self.close()
            raise

    @property
    def ledger(self) -> Ledger:
        assert self._ledger is not None, "engine is closed"
        return self._ledger

    @property
    def sink(self) -> Sink:
        assert self._sink is not None, "engine has no sink"
        return self._sink

    # ------------------------------------------------------------------ construction

    def _check_names(self, sources: Any, transforms: Any, sinks: Any) -> None:
        s = self.settings
        for i, src in enumerate(s.sources):
            if src.type not in sources:
                raise ConfigError(
                    f"sources[{i}].type: unknown source type {src.type!r}"
                    f" (known: {', '.join(sorted(sources)) or 'none'})"
                )
        for i, name in enumerate(s.pipeline.transforms):
            if name not in transforms:
                raise ConfigError(
                    f"pipeline.transforms[{i}]: unknown transform {name!r}"
                    f" (known: {', '.join(sorted(transforms)) or 'none'})"
                )
        if s.pipeline.sink not in sinks:
            raise ConfigError(
                f"pipeline.sink: unknown sink {s.pipeline.sink!r}"
                f" (known: {', '.join(sorted(sinks)) or 'none'})"
            )

    def _construct(self, cls: Any, name: str, options: Any, key: str, ctx: Any = None) -> Any:
        try:
            return cls(name, options, ctx if ctx is not None else self.context)
        except ConfigError:
            raise
        except (ValueError, TypeError, OSError, PermanentError) as e:
            raise ConfigError(f"{key} ({name}): {e}") from None

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop everything still running and release sources, sink, client and ledger."""
        if self._closed:
            return
        self._closed = True
        self.stopping.set()
        self._stop_workers(self.settings.pipeline.shutdown_timeout)
        self._close_sources(SOURCE_CLOSE_TIMEOUT)
        if self._sink is not None:
            try:
                self._sink.close()
            except Exception:
                log.exception("sink raised on close")
        client = self.context._client
        if client is not None:
            try:
                client.close()
            except Exception:
                log.exception("client raised on close")
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
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

        closers = [self._thread(f"close-{n}", close, src) for n, src in self.sources.items()]
        deadline = time.monotonic() + timeout
        for t in closers:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("%s did not finish within %.0f s; not waiting for it", t.name, timeout)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    # ------------------------------------------------------------------ runs

    def run_once(
        self,
        stop: threading.Event | None = None,
        *,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> RunSummary:
        """Scan every enabled source once and process until every record reached a final
        state (done, duplicate, failed), ``[pipeline] once_timeout`` passed or ``stop``
        was set. Transient failures are retried with backoff meanwhile."""
        started = time.time()
        deadline = time.monotonic() + self.settings.pipeline.once_timeout
        self.recover()
        self.stopping.clear()
        with self._stats_lock:
            self._stats.clear()
        backlog = self.ledger.count_active()  # unfinished records from earlier runs
        self._start_workers()
        scanners = [
            self._thread(f"scan-{name}", self._scan, src) for name, src in self.sources.items()
        ]
        timed_out = interrupted = False
        try:
            while True:
                if stop is not None and stop.is_set():
                    interrupted = True
                    break
                if time.monotonic() >= deadline:
                    timed_out = True
                    break
                scanning = any(t.is_alive() for t in scanners)
                if on_progress is not None:
                    on_progress(self._progress(backlog))
                if not scanning and self._idle():
                    break
                (stop or threading.Event()).wait(0.1)
        finally:
            # one shutdown budget for everything: sources and workers are told at once
            budget_end = time.monotonic() + self.settings.pipeline.shutdown_timeout
            self.stopping.set()
            self._stop_dispatch.set()
            self._wake.set()
            for t in scanners:
                t.join(max(0.0, budget_end - time.monotonic()))
            self._stop_workers(max(0.1, budget_end - time.monotonic()))
            self.stopping.clear()
        if on_progress is not None:
            on_progress(self._progress(backlog))
        summary = self._summary(started)
        summary.timed_out, summary.interrupted = timed_out, interrupted
        return summary

    def run(self, stop: threading.Event) -> None:
        """The daemon: every enabled source scans its backlog, then watches; workers
        deliver and retry, until ``stop`` is set. Then sources are told to stop, no new
        record is started, deliveries in flight finish their current record or are cut
        (their journal makes that safe), within ``[pipeline] shutdown_timeout`` seconds."""
        self.recover()
        self.stopping.clear()
        self._start_workers()
        watchers = [
            self._thread(f"watch-{name}", self._watch, src) for name, src in self.sources.items()
        ]
        log.info("running: %d source(s), %d worker(s)", len(watchers), len(self._workers))
        try:
            stop.wait()
        finally:
            log.info("stopping")
            t0 = time.monotonic()
            budget = self.settings.pipeline.shutdown_timeout
            self.stopping.set()
            self._stop_workers(budget)
            for t in watchers:
                t.join(max(0.1, budget - (time.monotonic() - t0)))
            still = [t.name for t in watchers if t.is_alive()]
            if still:
                log.warning("sources still busy at shutdown: %s", ", ".join(still))
            log.info("stopped in %.1f s", time.monotonic() - t0)

    def _thread(self, name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        return t

    def _scan(self, src: Source) -> None:
        try:
            src.scan()
        except PipelineError as e:  # the source's own account of why it could not scan
            log.error("source %s: scan failed: %s", src.name, e.reason)
            self._scan_errors[src.name] = e.reason
        except Exception as e:
            log.exception("source %s: scan raised", src.name)
            self._scan_errors[src.name] = f"scan raised {type(e).__name__}: {e}"
        else:
            self._scan_errors.pop(src.name, None)

    def _watch(self, src: Source) -> None:
        delay = 1.0
        self._scan(src)
        while not self.stopping.is_set():
            try:
                src.watch()
                delay = 1.0
            except Exception:
                log.exception("source %s: watch raised; restarting in %.0f s", src.name, delay)
            if self.stopping.wait(delay):
                break
            delay = min(delay * 2, 60.0)

    def _idle(self) -> bool:
        with self._in_flight_lock:
            busy = bool(self._in_flight)
        return (
            not busy
            and self._queue.empty()
            and self.ledger.count_active() == 0
            and self.ledger.count_unacked_due(time.time()) == 0
        )

    def _count(self, outcome: str) -> None:
        """In-memory outcome counters of this process (progress without ledger scans)."""
        with self._stats_lock:
            self._stats[outcome] = self._stats.get(outcome, 0) + 1

    def _progress(self, backlog: int) -> Progress:
        with self._stats_lock:
            st = dict(self._stats)
        delivered, dup, failed = st.get("delivered", 0), st.get("duplicate", 0), st.get("failed", 0)
        return Progress(
            received=backlog + st.get("received", 0) + st.get("emit_failed", 0),
            finished=delivered + dup + failed,
            delivered=delivered,
            duplicate=dup,
            failed=failed,
        )

    def _summary(self, started: float) -> RunSummary:
        s = RunSummary(elapsed=time.time() - started)
        for source, states in self.ledger.counts_since(started).items():
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
        s.pending = self.ledger.count_active()
        s.source_errors = dict(self._scan_errors)
        s.failures = [
            {"id": e.id, "source": e.source, "source_ref": e.source_ref, "reason": e.reason}
            for e in self.ledger.failed(since=started)
        ]
        return s

    # ------------------------------------------------------------------ workers

    def _start_workers(self) -> None:
        if self._dispatcher is not None:
            return
        self._stop_dispatch.clear()
        self._queue = queue.Queue(maxsize=self.settings.pipeline.workers * 4)
        self._workers = [
            self._thread(f"worker-{i}", self._worker) for i in range(self.settings.pipeline.workers)
        ]
        self._dispatcher = self._thread("dispatcher", self._dispatch)

    def _stop_workers(self, timeout: float) -> None:
        """Stop handing out records; let each worker finish the record it holds."""
        if self._dispatcher is None:
            return
        t0 = time.monotonic()
        self._stop_dispatch.set()
        self._wake.set()
        self._dispatcher.join(timeout)
        # drop what was queued but not started; wake each worker with a sentinel
        while True:
            try:
                rid = self._queue.get_nowait()
            except queue.Empty:
                break
            if rid is not None:
                self._release(rid)
        for _ in self._workers:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
        for w in self._workers:
            w.join(max(0.05, timeout - (time.monotonic() - t0)))
        busy = [w.name for w in self._workers if w.is_alive()]
        if busy:
            log.warning(
                "%d delivery(ies) still in flight after %.0f s; they resume from their"
                " journal on the next start",
                len(busy),
                timeout,
            )
        self._workers = []
        self._dispatcher = None

    def notify_work(self) -> None:
        """New work in the ledger: wake the dispatcher."""
        self._wake.set()

    def _dispatch(self) -> None:
        batch = max(8, self.settings.pipeline.workers * 4)
        while not self._stop_dispatch.is_set():
            self._wake.clear()
            try:
                with self._in_flight_lock:
                    exclude = list(self._in_flight)
                ids = self.ledger.due(time.time(), batch, exclude)
            except Exception:
                log.exception("cannot read the ledger; retrying")
                ids = []
            for rid in ids:
                with self._in_flight_lock:
                    if rid in self._in_flight:
                        continue
                    self._in_flight.add(rid)
                while not self._stop_dispatch.is_set():
                    try:
                        self._queue.put(rid, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                else:
                    self._release(rid)
            if not ids:
                nxt = self.ledger.next_due_at()
                wait = 0.5 if nxt is None else min(0.5, max(0.01, nxt - time.time()))
                self._wake.wait(wait)

    def _release(self, rid: int) -> None:
        with self._in_flight_lock:
            self._in_flight.discard(rid)

    def _worker(self) -> None:
        while True:
            rid = self._queue.get()
            if rid is None:
                return
            try:
                self.process(rid)
            except Exception as e:
                self._engine_error(rid, e)
            finally:
                self._release(rid)
                self._wake.set()
                with self._space:
                    self._space.notify_all()

    def _engine_error(self, rid: int, e: Exception) -> None:
        """Something failed outside the plugins (the database, an unreadable ledger row):
        retry with backoff; a record that keeps failing is set aside as failed instead
        of looping forever (without a nack: it may not even be readable)."""
        try:
            attempts = self.ledger.postpone(rid, time.time() + self._backoff(1))
            entry = self.ledger.get(rid)
            landed = entry is not None and entry.state in ("delivered", "done", "duplicate")
            if attempts >= ENGINE_ERROR_LIMIT and not landed:  # landed: only the ack is left
                reason = f"engine error: {type(e).__name__}: {e}"
                self.ledger.update(rid, "failed", reason=reason, acked=True)
                log.error("record %d: %s; set aside as failed", rid, reason, exc_info=e)
                return
            delay = self._backoff(attempts)
            self.ledger.postpone(rid, time.time() + delay, count_attempt=False)
        except Exception:
            log.exception("record %d: cannot record an engine error", rid)
        log.error("record %d: unexpected engine error; retrying later", rid, exc_info=e)

    # ------------------------------------------------------------------ one record

    def process(self, record_id: int) -> None:
        """Move one record as far as it can go now (each step committed before the next)."""
        entry = self.ledger.get(record_id)
        if entry is None:
            return
        record = entry.record()
        state = entry.state
        extra = {"record_id": record_id, "source": entry.source}
        unsaved = False  # transformed, "ready" not committed yet (claim commits it)
        if state == "received":
            nxt = self._transform(entry, record)
            if nxt is None:
                return
            record, state, unsaved = nxt, "ready", True
        if state == "ready":
            if self._stop_dispatch.is_set():
                # shutting down: do not start a new delivery
                if unsaved:
                    self.ledger.update(
                        entry.id, "ready", record=record, target_key=target_key(record)
                    )
                return
            decision = self._dedupe(entry, record, save=unsaved)
            if decision != "deliver":
                return
            state = "delivering"
        if state == "delivering":
            if not self._deliver(entry, record):
                return
            state = "delivered"
            entry = self.ledger.get(record_id) or entry
        if state == "delivered":
            self._ack(entry, record, "delivered")
        elif state == "duplicate" and not entry.acked:
            self._ack(entry, record, "duplicate")
        elif state == "failed" and not entry.acked:
            self._nack(entry, record, entry.reason or "failed")
        log.debug("record %d: %s", record_id, state, extra=extra)

    def _transform(self, entry: LedgerEntry, record: DocumentRecord) -> DocumentRecord | None:
        for t in self.transforms:
            try:
                out = t.apply(record)
            except TransientError as e:
                self._transient(entry, record, e.reason, e.retry_after)
                return None
            except PermanentError as e:
                self._fail(entry, record, e.reason)
                return None
            except Exception as e:
                if getattr(e, "transient", None) is True:
                    self._transient(entry, record, f"transform {t.name}: {e}", _retry_after(e))
                    return None
                self._fail(entry, record, f"transform {t.name} raised {type(e).__name__}: {e}")
                return None
            if not isinstance(out, DocumentRecord):
                self._fail(
                    entry,
                    record,
                    f"transform {t.name} returned {type(out).__name__}, not a DocumentRecord",
                )
                return None
            record = out
            record.id = entry.id
        return record

    def _dedupe(self, entry: LedgerEntry, record: DocumentRecord, *, save: bool) -> str:
        scope = self.settings.pipeline.dedupe_scope
        check = bool(record.files or record.sections)
        tkey = target_key(record)
        decision, original = self.ledger.claim_delivery(
            entry.id,
            content_hash=record.content_hash,
            organization_id=record.organization_id,
            target_key=tkey,
            scope=scope,
            check_duplicates=check,
            record=record if save else None,
        )
        if decision == "duplicate":
            assert original is not None
            self._duplicate(entry, record, f"ledger:{original.id}")
            return "duplicate"
        if decision == "wait":
            # the same content is being delivered right now; look again shortly, or when
            # that delivery is retried if it is waiting for a retry (no polling meanwhile)
            assert original is not None
            until = max(time.time() + 0.5, original.next_attempt_at)
            self.ledger.postpone(entry.id, until, count_attempt=False)
            return "wait"
        if check:
            try:
                existing = self.sink.find_existing(record)
            except Exception as e:
                self._delivery_error(entry, record, e, what="find_existing")
                return "error"
            if existing:
                self._duplicate(entry, record, existing)
                return "duplicate"
        return "deliver"

    def _duplicate(self, entry: LedgerEntry, record: DocumentRecord, existing: str) -> None:
        self.ledger.update(entry.id, "duplicate", duplicate_of=existing, acked=False)
        self._count("duplicate")
        log.info(
            "duplicate of %s: %s",
            existing,
            record.source_ref,
            extra={"record_id": entry.id, "source": entry.source},
        )
        self.hook.record_duplicate(record, existing)
        self._ack(entry, record, "duplicate")

    def _deliver(self, entry: LedgerEntry, record: DocumentRecord) -> bool:
        journal = self.ledger.journal(entry.id)
        try:
            result = self.sink.deliver(record, journal)
        except Exception as e:
            self._delivery_error(entry, record, e, what="deliver")
            return False
        if not isinstance(result, DeliveryResult):
            self._fail(entry, record, f"sink {self.sink.name} returned {type(result).__name__}")
            return False
        self.ledger.update(
            entry.id, "delivered", result=json.dumps(asdict(result)), next_attempt_at=0.0
        )
        self._count("delivered")
        log.info(
            "delivered %s -> %s %s",
            record.source_ref,
            result.resource_type,
            result.resource_id,
            extra={"record_id": entry.id, "source": entry.source},
        )
        self.hook.record_delivered(record, result)
        return True

    def _delivery_error(
        self, entry: LedgerEntry, record: DocumentRecord, e: Exception, *, what: str
    ) -> None:
        if isinstance(e, TransientError):
            self._transient(entry, record, e.reason, e.retry_after)
        elif isinstance(e, PermanentError):
            self._fail(entry, record, e.reason)
        elif getattr(e, "transient", None) is True:
            self._transient(entry, record, f"{type(e).__name__}: {e}", _retry_after(e))
        elif isinstance(e, sqlite3.Error):  # the journal's database (busy, disk full): ours
            self._transient(entry, record, f"ledger database error: {e}", None)
        else:
            self._fail(entry, record, f"sink {self.sink.name} raised {type(e).__name__}: {e}")
            if not isinstance(e, OSError | ValueError) and getattr(e, "transient", None) is None:
                log.error("sink %s: %s failed", self.sink.name, what, exc_info=e)

    def _ack(
        self,
        entry: LedgerEntry,
        record: DocumentRecord,
        outcome: Literal["delivered", "duplicate"],
    ) -> None:
        if not self._call_source(entry, "ack", lambda src: src.ack(record, outcome)):
            return
        # every file the record spooled, including any a transform left out of it
        spooled = self.ledger.blobs_of(entry.id)
        if outcome == "delivered":
            self.ledger.update(entry.id, "done", acked=True)
        else:
            self.ledger.update(entry.id, "duplicate", acked=True)
        self.free_unreferenced([*spooled, *(b.sha256 for b in record.files)])

    def _nack(self, entry: LedgerEntry, record: DocumentRecord, reason: str) -> None:
        if self._call_source(entry, "nack", lambda src: src.nack(record, reason)):
            # unless `itglue-ingest retry` requeued it meanwhile (it is processed again)
            self.ledger.update(entry.id, "failed", acked=True, expect="failed")

    def _call_source(self, entry: LedgerEntry, what: str, call: Callable[[Source], None]) -> bool:
        """Run a post-action of the record's source; False (and postponed) when it can't."""
        src = self.sources.get(entry.source)
        if src is None:
            # the source is not configured (or disabled) now: post-act when it is back
            self.ledger.postpone(
                entry.id, time.time() + self.settings.pipeline.retry_max, count_attempt=False
            )
            return False
        try:
            call(src)
        except Exception:
            log.exception(
                "source %s: %s of record %d raised; retrying later", entry.source, what, entry.id
            )
            self.ledger.postpone(entry.id, time.time() + self._backoff(entry.attempts + 1))
            return False
        return True

    def _fail(self, entry: LedgerEntry, record: DocumentRecord, reason: str) -> None:
        self.ledger.update(entry.id, "failed", reason=reason, acked=False)
        self._count("failed")
        log.warning(
            "failed %s: %s",
            record.source_ref,
            reason,
            extra={"record_id": entry.id, "source": entry.source},
        )
        self.hook.record_failed(record, reason, True)
        self._nack(entry, record, reason)

    def _transient(
        self, entry: LedgerEntry, record: DocumentRecord, reason: str, retry_after: float | None
    ) -> None:
        attempts = entry.attempts + 1
        delay = retry_after if retry_after is not None else self._backoff(attempts)
        self.ledger.postpone(entry.id, time.time() + delay, reason=reason)
        log.info(
            "will retry %s in %.1f s (attempt %d): %s",
            record.source_ref,
            delay,
            attempts,
            reason,
            extra={"record_id": entry.id, "source": entry.source},
        )
        self.hook.record_failed(record, reason, False)

    def _backoff(self, attempts: int) -> float:
        """Exponential backoff from retry_base to retry_max, with jitter (half to full)."""
        p = self.settings.pipeline
        return backoff_delay(attempts, base=p.retry_base, cap=p.retry_max)

    # ------------------------------------------------------------------ spool

    def free_unreferenced(self, hashes: Any) -> None:
        """Remove spool files that no unfinished record references any more."""
        with self.spool.lock:
            for sha in set(hashes):
                if not self.ledger.is_referenced(sha):
                    self.spool.free(sha)
        with self._space:
            self._space.notify_all()

    def spool_full(self) -> bool:
        # records of disabled or removed sources wait for their ack until the source is
        # back: they cannot make room, so they do not count (they would block every emit)
        records, size = self.ledger.spool_load(self.sources)
        p = self.settings.pipeline
        return records >= p.spool_max_records or size >= p.spool_max_bytes

    def wait_for_spool_space(self) -> None:
        """Back-pressure: block an emitting source while the spool is full."""
        warned = False
        while not self.stopping.is_set() and self.spool_full():
            if not warned:
                log.info("spool full; waiting for deliveries to free space")
                warned = True
            with self._space:
                self._space.wait(0.2)


def _retry_after(e: BaseException) -> float | None:
    value: object = getattr(e, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


def _conforms(ctx: EngineSourceContext) -> SourceContext:
    """Lets mypy check that EngineSourceContext implements the SourceContext protocol."""
    return ctx
