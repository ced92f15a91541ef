"""Client-side rate limiting against the IT Glue account budget.

IT Glue allows 3000 requests per 5 minutes per account and answers 429 beyond that
(itglue-api.md section 3). This limiter keeps the client under that ceiling:

* **Sliding window**: the send times of the last ``window`` seconds are kept; a
  request may go when fewer than ``budget = limit * share`` of them are in the
  window (``share`` leaves room for the account's other integrations). A small
  margin (1 % of the window, at least 0.25 s) is added to the window, because the
  server stamps a request when it arrives, a little after we stamp it.
* **Auto-throttle**: below 80 % of the budget requests go at once; from there the
  remaining budget is spread over the time left until the oldest request leaves the
  window, instead of bursting into the wall and collecting 429s.
* **One budget per machine**: processes that share a state directory share one file
  (``<state_dir>/<instance>.ratelimit``, mode 0600) holding the timestamps and the
  shared pause; every decision reads and updates it under an exclusive ``fcntl``
  lock, so together they stay within the budget. Nothing else is stored there.
* **429**: the transport calls :meth:`RateLimiter.on_429` with the server's
  ``Retry-After`` (seconds or HTTP-date, parsed by :func:`itglue_common.parse_retry_after`) or
  None; then every process pauses for that long (its own exponential estimate when
  the header is absent), and afterwards this machine's pace is halved for
  ``penalty_seconds``. The transport retries 429s without limit: a 429 never fails an
  operation; only :meth:`close` interrupts a wait.

Hand-written: the libraries at hand (urllib3 ``Retry``, stamina) retry but do not
budget a shared account across threads and processes; ratelimit-style decorators
are per-process and fixed-window.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import random
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itglue_common import exponential_delay

from .exceptions import ClientClosedError

log = logging.getLogger("itglue_ingest.client.ratelimit")

THROTTLE_AT = 0.8
_HEADER = struct.Struct("<dd")  # pause_until, slow_until (epoch seconds)
_MAGIC = b"ITGRL1\0\0"


@dataclass
class WindowState:
    """What the processes share: request send times and the 429 pause/slow-down."""

    stamps: list[float] = field(default_factory=list)
    pause_until: float = 0.0
    slow_until: float = 0.0


def decide(
    state: WindowState,
    now: float,
    *,
    budget: int,
    window: float,
    throttle_at: float = THROTTLE_AT,
    slow_factor: float = 0.5,
) -> float:
    """Seconds to wait before the next request may go (0.0: go now). Pure.

    ``state.stamps`` must be sorted and already pruned to ``(now - window, now]``.
    """
    if now < state.pause_until:
        return state.pause_until - now
    stamps = state.stamps
    n = len(stamps)
    if n >= budget:
        # wait until enough of the oldest requests leave the window
        return max(0.0, stamps[n - budget] + window - now)
    interval = 0.0
    if n >= throttle_at * budget and n:
        remaining = budget - n
        interval = max(window / budget, (stamps[0] + window - now) / remaining)
    if now < state.slow_until:
        interval = max(interval, window / budget / slow_factor)
    if interval and n:
        return max(0.0, stamps[-1] + interval - now)
    return 0.0


def backoff_estimate(strikes: int, window: float, budget: int) -> float:
    """Own wait estimate after ``strikes`` consecutive 429s without Retry-After.

    Starts at 1 s (or ten request slots when the budget is slow), doubles per strike,
    capped at a fifth of the window (max 60 s): the window is the longest one could
    ever need to wait, and sliding windows free slots continuously.
    """
    base = max(1.0, 10 * window / budget)
    cap = max(base, min(60.0, window / 5))
    # +-20 % rather than backoff_delay's equal jitter: every process takes this pause
    # together, so it should stay close to the estimate
    return exponential_delay(strikes, base=base, cap=cap) * random.uniform(0.8, 1.2)


class _Store:
    """Where the window lives; the lock is held across read-modify-write."""

    def transact(self, fn: Callable[[WindowState], Any]) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _MemoryStore(_Store):
    def __init__(self) -> None:
        self._state = WindowState()
        self._lock = threading.Lock()

    def transact(self, fn: Callable[[WindowState], Any]) -> Any:
        with self._lock:
            return fn(self._state)


class _FileStore(_Store):
    """The window in a small binary file shared by the processes of one machine."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
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
        size = os.fstat(self._fd).st_size
        data = os.pread(self._fd, size, 0) if size else b""
        head = len(_MAGIC) + _HEADER.size
        if len(data) < head or not data.startswith(_MAGIC):
            return WindowState()
        pause_until, slow_until = _HEADER.unpack_from(data, len(_MAGIC))
        count = (len(data) - head) // 8
        stamps = list(struct.unpack_from(f"<{count}d", data, head))
        return WindowState(stamps, pause_until, slow_until)

    def _write(self, state: WindowState) -> None:
        data = (
            _MAGIC
            + _HEADER.pack(state.pause_until, state.slow_until)
            + struct.pack(f"<{len(state.stamps)}d", *state.stamps)
        )
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))

    def transact(self, fn: Callable[[WindowState], Any]) -> Any:
        with self._lock:
            if self._closed:
                raise ClientClosedError("the rate limiter is closed")
            if self._pid != os.getpid():
                self._open()  # the inherited descriptor stays with the parent
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                state = self._read()
                before = (
                    len(state.stamps),
                    state.pause_until,
                    state.slow_until,
                    state.stamps[-1] if state.stamps else None,
                )
                result = fn(state)
                after = (
                    len(state.stamps),
                    state.pause_until,
                    state.slow_until,
                    state.stamps[-1] if state.stamps else None,
                )
                if after != before:
                    self._write(state)
                return result
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0 and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = -1
            self._closed = True


class RateLimiter:
    """Sliding-window limiter over the account budget; thread- and process-safe."""

    def __init__(
        self,
        limit: int = 3000,
        window: float = 300.0,
        share: float = 1.0,
        *,
        state_path: Path | None = None,
        throttle_at: float = THROTTLE_AT,
        penalty_seconds: float | None = None,
        slow_factor: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("rate limit and window must be positive")
        if not 0 < share <= 1:
            raise ValueError("rate_share must be in (0, 1]")
        self.limit = limit
        self.window = window
        self.share = share
        self.budget = max(1, math.floor(limit * share))
        self.margin = max(0.25, 0.01 * window)
        self.throttle_at = throttle_at
        self.penalty_seconds = (
            penalty_seconds if penalty_seconds is not None else max(10.0, min(window, 60.0))
        )
        self.slow_factor = slow_factor
        self._clock = clock
        self._store: _Store = _FileStore(state_path) if state_path else _MemoryStore()
        self.state_path = state_path
        self._closed = threading.Event()
        self._stats_lock = threading.Lock()
        self._strikes = 0
        self.waits = 0
        self.wait_seconds = 0.0
        self.rate_limited = 0  # 429s received by this process
        self.acquired = 0

    def _window(self) -> float:
        return self.window + self.margin

    def _prune(self, state: WindowState, now: float) -> None:
        horizon = now - self._window()
        # drop old stamps, and stamps "from the future" left by a clock that jumped back
        if state.stamps and (state.stamps[0] <= horizon or state.stamps[-1] > now + 1.0):
            state.stamps = [s for s in state.stamps if horizon < s <= now + 1.0]

    def acquire(self) -> float:
        """Block until a request may be sent and record it; returns the seconds waited."""
        started = time.monotonic()
        waited = 0.0
        first = True
        while True:
            if self._closed.is_set():
                raise ClientClosedError("the client was closed while waiting for the rate limiter")

            def attempt(state: WindowState) -> float:
                now = self._clock()
                self._prune(state, now)
                wait = decide(
                    state,
                    now,
                    budget=self.budget,
                    window=self._window(),
                    throttle_at=self.throttle_at,
                    slow_factor=self.slow_factor,
                )
                if wait <= 0:
                    state.stamps.append(max(now, state.stamps[-1]) if state.stamps else now)
                return wait

            wait = float(self._store.transact(attempt))
            if wait <= 0:
                with self._stats_lock:
                    self.acquired += 1
                    if waited:
                        self.waits += 1
                        self.wait_seconds += waited
                return waited
            if first:
                log.debug("rate limiter: waiting %.3f s", wait, extra={"wait_s": round(wait, 3)})
                first = False
            # sleep in short slices: another process may free budget, close() may come
            if self._closed.wait(min(wait, 1.0)):
                raise ClientClosedError("the client was closed while waiting for the rate limiter")
            waited = time.monotonic() - started

    def peek(self) -> float:
        """Seconds the next request would wait now (nothing is recorded)."""

        def look(state: WindowState) -> float:
            now = self._clock()
            self._prune(state, now)
            return decide(
                state,
                now,
                budget=self.budget,
                window=self._window(),
                throttle_at=self.throttle_at,
                slow_factor=self.slow_factor,
            )

        return float(self._store.transact(look))

    def on_429(self, retry_after: float | None) -> float:
        """Record a 429: pause every process sharing the budget; returns the pause."""
        with self._stats_lock:
            self._strikes += 1
            self.rate_limited += 1
            strikes = self._strikes
        if retry_after is not None and retry_after > 0:
            pause = retry_after + random.uniform(0.0, 0.1)
        else:
            pause = backoff_estimate(strikes, self.window, self.budget)

        def update(state: WindowState) -> None:
            now = self._clock()
            self._prune(state, now)
            state.pause_until = max(state.pause_until, now + pause)
            state.slow_until = max(state.slow_until, now + pause + self.penalty_seconds)

        self._store.transact(update)
        log.warning(
            "rate limited (429): pausing %.2f s, then slowing down for %.0f s",
            pause,
            self.penalty_seconds,
            extra={"pause_s": round(pause, 3), "retry_after": retry_after, "strikes": strikes},
        )
        return pause

    def on_success(self) -> None:
        """A request got a non-429 answer: the escalation of our own estimate restarts."""
        if self._strikes:
            with self._stats_lock:
                self._strikes = 0

    def get_stats(self) -> dict[str, Any]:
        def read(state: WindowState) -> dict[str, Any]:
            now = self._clock()
            self._prune(state, now)
            n = len(state.stamps)
            return {
                "requests_in_window": n,
                "paused_seconds_left": round(max(0.0, state.pause_until - now), 3),
                "slowed_down": now < state.slow_until,
                "throttling": n >= self.throttle_at * self.budget or now < state.slow_until,
            }

        try:
            shared = self._store.transact(read)
        except ClientClosedError:
            shared = {
                "requests_in_window": None,
                "paused_seconds_left": None,
                "slowed_down": None,
                "throttling": None,
            }
        used = shared["requests_in_window"]
        with self._stats_lock:
            return {
                "limit": self.limit,
                "window_seconds": self.window,
                "share": self.share,
                "budget": self.budget,
                **shared,
                "utilization": round(used / self.budget, 4) if used is not None else None,
                "throttle_threshold": self.throttle_at,
                "shared_state_file": str(self.state_path) if self.state_path else None,
                "acquired": self.acquired,
                "waits": self.waits,
                "wait_seconds": round(self.wait_seconds, 3),
                "rate_limited_429": self.rate_limited,
            }

    def close(self) -> None:
        """Interrupt waiters (they raise ClientClosedError) and release the state file."""
        self._closed.set()
        self._store.close()
