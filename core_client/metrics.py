"""RED metrics of the client (rate, errors, duration), kept in memory.

``request_count`` counts HTTP attempts (each retry is a request: it costs budget);
``operation_count`` counts calls of the client (one operation may take several
attempts). Durations keep the last 10,000 attempts for percentiles, so memory stays
bounded on a daemon that runs for months. Nothing here ever sees a header or a body.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


@dataclass(frozen=True)
class Durations:
    """Attempt durations in milliseconds (the last 10,000 attempts; ``total``: all)."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float
    total: float


@dataclass(frozen=True)
class MetricsSnapshot:
    """The counters at one moment (see the module docstring for what they count)."""

    request_count: int
    error_count: int
    error_rate: float
    operation_count: int
    failed_operations: int
    retries: int
    rate_limited_429: int
    ambiguous_outcomes: int
    transport_errors: int
    circuit_rejections: int
    status_counts: dict[str, int]
    request_duration_ms: Durations

    def as_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return dataclasses.asdict(self)


class Metrics:
    """Thread-safe counters; ``snapshot()`` returns a typed :class:`MetricsSnapshot`."""

    def __init__(self, keep: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._durations: deque[float] = deque(maxlen=keep)
        self.request_count = 0
        self.error_count = 0
        self.operation_count = 0
        self.failed_operations = 0
        self.retries = 0
        self.rate_limited_429 = 0
        self.ambiguous = 0
        self.transport_errors = 0
        self.circuit_rejections = 0
        self.status_counts: dict[str, int] = {}
        self._total_ms = 0.0

    def record_attempt(self, status: int | None, duration_ms: float) -> None:
        """One HTTP attempt; ``status`` None when no answer came (transport error)."""
        with self._lock:
            self.request_count += 1
            self._durations.append(duration_ms)
            self._total_ms += duration_ms
            key = str(status) if status is not None else "transport_error"
            self.status_counts[key] = self.status_counts.get(key, 0) + 1
            if status is None:
                self.transport_errors += 1
                self.error_count += 1
            elif status >= 400:
                self.error_count += 1
                if status == 429:
                    self.rate_limited_429 += 1

    def incr(self, name: str, by: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + by)

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            values = sorted(self._durations)
            count = self.request_count
            return MetricsSnapshot(
                request_count=count,
                error_count=self.error_count,
                error_rate=round(self.error_count / count, 4) if count else 0.0,
                operation_count=self.operation_count,
                failed_operations=self.failed_operations,
                retries=self.retries,
                rate_limited_429=self.rate_limited_429,
                ambiguous_outcomes=self.ambiguous,
                transport_errors=self.transport_errors,
                circuit_rejections=self.circuit_rejections,
                status_counts=dict(self.status_counts),
                request_duration_ms=Durations(
                    count=len(values),
                    mean=round(sum(values) / len(values), 3) if values else 0.0,
                    p50=round(_percentile(values, 0.50), 3),
                    p95=round(_percentile(values, 0.95), 3),
                    p99=round(_percentile(values, 0.99), 3),
                    max=round(values[-1], 3) if values else 0.0,
                    total=round(self._total_ms, 3),
                ),
            )
