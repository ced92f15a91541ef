"""Typed results of :meth:`ITGlueClient.health_check` and :meth:`ITGlueClient.get_metrics`,
and how they are made from the client's parts.

``as_dict()`` gives the JSON shape that ``itglue-ingest health --json`` prints. The
breaker's and the limiter's own statistics stay the dicts of their ``get_stats()``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .exceptions import AuthenticationError, CircuitOpenError, ITGlueError
from .metrics import MetricsSnapshot

if TYPE_CHECKING:
    from .circuit_breaker import CircuitBreaker
    from .metrics import Metrics
    from .rate_limiter import RateLimiter

HealthStatus = Literal["healthy", "unhealthy", "degraded"]


@dataclass(frozen=True)
class HealthReport:
    """One health probe.

    ``status``: healthy / unhealthy / degraded (the rate budget is spent, so no call
    was made; nothing is known to be wrong). ``api_key_valid``: True / False (401/403)
    / None (unknown: not reached, breaker open, or rate limited).
    """

    status: HealthStatus
    instance: str
    base_url: str
    api_key_valid: bool | None
    response_time_ms: float | None
    error: str | None
    circuit_breaker: dict[str, Any]
    rate_limiter: dict[str, Any]

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"

    @property
    def breaker_state(self) -> str:
        return str(self.circuit_breaker.get("state"))

    @property
    def rate_budget_left(self) -> int | None:
        """Requests this client may still send in the current window (None: unknown);
        the budget learned from 429s when it is lower than the configured one."""
        used = self.rate_limiter.get("requests_in_window")
        budget = self.rate_limiter.get("learned_budget") or self.rate_limiter.get("budget")
        if not isinstance(used, int) or not isinstance(budget, int):
            return None
        return max(0, budget - used)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ClientMetrics(MetricsSnapshot):
    """The client's RED metrics plus the limiter's waits and the breaker's state."""

    instance: str
    rate_limit_waits: int
    rate_limit_wait_seconds: float
    circuit_breaker_state: str
    rate_limiter: dict[str, Any]
    circuit_breaker: dict[str, Any]


def probe_health(
    instance: str,
    base_url: str,
    limiter: RateLimiter,
    breaker: CircuitBreaker,
    call: Callable[[], object],
) -> HealthReport:
    """Make one cheap authenticated ``call``; never raises."""
    try:
        wait = limiter.peek()
    except ITGlueError:
        wait = 0.0

    def report(
        status: HealthStatus, key_valid: bool | None, elapsed_ms: float | None, error: str | None
    ) -> HealthReport:
        return HealthReport(
            status=status,
            instance=instance,
            base_url=base_url,
            api_key_valid=key_valid,
            response_time_ms=elapsed_ms,
            error=error,
            circuit_breaker=breaker.get_stats(),
            rate_limiter=limiter.get_stats(),
        )

    if wait > 2.0:
        # do not block a health probe behind the rate limiter (a pause after 429s
        # can last a minute): the budget is spent, which says nothing about health
        return report(
            "degraded", None, None, f"rate limited: the next request may go in {wait:.1f} s"
        )
    started: float | None = time.monotonic()
    key_valid: bool | None = None
    error: str | None = None
    try:
        call()
    except AuthenticationError as e:
        key_valid, error = False, e.message
    except CircuitOpenError as e:
        error, started = e.message, None
    except ITGlueError as e:
        error = e.message
    else:
        key_valid = True
    elapsed = round((time.monotonic() - started) * 1000, 2) if started is not None else None
    return report("healthy" if key_valid else "unhealthy", key_valid, elapsed, error)


def collect_metrics(
    instance: str, metrics: Metrics, limiter: RateLimiter, breaker: CircuitBreaker
) -> ClientMetrics:
    snap = metrics.snapshot()
    limiter_stats = limiter.get_stats()
    breaker_stats = breaker.get_stats()
    return ClientMetrics(
        **vars(snap),
        instance=instance,
        rate_limit_waits=limiter_stats["waits"],
        rate_limit_wait_seconds=limiter_stats["wait_seconds"],
        circuit_breaker_state=breaker_stats["state"],
        rate_limiter=limiter_stats,
        circuit_breaker=breaker_stats,
    )


__all__ = ["ClientMetrics", "HealthReport", "HealthStatus", "collect_metrics", "probe_health"]
