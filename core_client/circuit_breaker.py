"""Circuit breaker: stop calling IT Glue while it is down, probe it again later.

States: ``closed`` (calls go through; ``failure_threshold`` consecutive failed
calls open it), ``open`` (calls fail fast with :class:`CircuitOpenError` and
nothing is sent, for ``cooldown`` seconds), ``half_open`` (exactly ONE trial call is
let through; its success closes the breaker, its failure re-opens it for another
cool-down; other calls fail fast meanwhile). ``reset()`` closes it by hand.

What counts as a failure is decided by the caller. The transport calls it once per
HTTP attempt: each 5xx or transport error counts; business errors (4xx) and 429 (the
transport waits them out) never count.

Hand-written rather than pybreaker because pybreaker 1.x holds one
``RLock`` for the whole duration of ``call()``: every worker thread would wait for the
previous HTTP request to finish, and half-open would not be limited to one probe
among concurrent callers. It also keys the cool-down to the wall clock (``datetime``),
while this one uses ``time.monotonic`` (immune to clock jumps on a months-long
daemon). The logic is ~100 lines and fully unit-tested.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .exceptions import CircuitOpenError

log = logging.getLogger("itglue_ingest.client.breaker")

State = Literal["closed", "open", "half_open"]
Outcome = Literal["failure", "neutral", "ignore"]
"""failure: counts towards opening; neutral: a business answer (server is up);
ignore: nothing was learned (the call was cancelled before an answer)."""


@dataclass
class _Transition:
    at: float
    old: State
    new: State


class CircuitBreaker:
    """Thread-safe breaker; the lock is held only to read/update state, never during calls."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown: float = 60.0,
        *,
        name: str = "itglue",
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[State, State], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.name = name
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._consecutive_failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False
        self._total_failures = 0
        self._total_successes = 0
        self._rejected = 0
        self._times_opened = 0
        self._transitions: list[_Transition] = []

    # -- state ---------------------------------------------------------------------
    @property
    def state(self) -> State:
        """The current state; an open breaker whose cool-down is over reads as half_open."""
        with self._lock:
            if self._state == "open" and self._cooldown_over():
                return "half_open"
            return self._state

    def _cooldown_over(self) -> bool:
        return self._opened_at is not None and self._clock() - self._opened_at >= self.cooldown

    def _set(self, new: State) -> None:  # lock held
        old = self._state
        if old == new:
            return
        self._state = new
        self._transitions.append(_Transition(self._clock(), old, new))
        del self._transitions[:-20]
        # an outage's probes (open -> half_open -> open every cool-down) at DEBUG: the
        # transport's outage lines tell how it goes
        if new == "open" and old == "closed":
            level, text = logging.WARNING, f"; calls fail fast for {self.cooldown:.0f} s"
        else:
            level, text = (logging.INFO if new == "closed" else logging.DEBUG), ""
        log.log(
            level,
            "circuit breaker %s -> %s%s",
            old,
            new,
            text,
            extra={
                "breaker": self.name,
                "old_state": old,
                "new_state": new,
                "consecutive_failures": self._consecutive_failures,
            },
        )
        if self._on_change is not None:
            self._on_change(old, new)

    # -- the protocol the transport uses ----------------------------------------------
    def before_call(self) -> bool:
        """Admit a call or raise :class:`CircuitOpenError`. Returns True for the probe."""
        with self._lock:
            if self._state == "closed":
                return False
            if self._state == "open":
                if not self._cooldown_over():
                    self._rejected += 1
                    assert self._opened_at is not None
                    left = self.cooldown - (self._clock() - self._opened_at)
                    raise CircuitOpenError(
                        f"circuit breaker open after {self._consecutive_failures} consecutive "
                        f"failures; next probe in {left:.1f} s",
                        retry_after=max(0.0, left),
                    )
                self._set("half_open")
            # half_open: one probe at a time
            if self._probe_in_flight:
                self._rejected += 1
                raise CircuitOpenError(
                    "circuit breaker half-open: a probe call is in flight", retry_after=1.0
                )
            self._probe_in_flight = True
            return True

    def record_success(self, probe: bool = False) -> None:
        with self._lock:
            self._total_successes += 1
            self._consecutive_failures = 0
            if probe:
                self._probe_in_flight = False
            if self._state != "closed":
                self._opened_at = None
                self._set("closed")

    def record_failure(self, probe: bool = False) -> None:
        with self._lock:
            self._total_failures += 1
            self._consecutive_failures += 1
            if probe:
                self._probe_in_flight = False
            if self._state == "half_open" or (
                self._state == "closed" and self._consecutive_failures >= self.failure_threshold
            ):
                self._opened_at = self._clock()
                self._times_opened += 1
                self._set("open")

    def record_neutral(self, probe: bool = False) -> None:
        """The call ended in a way that says nothing about health (a 4xx business error).

        A business answer proves the server is up, so a probe that got one closes the
        breaker; in the closed state it just does not touch the failure count.
        """
        if not probe:
            return
        with self._lock:
            self._probe_in_flight = False
            self._consecutive_failures = 0
            if self._state != "closed":
                self._opened_at = None
                self._set("closed")

    def release_probe(self) -> None:
        """The probe ended without telling anything (cancelled): let another one try."""
        with self._lock:
            self._probe_in_flight = False

    def call(self, func: Callable[[], Any], classify: Callable[[BaseException], Outcome]) -> Any:
        """Run ``func`` under the breaker; ``classify(exc)`` says what an error means."""
        probe = self.before_call()
        try:
            result = func()
        except BaseException as exc:
            outcome = classify(exc)
            if outcome == "failure":
                self.record_failure(probe)
            elif outcome == "neutral":
                self.record_neutral(probe)
            elif probe:
                self.release_probe()
            raise
        self.record_success(probe)
        return result

    def reset(self) -> None:
        """Close the breaker by hand (after fixing whatever broke)."""
        with self._lock:
            self._consecutive_failures = 0
            self._opened_at = None
            self._probe_in_flight = False
            self._set("closed")

    def get_stats(self) -> dict[str, Any]:
        with self._lock:
            state: State = self._state
            if state == "open" and self._cooldown_over():
                state = "half_open"
            left = None
            if self._state == "open" and self._opened_at is not None:
                left = max(0.0, self.cooldown - (self._clock() - self._opened_at))
            return {
                "state": state,
                "consecutive_failures": self._consecutive_failures,
                "failure_threshold": self.failure_threshold,
                "cooldown_seconds": self.cooldown,
                "seconds_until_probe": left,
                "total_failures": self._total_failures,
                "total_successes": self._total_successes,
                "rejected_calls": self._rejected,
                "times_opened": self._times_opened,
                "recent_transitions": [
                    {"old": t.old, "new": t.new, "seconds_ago": round(self._clock() - t.at, 3)}
                    for t in self._transitions
                ],
            }
