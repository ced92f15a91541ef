"""The worker pool: a dispatcher thread hands due ledger rows (a batch at a time) to a
few worker threads; each moves one record as far as it can go. In storage trouble the
workers start nothing and the dispatcher waits, probing with backoff, until it clears.

Duplicates found as they arrive go to the pool's settler thread instead, which acks
whatever came in meanwhile as one batch: one fsync and one transaction per batch, where
a worker's round trip per record made a re-dropped backlog cost an fsync per file."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ..ledger import Ledger
from ..records import DocumentRecord
from .storage import StorageTrouble, storage_error

log = logging.getLogger("itglue_ingest.engine")
SETTLE_LIMIT = 1024  # duplicates waiting for the settler before the sources wait
Settling = tuple[int, str, DocumentRecord]  # a duplicate for the settler: id, source, record


def start_thread(name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
    """A started daemon thread (the engine never waits for one past its shutdown budget)."""
    t = threading.Thread(target=target, args=args, name=name, daemon=True)
    t.start()
    return t


class WorkerPool:
    """Due records to ``process``, at most one worker per record at a time.

    :param process: moves one record; :param on_error: called when ``process`` raised;
    :param after_each: called after every record (a record finished: space may be free).
    :param winding_down: set by the pool when it hands out no more records (a worker
        then starts no new delivery).
    """

    def __init__(
        self,
        ledger: Ledger,
        workers: int,
        *,
        process: Callable[[int], None],
        on_error: Callable[[int, Exception], None],
        after_each: Callable[[], None],
        winding_down: threading.Event,
        trouble: StorageTrouble,
        settle: Callable[[list[Settling]], None] | None = None,
    ) -> None:
        self._ledger = ledger
        self._trouble = trouble
        self._size = workers
        self._process = process
        self._on_error = on_error
        self._after_each = after_each
        self.winding_down = winding_down  # set: hand out no more records
        self._wake = threading.Event()
        self._in_flight: set[int] = set()
        self._in_flight_lock = threading.Lock()
        self._queue: queue.Queue[int | None] = queue.Queue(maxsize=workers * 4)
        self._workers: list[threading.Thread] = []
        self._dispatcher: threading.Thread | None = None
        self.last_tick: float | None = None  # monotonic: the dispatcher's latest round
        self._settle = settle
        self._settling: list[Settling] = []  # for the settler (guarded by _settled)
        self._settled = threading.Condition()
        self._settler_busy = False
        self._settler: threading.Thread | None = None
        self._settler_stop = False

    @property
    def size(self) -> int:
        return len(self._workers)

    def notify_work(self) -> None:
        """New work in the ledger: wake the dispatcher."""
        self._wake.set()

    def busy(self) -> bool:
        """Whether a record is queued or being processed (or waits for the settler)."""
        with self._settled:
            if self._settling or self._settler_busy:
                return True
        with self._in_flight_lock:
            return bool(self._in_flight) or not self._queue.empty()

    def settle(self, item: Settling) -> bool:
        """Hand a duplicate found as it arrived to the settler (blocks while it has
        :data:`SETTLE_LIMIT` waiting: back-pressure on the source); False when the pool
        is not running (the record is then a worker's, once it is due)."""
        with self._settled:
            while len(self._settling) >= SETTLE_LIMIT and not self._settler_stop:
                self._settled.wait(0.2)
            if self._settler is None or self._settler_stop:
                return False
            self._settling.append(item)
            self._settled.notify_all()
            return True

    def _settle_loop(self) -> None:
        assert self._settle is not None
        while True:
            with self._settled:
                while not self._settling and not self._settler_stop:
                    self._settled.wait()
                if not self._settling:
                    return
                batch, self._settling = self._settling, []
                self._settler_busy = True
                self._settled.notify_all()  # room for the sources again
            try:
                self._settle(batch)
            except Exception:  # each record is a worker's once it is due
                log.exception("cannot ack %d duplicate(s) now; a worker acks them", len(batch))
            finally:
                with self._settled:
                    self._settler_busy = False
                    self._settled.notify_all()

    def start(self) -> None:
        if self._dispatcher is not None:
            return
        self.winding_down.clear()
        self._queue = queue.Queue(maxsize=self._size * 4)
        self._workers = [start_thread(f"worker-{i}", self._work) for i in range(self._size)]
        self._dispatcher = start_thread("dispatcher", self._dispatch)
        if self._settle is not None:
            with self._settled:
                self._settler_stop = False
                self._settler = start_thread("settler", self._settle_loop)

    def wind_down(self) -> None:
        """Hand out no more records (the ones being processed go on)."""
        self.winding_down.set()
        self._wake.set()

    def stop(self, timeout: float) -> None:
        """Stop handing out records; let each worker finish the record it holds."""
        if self._dispatcher is None:
            return
        t0 = time.monotonic()
        self.wind_down()
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
        settler = self._settler
        if settler is not None:  # it acks what it was handed first
            with self._settled:
                self._settler_stop = True
                self._settled.notify_all()
            settler.join(max(0.05, timeout - (time.monotonic() - t0)))
            self._settler = None
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

    def _dispatch(self) -> None:
        batch = max(8, self._size * 4)
        while not self.winding_down.is_set():
            self.last_tick = time.monotonic()  # /healthz: the loop is not stuck
            if not self._trouble.wait_until_clear(self.winding_down):
                break
            self._wake.clear()
            try:
                with self._in_flight_lock:
                    exclude = list(self._in_flight)
                ids = self._ledger.due(time.time(), batch, exclude)
                nxt = None if ids else self._ledger.next_due_at()
            except Exception as e:
                if storage_error(e) is not None:
                    self._trouble.report(e, "reading the ledger")
                else:
                    log.exception("cannot read the ledger; retrying")
                    self._wake.wait(0.5)
                continue
            for rid in ids:
                with self._in_flight_lock:
                    if rid in self._in_flight:
                        continue
                    self._in_flight.add(rid)
                while not self.winding_down.is_set():
                    try:
                        self._queue.put(rid, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                else:
                    self._release(rid)
            if not ids:
                wait = 0.5 if nxt is None else min(0.5, max(0.01, nxt - time.time()))
                self._wake.wait(wait)

    def _release(self, rid: int) -> None:
        with self._in_flight_lock:
            self._in_flight.discard(rid)

    def _work(self) -> None:
        while True:
            rid = self._queue.get()
            if rid is None:
                return
            try:
                if not self._trouble.active:  # else: it stays due, taken once clear
                    self._process(rid)
            except Exception as e:
                self._on_error(rid, e)
            finally:
                self._release(rid)
                self._wake.set()
                self._after_each()
