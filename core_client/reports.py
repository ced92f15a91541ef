"""Typed results of :meth:`ITGlueClient.health_check` and :meth:`ITGlueClient.get_metrics`.

``as_dict()`` gives the JSON shape that ``itglue-ingest health --json`` prints. The
breaker's and the limiter's own statistics stay the dicts of their ``get_stats()``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from .metrics import MetricsSnapshot

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
        """Requests this client may still send in the current window (None: unknown)."""
        used = self.rate_limiter.get("requests_in_window")
        budget = self.rate_limiter.get("budget")
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


__all__ = ["ClientMetrics", "HealthReport", "HealthStatus"]
