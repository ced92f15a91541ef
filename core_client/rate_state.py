"""The shared rate window: a ring of per-slot request counts plus the learned budget.

Processes that share a state directory share one file (``<state_dir>/<instance>.ratelimit``,
mode 0600, fixed size: magic, header, ring); every decision reads and updates the few
bytes it needs under an exclusive ``fcntl`` lock. Without a state directory the window
lives in memory. The policy that reads it is in :mod:`core_client.rate_limiter`.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .exceptions import ClientClosedError

log = logging.getLogger("itglue_ingest.client.ratelimit")

SLOTS = 301  # ring size: the window in 300 slots (1 s for 5 minutes), plus the current one
_MAGIC = b"ITGRL2\0\0"
# slot_width, head, total, last_sent, pause_until, probe_until, calm_until, refused_since,
# recovery, estimate, probe_run
_HEADER = struct.Struct("<dqqddddddqq")
_SLOT = struct.Struct("<I")
_NEVER = -4_611_686_018_427_387_904  # head of a ring that never saw a request (-2**62)


class _Ring:
    """Per-slot request counts (index = absolute slot number modulo :data:`SLOTS`)."""

    def __init__(self, counts: list[int] | None = None) -> None:
        self._counts = counts if counts is not None else [0] * SLOTS

    def get(self, i: int) -> int:
        return self._counts[i % SLOTS]

    def set(self, i: int, value: int) -> None:
        self._counts[i % SLOTS] = value

    def clear(self) -> None:
        self._counts[:] = [0] * SLOTS

    def cells(self) -> list[int]:
        """A copy of every cell, in index order."""
        return [self.get(i) for i in range(SLOTS)]


@dataclass
class WindowState:
    """What the processes share: the ring of counts and the learned budget.

    ``head`` is the absolute number (``floor(time / slot_width)``) of the newest slot;
    slot ``k`` counts the requests sent in ``[k, k + 1) * slot_width`` and is live while
    ``head - k < SLOTS``. ``estimate`` is the learned budget (0: none, the configured
    one applies). Above the estimate, a probe may go after ``probe_until`` when room is
    far off (a server window shorter than ours frees it sooner), after ``calm_until``
    (a window without 429) when our own requests will soon make room anyway.
    ``refused_since``: first 429 since the last accepted probe; ``recovery``: how long
    the server took to accept a probe after it (how soon its window frees room).
    """

    slot_width: float
    head: int = _NEVER
    total: int = 0
    last_sent: float = 0.0
    pause_until: float = 0.0
    probe_until: float = 0.0
    calm_until: float = 0.0
    refused_since: float = 0.0
    recovery: float = 0.0
    estimate: int = 0
    probe_run: int = 0
    ring: _Ring = field(default_factory=_Ring, compare=False, repr=False)

    def header(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _HEADER_FIELDS)


_HEADER_FIELDS = tuple(f.name for f in fields(WindowState) if f.name != "ring")


def advance(state: WindowState, now: float) -> None:
    """Move the ring to ``now``: slots that left the window are emptied. Pure.

    Costs one step per slot that passed (at most :data:`SLOTS`), whatever the rate.
    """
    slot = math.floor(now / state.slot_width)
    if slot < state.head - 1 or slot - state.head >= SLOTS:
        # fresh, long idle, or the wall clock jumped back: counts "from the future"
        # would block for up to a window, so they go
        if state.total:
            state.ring.clear()
        state.total = 0
        state.head = slot
        state.last_sent = min(state.last_sent, now)
        return
    for k in range(state.head + 1, slot + 1):  # slot k reuses the cell of k - SLOTS
        state.total -= state.ring.get(k)
        state.ring.set(k, 0)
    state.head = max(state.head, slot)


def record(state: WindowState, now: float) -> None:
    """Count one request sent at ``now`` (``advance`` first)."""
    state.ring.set(state.head, state.ring.get(state.head) + 1)
    state.total += 1
    state.last_sent = max(state.last_sent, now)


def settle(state: WindowState, sent_slot: int | None, *, accepted: bool) -> None:
    """A request sent in ``sent_slot`` was answered (``advance`` first).

    Accepted, it is counted from now on: the server stamped it somewhere between our
    send and its answer, so counting it from the answer keeps the window's guarantee
    whatever the latency. Refused, it is taken back: it is not in the server's window.
    """
    if sent_slot is None:  # not sent through this thread's acquire: the newest
        if not accepted:
            sent_slot = next(
                (k for k in range(state.head, state.head - SLOTS, -1) if state.ring.get(k)),
                None,
            )
        if sent_slot is None:
            return
    if 0 <= state.head - sent_slot < SLOTS:  # still counted where it was sent
        count = state.ring.get(sent_slot)
        if count:
            state.ring.set(sent_slot, count - 1)
            state.total -= 1
    if accepted:
        state.ring.set(state.head, state.ring.get(state.head) + 1)
        state.total += 1


def free_at(state: WindowState, keep: int) -> float:
    """When fewer than ``keep`` requests will be left in the window (epoch seconds)."""
    need = state.total - keep + 1
    seen = 0
    for k in range(state.head - SLOTS + 1, state.head + 1):
        seen += state.ring.get(k)
        if seen >= need:
            return (k + SLOTS) * state.slot_width
    return (state.head + 1) * state.slot_width


class StoreUnavailable(Exception):
    """The shared window cannot be reached now (its database is down or restarting):
    nothing was decided or recorded; try again later."""


class Store:
    """Where the window lives; the lock is held across read-modify-write.

    :meth:`transact` raises :class:`StoreUnavailable` when the window cannot be reached
    and :class:`~core_client.exceptions.ClientClosedError` once closed.
    """

    def transact(self, fn: Callable[[WindowState], Any]) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


class MemoryStore(Store):
    def __init__(self, slot_width: float) -> None:
        self._state = WindowState(slot_width)
        self._lock = threading.Lock()

    def transact(self, fn: Callable[[WindowState], Any]) -> Any:
        with self._lock:
            return fn(self._state)


class _FileRing(_Ring):
    """Ring cells read and written one by one in the file (pread/pwrite)."""

    def __init__(self, fd: int, offset: int) -> None:
        super().__init__([])
        self._fd = fd
        self._offset = offset
        self._cache: dict[int, int] = {}
        self.dirty: set[int] = set()
        self.cleared = False

    def get(self, i: int) -> int:
        i %= SLOTS
        if i not in self._cache:
            if self.cleared:
                return 0
            raw = os.pread(self._fd, _SLOT.size, self._offset + i * _SLOT.size)
            self._cache[i] = _SLOT.unpack(raw)[0] if len(raw) == _SLOT.size else 0
        return self._cache[i]

    def set(self, i: int, value: int) -> None:
        i %= SLOTS
        self._cache[i] = value
        self.dirty.add(i)

    def clear(self) -> None:
        self._cache.clear()
        self.dirty.clear()
        self.cleared = True

    def flush(self) -> None:
        if self.cleared:  # one write for the whole ring
            cells = [self._cache.get(i, 0) for i in range(SLOTS)]
            os.pwrite(self._fd, struct.pack(f"<{SLOTS}I", *cells), self._offset)
        else:
            for i in sorted(self.dirty):
                os.pwrite(self._fd, _SLOT.pack(self._cache[i]), self._offset + i * _SLOT.size)
        self.dirty.clear()
        self.cleared = False


class FileStore(Store):
    """The window in a fixed-size binary file shared by the processes of one machine."""

    _RING_AT = len(_MAGIC) + _HEADER.size
    _SIZE = _RING_AT + SLOTS * _SLOT.size

    def __init__(self, path: Path, slot_width: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.slot_width = slot_width
        self._lock = threading.Lock()  # flock is per open file; threads need their own
        self._fd = -1
        self._pid = 0
        self._open()

    def _open(self) -> None:
        # a forked child must not reuse the parent's descriptor: flock locks belong to
        # the open file description, which fork shares, so they would not exclude
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.chmod(self.path, 0o600)
        self._pid = os.getpid()
        self._closed = False

    def _read(self) -> WindowState:
        head = os.pread(self._fd, self._RING_AT, 0)
        ring = _FileRing(self._fd, self._RING_AT)
        if len(head) == self._RING_AT and head.startswith(_MAGIC):
            values = _HEADER.unpack_from(head, len(_MAGIC))
            if values[0] == self.slot_width and os.fstat(self._fd).st_size == self._SIZE:
                return WindowState(ring=ring, **dict(zip(_HEADER_FIELDS, values, strict=True)))
            log.warning(
                "rate limiter state %s was written for another window; starting afresh",
                self.path,
            )
        # missing, older format, another window or damaged: start from an empty ring
        os.ftruncate(self._fd, self._SIZE)
        ring.clear()
        return WindowState(self.slot_width, ring=ring)

    def transact(self, fn: Callable[[WindowState], Any]) -> Any:
        with self._lock:
            if self._closed:
                raise ClientClosedError("the rate limiter is closed")
            if self._pid != os.getpid():
                self._open()  # the inherited descriptor stays with the parent
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                state = self._read()
                ring = state.ring
                assert isinstance(ring, _FileRing)
                fresh = ring.cleared
                before = state.header()
                result = fn(state)
                if fresh or state.header() != before:
                    os.pwrite(self._fd, _MAGIC + _HEADER.pack(*state.header()), 0)
                ring.flush()
                return result
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0 and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = -1
            self._closed = True
