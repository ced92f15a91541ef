"""Client-side rate limiting against the IT Glue account budget.

IT Glue allows 3000 requests per 5 minutes per account and answers 429 beyond that
(docs/itglue-api.md section 3). The budget is shared with the account's other
integrations, so what this client really has is unknown and changing; the configured
``limit * share`` is an upper bound, not a promise.

* **Sliding window in a ring**: the requests of the last ``window`` seconds (plus a
  small margin) are counted in a ring of :data:`SLOTS` per-slot counters with a running
  total, so a decision touches a few counters whatever the window and the rate. A
  request counts from its send until its answer, then from its answer: the server
  stamps it somewhere in between, so no latency can make the window free it too early.
* **Burst, then pace**: below 80 % of the budget requests go at once; above it they go
  at most :data:`PACE_SPEEDUP` times the budget's average rate, so concurrent senders
  see the mark before they overshoot it.
* **Learned budget (AIMD)**: a 429 means the account is full: the requests this machine
  has in the window become the estimate (multiplicative decrease), and every process
  pauses (``Retry-After`` when the server sends it, else a short own estimate). Above
  the estimate only one *probe* request is in flight at a time; each accepted probe
  raises the estimate (additive at first, faster while they keep succeeding) until the
  next 429 or the configured budget. The estimate also covers a server whose window is
  shorter than configured: probes find the capacity its window frees.
* **One budget per machine, or per account**: processes that share a state directory
  share one file (``<state_dir>/<instance>.ratelimit``, mode 0600, fixed size) holding
  the ring and the learned state; every decision reads and updates the few bytes it
  needs under an exclusive ``fcntl`` lock (:mod:`core_client.rate_state`). Collectors
  sharing a PostgreSQL state database share one row per instance instead
  (:mod:`core_client.rate_state_postgres`), so the whole fleet draws from one budget.

The transport retries 429s without limit: a 429 never fails an operation; only
:meth:`RateLimiter.close` interrupts a wait. Hand-written: the libraries at hand
(urllib3 ``Retry``, stamina) retry but do not budget a shared account across threads
and processes; ratelimit-style decorators are per-process and fixed-window.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itglue_common import exponential_delay

from .exceptions import ClientClosedError
from .rate_state import (
    SLOTS,
    FileStore,
    MemoryStore,
    Store,
    StoreUnavailable,
    WindowState,
    advance,
    free_at,
    record,
    settle,
)

if TYPE_CHECKING:
    from .database import Database

# the ring's names stay importable from here, where the limiter's users look for them
__all__ = [
    "PACE_SPEEDUP",
    "SLOTS",
    "THROTTLE_AT",
    "RateLimiter",
    "WindowState",
    "advance",
    "backoff_estimate",
    "decide",
    "effective_budget",
    "free_at",
    "next_probe",
    "record",
    "settle",
]

log = logging.getLogger("itglue_ingest.client.ratelimit")

THROTTLE_AT = 0.8
PACE_SPEEDUP = 8.0  # above the mark: the last fifth of the budget takes >= 2.5 % of the window
RECOVERY_TRUST = 0.8  # probes start after 80 % of the last recovery time ...
RECOVERY_SPAN = 1.5  # ... follow each other closely until 150 % of it ...
PROBE_SPACING = 0.25  # ... then wait a quarter of the time refused so far
PROBE_STEP_MAX = 0.05  # an accepted probe raises the estimate by at most 5 % of the budget
UNREACHABLE_RETRY = 1.0  # while the shared window is unreachable: seconds between tries


def effective_budget(state: WindowState, budget: int) -> int:
    """The configured budget, or the learned estimate when it is lower."""
    return min(budget, state.estimate) if state.estimate > 0 else budget


def decide(
    state: WindowState,
    now: float,
    *,
    budget: int,
    window: float,
    throttle_at: float = THROTTLE_AT,
    room_soon: float = 1.0,
) -> float:
    """Seconds to wait before the next request may go (0.0: go now). Pure.

    ``state`` must be advanced to ``now``. A request that may go while the window holds
    the learned estimate or more is a probe (see :class:`RateLimiter`); ``room_soon``:
    how far off room may be for the limiter to wait for it rather than probe.
    """
    if now < state.pause_until:
        return state.pause_until - now
    n = state.total
    if n >= budget:  # the configured budget is never exceeded, not even by a probe
        return max(1e-3, free_at(state, budget) - now)
    eff = effective_budget(state, budget)
    if n >= eff:  # at the learned estimate: wait for room, or probe above it
        until_room = free_at(state, eff) - now
        probe_at = state.calm_until if until_room <= room_soon else state.probe_until
        return max(0.0, min(until_room, probe_at - now))
    if n >= throttle_at * eff:
        # the configured budget's pace, not the estimate's: a server window shorter
        # than ours lets the learned count go again long before our window would
        interval = window / budget / PACE_SPEEDUP
        return max(0.0, state.last_sent + interval - now)
    return 0.0


def next_probe(state: WindowState, now: float, pause: float) -> float:
    """When the next probe above the estimate may go, after a 429 at ``now``. Pure.

    Around the time the server took to accept a probe last time (``recovery``), probes
    follow each other after the pause; before it none goes; without that knowledge (or
    well past it) the gaps grow with the time refused, so a server that stays full
    sees fewer and fewer of them.
    """
    since = now - state.refused_since
    expected = state.recovery
    if expected and since + pause < RECOVERY_TRUST * expected:
        return state.refused_since + RECOVERY_TRUST * expected
    if expected and since <= RECOVERY_SPAN * expected:
        return now + pause
    return now + max(pause, PROBE_SPACING * since)


def backoff_estimate(strikes: int, window: float, budget: int, cap: float) -> float:
    """Own pause after ``strikes`` consecutive 429s without Retry-After.

    One request slot of the budget (at least 1 s), doubling per strike, at most ``cap``:
    the pause is also the gap between probes while the server stays full, and a
    server window shorter than ours frees room long before our window would.
    """
    base = min(cap, max(1.0, window / budget))
    # +-20 % rather than backoff_delay's equal jitter: every process takes this pause
    # together, so it should stay close to the estimate
    return exponential_delay(strikes, base=base, cap=cap) * random.uniform(0.8, 1.2)


class RateLimiter:
    """Sliding-window limiter over the account budget, learning what the server allows.

    Thread- and process-safe. The window is shared through ``state_database`` (a
    PostgreSQL state database, row ``state_name``: every collector of the account), else
    the file ``state_path`` (every process of the machine), else kept in memory.
    ``penalty_seconds`` caps the pause the limiter takes on its own after a 429 without
    ``Retry-After`` (also the gap between failing probes); default: a hundredth of the
    window, at least 1 s.

    While the shared window is unreachable (its database is down) no request goes:
    :meth:`acquire` waits and tries again (a warning when it starts, a line when it
    ends), since a request sent unbudgeted may cost every collector a 429 pause.
    """

    def __init__(
        self,
        limit: int = 3000,
        window: float = 300.0,
        share: float = 1.0,
        *,
        state_path: Path | None = None,
        state_database: Database | None = None,
        state_name: str = "default",
        throttle_at: float = THROTTLE_AT,
        penalty_seconds: float | None = None,
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
            penalty_seconds if penalty_seconds is not None else max(1.0, window / 100)
        )
        self._clock = clock
        slot_width = (window + self.margin) / (SLOTS - 1)
        self.slot_width = slot_width
        self._store: Store
        if state_database is not None:
            from .rate_state_postgres import PostgresStore  # psycopg: only when used

            self._store = PostgresStore(state_database, state_name, slot_width)
            self.shared_state: str | None = f"{state_database.describe()} ({state_name})"
        elif state_path:
            self._store = FileStore(state_path, slot_width)
            self.shared_state = str(state_path)
        else:
            self._store = MemoryStore(slot_width)
            self.shared_state = None
        self.state_path = state_path
        self._unreachable_since: float | None = None  # the outage being waited out
        # one thread of this process asks the shared window at a time: threads that all
        # wake for the same freed slot would otherwise each pay a store transaction (a
        # database round trip or more) to learn that one of them got it
        self._turn = threading.Lock()
        self._turn_sleeps = 0  # how often the thread holding the turn slept for the budget
        self._closed = threading.Event()
        self._stats_lock = threading.Lock()
        self._sent = threading.local()  # this thread's request: its slot, a probe?
        self._strikes = 0
        self.waits = 0
        self.wait_seconds = 0.0
        self.rate_limited = 0  # 429s received by this process
        self.acquired = 0
        self.probes = 0

    def _window(self) -> float:
        return self.window + self.margin

    def _decide(self, state: WindowState, now: float) -> float:
        advance(state, now)
        return decide(
            state,
            now,
            budget=self.budget,
            window=self._window(),
            throttle_at=self.throttle_at,
            room_soon=self.penalty_seconds,
        )

    def acquire(self) -> float:
        """Block until a request may be sent and record it; returns the seconds waited."""
        started = time.monotonic()
        sleeps = self._turn_sleeps
        while not self._turn.acquire(timeout=0.25):
            if self._closed.is_set():
                raise ClientClosedError("the client was closed while waiting for the rate limiter")
        try:
            # queued behind a thread that waited for the budget: this one waited for it too
            queued = self._turn_sleeps != sleeps
            return self._acquire(started, time.monotonic() - started if queued else 0.0)
        finally:
            self._turn.release()

    def _acquire(self, started: float, waited: float) -> float:
        first = True
        while True:
            if self._closed.is_set():
                raise ClientClosedError("the client was closed while waiting for the rate limiter")

            def attempt(state: WindowState) -> tuple[float, bool, int]:
                now = self._clock()
                wait = self._decide(state, now)
                if wait > 0:
                    return wait, False, 0
                probe = state.total >= effective_budget(state, self.budget)
                if probe:  # one probe in flight: the next waits for its answer (or this)
                    state.probe_until = now + self.penalty_seconds
                record(state, now)
                return 0.0, probe, state.head

            try:
                wait, probe, slot = self._store.transact(attempt)
            except StoreUnavailable as e:
                self._unreachable(e)
                wait, probe, slot = UNREACHABLE_RETRY, False, 0
            else:
                self._reachable()
            if wait <= 0:
                self._sent.probe, self._sent.slot = probe, slot
                with self._stats_lock:
                    self.acquired += 1
                    self.probes += probe
                    if waited:
                        self.waits += 1
                        self.wait_seconds += waited
                return waited
            if first:
                log.debug("rate limiter: waiting %.3f s", wait, extra={"wait_s": round(wait, 3)})
                first = False
            # sleep in short slices: another process may free budget, close() may come
            self._turn_sleeps += 1
            if self._closed.wait(min(wait, 1.0)):
                raise ClientClosedError("the client was closed while waiting for the rate limiter")
            waited = time.monotonic() - started

    def _unreachable(self, error: StoreUnavailable) -> None:
        """The shared window could not be reached: say so once per outage."""
        with self._stats_lock:
            if self._unreachable_since is not None:
                return
            self._unreachable_since = time.monotonic()
        log.warning("%s; no request goes until it is back", error)

    def _reachable(self) -> None:
        if self._unreachable_since is None:  # the common case: no lock taken
            return
        with self._stats_lock:
            since, self._unreachable_since = self._unreachable_since, None
        if since is not None:
            log.warning(
                "rate budget in %s reachable again after %.1f s",
                self.shared_state,
                time.monotonic() - since,
            )

    def _shared(self, fn: Callable[[WindowState], Any]) -> Any:
        """``fn`` on the shared window, unless it is known to be unreachable: then only
        :meth:`acquire` tries again (and waits for it), nothing else blocks on it."""
        if self._unreachable_since is not None:
            raise StoreUnavailable("the shared rate budget is unreachable")
        return self._store.transact(fn)

    def peek(self) -> float:
        """Seconds the next request would wait now (nothing is recorded)."""
        try:
            return float(self._shared(lambda state: self._decide(state, self._clock())))
        except StoreUnavailable:
            return UNREACHABLE_RETRY

    def on_429(self, retry_after: float | None) -> float:
        """Record a 429: learn the budget and pause every sharer; returns the pause."""
        sent_slot = self._answered()
        self._sent.probe = False
        with self._stats_lock:
            self._strikes += 1
            self.rate_limited += 1
            strikes = self._strikes
        if retry_after is not None and retry_after > 0:
            pause = retry_after + random.uniform(0.0, 0.1)
        else:
            pause = backoff_estimate(strikes, self.window, self.budget, self.penalty_seconds)

        def update(state: WindowState) -> int:
            now = self._clock()
            advance(state, now)
            settle(state, sent_slot, accepted=False)
            # what this machine has in the window is what the account lets it have now
            state.estimate = max(1, min(effective_budget(state, self.budget), state.total))
            state.probe_run = 0
            state.pause_until = max(state.pause_until, now + pause)
            if not state.refused_since:
                state.refused_since = now
            state.probe_until = next_probe(state, now, pause)
            state.calm_until = now + self._window()
            return state.estimate

        try:
            estimate = self._shared(update)
        except StoreUnavailable:  # acquire waits for it to come back anyway
            estimate = None
        log.debug(  # the transport tells a storm of them in a few lines
            "rate limited (429): pausing %.2f s; budget estimate %s of %d per %.0f s",
            pause,
            estimate,
            self.budget,
            self.window,
            extra={
                "pause_s": round(pause, 3),
                "retry_after": retry_after,
                "strikes": strikes,
                "budget_estimate": estimate,
            },
        )
        return pause

    def _answered(self) -> int | None:
        """The slot this thread's request was sent in (None: unknown); forgets it."""
        slot: int | None = getattr(self._sent, "slot", None)
        self._sent.slot = None
        return slot

    def on_success(self) -> None:
        """A request got a non-429 answer: it counts from now; a probe raises the
        learned estimate."""
        if self._strikes:
            with self._stats_lock:
                self._strikes = 0
        sent_slot = self._answered()
        probe = getattr(self._sent, "probe", False)
        self._sent.probe = False
        if not probe and (
            sent_slot is None or sent_slot == math.floor(self._clock() / self.slot_width)
        ):
            return  # not ours, or answered in the slot it was sent in: nothing moves

        def grow(state: WindowState) -> None:
            now = self._clock()
            advance(state, now)
            settle(state, sent_slot, accepted=True)
            if not probe:
                return
            if state.refused_since:
                state.recovery = min(now - state.refused_since, self._window())
                state.refused_since = 0.0
            if not state.estimate:
                return
            # additive first, doubling while probes keep succeeding (so concurrency
            # comes back), never more than a small share of the budget per step
            cap = max(1, int(PROBE_STEP_MAX * self.budget))
            step = int(exponential_delay(state.probe_run + 1, base=1, cap=cap))
            state.probe_run = min(state.probe_run + 1, 30)
            state.estimate = max(state.estimate, state.total + step - 1)
            if state.estimate >= self.budget:
                state.estimate = 0  # back to the configured budget
            state.probe_until = 0.0

        # closed meanwhile: nothing to keep; unreachable: the request stays counted from
        # its send (and a probe's lesson is learned again by the next probe)
        with contextlib.suppress(ClientClosedError, StoreUnavailable):
            self._shared(grow)

    def get_stats(self) -> dict[str, Any]:
        def read(state: WindowState) -> dict[str, Any]:
            now = self._clock()
            advance(state, now)
            n = state.total
            eff = effective_budget(state, self.budget)
            return {
                "requests_in_window": n,
                "paused_seconds_left": round(max(0.0, state.pause_until - now), 3),
                "learned_budget": state.estimate or None,
                "throttling": n >= self.throttle_at * eff,
            }

        try:
            shared = self._shared(read)
        except (ClientClosedError, StoreUnavailable):
            shared = dict.fromkeys(
                ("requests_in_window", "paused_seconds_left", "learned_budget", "throttling")
            )
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
                "shared_state": self.shared_state,
                "acquired": self.acquired,
                "probes": self.probes,
                "waits": self.waits,
                "wait_seconds": round(self.wait_seconds, 3),
                "rate_limited_429": self.rate_limited,
            }

    def close(self) -> None:
        """Interrupt waiters (they raise ClientClosedError) and release the state file."""
        self._closed.set()
        self._store.close()
