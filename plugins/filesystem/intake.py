"""Which drop-folder files are taken, once per version, and the threads that take them.

A file version is reserved while it is being taken and until the engine acks or nacks
its record, so a second event for a file in flight does nothing. Files are read into the
spool by a few threads while the walk goes on: the engine's spool write and fsync per
file dominate a backlog, and they overlap.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from pipeline import EmitResult

from .collector import Collector
from .names import encode_ref
from .parts import Part, Shared
from .spooling import Candidate, Spooler
from .stability import signature
from .versions import legacy_version_of, version_of

# States after which the engine no longer touches the file: if the file is still in the
# drop folder, the post-action did not (or could not) happen, or the user put it back.
_FINAL = ("done", "duplicate", "failed")
_VERSIONS_SINCE = "versions_with_inode_since"  # checkpoint: see _settled_before_upgrade
# files emitted together (one ledger lookup, one transaction for their duplicates); the
# bytes bound what a batch holds in memory while it is read
BATCH_FILES = 64
BATCH_BYTES = 8 * 1024 * 1024


class Intake(Part):
    """Candidate files in, reserved versions out to the spool."""

    def __init__(self, shared: Shared, collector: Collector, spooler: Spooler) -> None:
        super().__init__(shared)
        self.collector = collector
        self.spooler = spooler
        self._in_flight: set[tuple[str, str]] = set()  # (ref, version) emitted, not (n)acked
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        # batches in the reader pool or waiting for it: the walk stays a stream
        self._slots = threading.BoundedSemaphore(2 * shared.opts.parallel_reads)
        self._batch: list[Candidate] = []  # considered, to be taken at the next flush
        self._batch_bytes = 0

    def reserve(self, ref: str, version: str) -> bool:
        """Mark ``ref`` at ``version`` as being taken; False if it already is (or was
        emitted and awaits its ack): a second event for a file in flight does nothing."""
        with self._lock:
            if (ref, version) in self._in_flight:
                return False
            self._in_flight.add((ref, version))
            return True

    def release(self, ref: str, version: str) -> None:
        with self._lock:
            self._in_flight.discard((ref, version))

    def should_be_gone(self, state: str) -> bool:
        if state == "failed":
            return self.opts.on_failure == "move"
        return self.opts.after != "keep"

    def consider(self, path: str, rel: str, st: os.stat_result, *, stable: bool) -> None:
        """Look at one candidate file; emit it, track it, or leave it with a reason.

        A file in the claim folder keeps the relative path and version it was claimed
        with (the rename changed its ctime).
        """
        owned = self.collector.owned(path)
        claimed_version = None
        if owned is not None:
            rel, claimed_version = owned
        ref = encode_ref(rel)
        link = stat.S_ISLNK(st.st_mode)  # the walk's lstat: not asked again at the claim
        if link:
            target_st = self._link_target(path, ref, st)
            if target_st is None:
                return
            st = target_st
        if not stat.S_ISREG(st.st_mode):
            self.notes.note(ref, "", logging.DEBUG, "ignored %s: not a regular file", rel)
            return
        if not stable:
            age = time.time() - st.st_mtime
            if age < self.opts.stability_delay or age < 0:
                self.tracker.touch(path, signature(st))
                return
        self._submit(Candidate(path, rel, ref, st, claimed_version or version_of(st), link))

    def _submit(self, c: Candidate) -> None:
        """Add the file to the batch being gathered; a full batch is taken at once."""
        if not self.reserve(c.ref, c.version):
            return
        with self._lock:
            self._batch.append(c)
            self._batch_bytes += c.st.st_size
            full = len(self._batch) >= BATCH_FILES or self._batch_bytes >= BATCH_BYTES
        if full:
            self.flush()

    def flush(self) -> None:
        """Take the files gathered since the last flush: in the reader pool while
        scanning/watching, else right here. The walk and the stable-file pass call it
        when they stop, so a file never waits for a batch to fill."""
        with self._lock:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
        if not batch:
            return
        pool = self._pool
        if pool is None:
            self._take_many(batch)
            return
        while not self._slots.acquire(timeout=0.2):  # bounded: the walk stays a stream
            if self.context.stopping.is_set():
                self._release_all(batch)
                return
        try:
            pool.submit(self._take_in_pool, batch)
        except RuntimeError:  # the pool is shutting down
            self._slots.release()
            self._release_all(batch)

    def _release_all(self, batch: list[Candidate]) -> None:
        for c in batch:
            self.release(c.ref, c.version)

    def _take_in_pool(self, batch: list[Candidate]) -> None:
        try:
            self._take_many(batch)
        except Exception:
            self.log.exception(
                "error taking %d file(s); skipped", len(batch), extra={"source": self.name}
            )
        finally:
            self._slots.release()

    def _take_many(self, batch: list[Candidate]) -> None:
        """Claim and emit the files (reserved by :meth:`reserve`), the engine's ledger
        asked once for the batch; keep a reservation only if the engine accepted the
        file (``ack``/``nack`` release it).

        When the ledger already has a version in a final state although the file should
        then have left the folder (a move that failed, content other than what was
        delivered), it is emitted again as ``<version>#<n>`` (one at a time: rare).
        """
        kept: set[tuple[str, str]] = set()
        try:
            claimed: list[Candidate] = []
            for c in batch:
                try:
                    if self._settled_before_upgrade(c.ref, c.st):
                        continue
                    path = self.collector.claim(
                        c.path, c.rel, c.ref, c.st, c.version, is_link=c.link
                    )
                except Exception:  # most likely a bug: this file only
                    self.log.exception("error taking %s; skipped", c.rel)
                    continue
                if path is not None:
                    claimed.append(c._replace(path=path))
            for c, result in zip(claimed, self.spooler.emit_many(claimed), strict=True):
                if self._emitted_again(c, result):
                    kept.add((c.ref, c.version))
        finally:
            for c in batch:
                if (c.ref, c.version) not in kept:
                    self.release(c.ref, c.version)

    def _emitted_again(self, c: Candidate, result: EmitResult | None) -> bool:
        """True when the engine accepted the file: at its version, or -- when that one
        is settled although the file should have left -- at ``<version>#<n>``."""
        for n in range(1, 1000):
            if result is None or result.status == "accepted":
                break
            if result.status != "known" or result.state not in _FINAL:
                break
            if not self.should_be_gone(result.state):
                break
            result = self.spooler.emit(c.path, c.rel, c.ref, c.st, f"{c.version}#{n}")
        return result is not None and result.status == "accepted"

    def upgrade_mark(self) -> int:
        """When this source first ran with versions that hold inode and ctime (ns)."""
        mark = self.context.get_checkpoint(_VERSIONS_SINCE)
        if mark is None:
            mark = str(time.time_ns())
            self.context.set_checkpoint(_VERSIONS_SINCE, mark)
        return int(mark)

    def _settled_before_upgrade(self, ref: str, st: os.stat_result) -> bool:
        """A file kept in place (``after``/``on_failure = "keep"``) whose record an earlier
        release settled under a ``<size>-<mtime_ns>`` version: not read again, as long as
        its ctime shows it has not changed since this release first ran."""
        if self.collector.claiming:
            return False  # every settled file left the folder
        state = self.context.known(ref, legacy_version_of(st))
        if state not in _FINAL or self.should_be_gone(state):
            return False
        return st.st_ctime_ns < self.upgrade_mark()

    def _link_target(self, path: str, ref: str, st: os.stat_result) -> os.stat_result | None:
        if not self.opts.follow_symlinks:
            self.notes.note(
                ref, "", logging.INFO, "skipped %s: a symbolic link (follow_symlinks is off)", path
            )
            return None
        if not self.folder.holds_real(os.path.realpath(path)):
            self.notes.note(
                ref,
                "",
                logging.WARNING,
                "skipped %s: a symbolic link leading out of the drop folder",
                path,
            )
            return None
        try:
            return os.stat(path)
        except OSError:
            return None

    @contextlib.contextmanager
    def readers(self) -> Iterator[None]:
        """A few threads that read files into the spool while the walk goes on: the
        engine's spool write and fsync per file dominate a backlog, and they overlap."""
        if self.opts.parallel_reads <= 1 or self._pool is not None:
            yield
            return
        pool = ThreadPoolExecutor(self.opts.parallel_reads, thread_name_prefix=f"fs-{self.name}")
        self._pool = pool
        try:
            yield
        finally:
            self._pool = None
            pool.shutdown(wait=True)
