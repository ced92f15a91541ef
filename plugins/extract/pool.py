"""Extractors run in worker processes: a hostile file can loop, allocate or crash a
parser, and none of that may reach the engine.

Each worker is a fresh interpreter (``python -c``, like multiprocessing's ``spawn`` but
without re-running the caller's ``__main__``) that caps its own address space with
``RLIMIT_AS`` and then serves one job at a time over a pair of pipes (pickled with
``multiprocessing.connection``). It inherits no locks and no engine descriptors. The
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
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Literal

from pipeline import Extracted, ExtractLimits, Extractor

log = logging.getLogger("itglue_ingest.extract")

Status = Literal["ok", "failed", "timeout", "crashed"]
WORKER_CODE = "from plugins.extract.worker import main; main()"
# A worker says "ready" once its interpreter and the pipeline are imported; that start-up
# (seconds on a busy host) is not part of any file's budget, but it has its own limit.
STARTUP_TIMEOUT = 120.0


@dataclass(frozen=True)
class Outcome:
    """What running an extractor on one file came to."""

    status: Status
    result: Extracted | None = None
    reason: str = ""


class _Worker:
    """One worker process and the engine's ends of its two pipes."""

    def __init__(self, memory_limit: int) -> None:
        jobs_r, jobs_w = os.pipe()
        answers_r, answers_w = os.pipe()
        env = dict(os.environ)
        # the worker imports extractors by module name: give it this process's path
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WORKER_CODE,
                    str(jobs_r),
                    str(answers_w),
                    str(memory_limit),
                    str(os.getpid()),
                ],
                pass_fds=(jobs_r, answers_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a terminal's Ctrl-C is the engine's to handle
            )
        finally:
            os.close(jobs_r)
            os.close(answers_w)  # only the worker holds it: its death is an EOF here
        self.jobs = Connection(jobs_w, readable=False)
        self.answers = Connection(answers_r, writable=False)

        self.ready = False

    def wait_ready(self) -> Outcome | None:
        """None once the worker is ready; else why it is not (it is then killed)."""
        if self.ready:
            return None
        try:
            if self.answers.poll(STARTUP_TIMEOUT) and self.answers.recv() == ("ready", None):
                self.ready = True
                return None
        except (EOFError, OSError):
            pass
        return Outcome("crashed", reason=f"the extraction worker did not start: {self._death()}")

    def run(
        self, extractor: Extractor, path: Path, limits: ExtractLimits, timeout: float
    ) -> Outcome:
        not_ready = self.wait_ready()
        if not_ready is not None:
            return not_ready
        try:
            self.jobs.send((extractor, str(path), limits))
        except OSError as e:
            return Outcome("crashed", reason=f"the worker could not take the job: {e}")
        if not self.answers.poll(timeout):
            return Outcome("timeout", reason=f"it took longer than {timeout:g} s")
        try:
            status, value = self.answers.recv()
        except (EOFError, OSError):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(1.0)
            return Outcome("crashed", reason=self._death())
        if status == "ok":
            if not isinstance(value, Extracted):
                return Outcome("failed", reason=f"the extractor returned {type(value).__name__}")
            return Outcome("ok", result=value)
        return Outcome(status, reason=str(value))

    def _death(self) -> str:
        code = self.process.poll()
        if code is None:
            return "it did not answer"
        if code is not None and code < 0:
            return f"the extraction worker was killed by signal {-code}"
        return f"the extraction worker died (exit code {code})"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        for conn in (self.jobs, self.answers):
            with contextlib.suppress(OSError):
                conn.close()
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5.0)


class ExtractionPool:
    """At most ``workers`` extractions at once, each in a worker process within
    ``timeout`` seconds and ``memory_limit`` bytes of address space. Thread-safe."""

    def __init__(self, *, workers: int, timeout: float, memory_limit: int) -> None:
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.workers = workers
        self._slots = threading.BoundedSemaphore(workers)
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._busy: set[_Worker] = set()
        self._closed = False
        self.replaced = 0  # workers killed or lost and replaced (for tests and status)

    def prestart(self) -> None:
        """Start every worker the pool may use (they get ready in the background)."""
        with self._lock:
            while not self._closed and self._idle.qsize() + len(self._busy) < self.workers:
                self._idle.put(_Worker(self.memory_limit))

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
                worker = _Worker(self.memory_limit)
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
        return [w.process.pid for w in workers if w.alive]


def default_workers() -> int:
    """One worker per CPU, at most 4: extraction is CPU-bound and the engine needs a core."""
    return max(1, min(4, (os.cpu_count() or 1)))
