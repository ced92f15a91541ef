"""Extractors run in worker processes: a hostile file can loop, allocate or crash a
parser, and none of that may reach the engine.

Each worker is a ``forkserver`` process (forked from a clean server, not from the
threaded engine, so it inherits no locks and no engine file descriptors) that caps its
own address space with ``RLIMIT_AS`` and then serves one job at a time over a pipe. The
engine side waits at most the per-file budget: a worker that does not answer in time is
killed and replaced, one that dies (the memory cap, a segfault in a C parser) is
replaced too. A worker whose engine dies sees its pipe close and exits.

Hand-written rather than ``concurrent.futures.ProcessPoolExecutor``: that pool cannot
kill the one worker that overran its budget (only the whole pool, breaking the others'
jobs), and marks itself broken when a worker dies.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import resource
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Literal

from pipeline import Extracted, ExtractionError, ExtractLimits, Extractor

log = logging.getLogger("itglue_ingest.extract")

Status = Literal["ok", "failed", "timeout", "crashed"]


@dataclass(frozen=True)
class Outcome:
    """What running an extractor on one file came to."""

    status: Status
    result: Extracted | None = None
    reason: str = ""


def _cap_memory(limit: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _serve(conn: Connection, memory_limit: int) -> None:
    """The worker's loop: one job in, one answer out, until the pipe closes."""
    _cap_memory(memory_limit)
    while True:
        try:
            extractor, path, limits = conn.recv()
        except (EOFError, OSError):
            return  # the engine is gone (or closed the pool)
        except MemoryError:
            conn.send(("crashed", "the job did not fit in the worker's memory cap"))
            return
        try:
            answer: tuple[Any, ...] = ("ok", extractor(Path(path), limits))
        except ExtractionError as e:
            answer = ("failed", str(e) or type(e).__name__)
        except MemoryError:
            # the heap may be in any state: answer (if there is room left) and go
            with contextlib.suppress(Exception):
                conn.send(("crashed", "it needed more memory than the cap allows"))
            return
        except RecursionError:
            answer = ("failed", "the file is nested too deeply to parse")
        except Exception as e:
            answer = ("failed", f"{type(e).__name__}: {e}")
        try:
            conn.send(answer)
        except MemoryError:
            return
        except Exception as e:  # a result that does not pickle: an extractor bug
            conn.send(("failed", f"the extractor's result cannot be sent: {e}"))


class _Worker:
    """One worker process and the engine's end of its pipe."""

    def __init__(self, ctx: Any, memory_limit: int) -> None:
        ours, theirs = ctx.Pipe(duplex=True)
        self.conn: Connection = ours
        self.process: BaseProcess = ctx.Process(
            target=_serve, args=(theirs, memory_limit), name="itglue-ingest-extract", daemon=True
        )
        self.process.start()
        theirs.close()  # only the worker holds its end: its death is an EOF here

    def run(
        self, extractor: Extractor, path: Path, limits: ExtractLimits, timeout: float
    ) -> Outcome:
        try:
            self.conn.send((extractor, str(path), limits))
        except (OSError, EOFError) as e:
            return Outcome("crashed", reason=f"the worker could not take the job: {e}")
        if not self.conn.poll(timeout):
            return Outcome("timeout", reason=f"it took longer than {timeout:g} s")
        try:
            status, value = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(1.0)
            return Outcome("crashed", reason=self._death())
        if status == "ok":
            if not isinstance(value, Extracted):
                return Outcome("failed", reason=f"the extractor returned {type(value).__name__}")
            return Outcome("ok", result=value)
        return Outcome(status, reason=str(value))

    def _death(self) -> str:
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"the extractor's worker was killed by signal {-code}"
        return f"the extractor's worker died (exit code {code})"

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5.0)


class ExtractionPool:
    """At most ``workers`` extractions at once, each in a worker process within
    ``timeout`` seconds and ``memory_limit`` bytes of address space. Thread-safe."""

    def __init__(self, *, workers: int, timeout: float, memory_limit: int) -> None:
        self.timeout = timeout
        self.memory_limit = memory_limit
        self._ctx = multiprocessing.get_context("forkserver")
        self._slots = threading.BoundedSemaphore(workers)
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._busy: set[_Worker] = set()
        self._closed = False
        self.replaced = 0  # workers killed or lost and replaced (for tests and status)

    def run(self, extractor: Extractor, path: Path, limits: ExtractLimits) -> Outcome:
        """Run ``extractor(path, limits)`` in a worker; never raises for the file's sake."""
        with self._slots:
            worker = self._take()
            healthy = False
            try:
                outcome = worker.run(extractor, path, limits, self.timeout)
                healthy = outcome.status in ("ok", "failed") and worker.alive
                return outcome
            finally:
                self._give_back(worker, healthy)

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the extraction pool is closed")
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                worker = _Worker(self._ctx, self.memory_limit)
            self._busy.add(worker)
            return worker

    def _give_back(self, worker: _Worker, healthy: bool) -> None:
        with self._lock:
            self._busy.discard(worker)
            if healthy and not self._closed:
                self._idle.put(worker)
                return
        if not healthy:
            self.replaced += 1
            log.info("extraction worker %s replaced", worker.process.pid)
        worker.kill()

    def close(self) -> None:
        """Stop the idle workers; busy ones are killed as their jobs come back."""
        with self._lock:
            self._closed = True
            idle: list[_Worker] = []
            while True:
                try:
                    idle.append(self._idle.get_nowait())
                except queue.Empty:
                    break
        for worker in idle:
            worker.kill()

    def pids(self) -> list[int]:
        """The worker processes now alive (for tests)."""
        with self._lock:
            workers = [*self._busy, *list(self._idle.queue)]
        return [w.process.pid for w in workers if w.process.pid and w.alive]


def default_workers() -> int:
    """One worker per CPU, at most 4: extraction is CPU-bound and the engine needs a core."""
    return max(1, min(4, (os.cpu_count() or 1)))
