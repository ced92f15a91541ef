"""RED metrics of the client (rate, errors, duration), kept in memory.

``request_count`` counts HTTP attempts (each retry is a request: it costs budget);
``operation_count`` counts calls of the client (one operation may take several
attempts). Durations keep the last 10,000 attempts for percentiles, so memory stays
bounded on a daemon that runs for months. Attempt durations are also counted in
histogram buckets per route and status (:meth:`Metrics.latency_histograms`), which the
daemon exports to Prometheus; a route is the path with its ids replaced by ``{id}``.
Nothing here ever sees a header or a body.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

# seconds; Prometheus' default buckets (the API answers in ~0.1-2 s, uploads take longer)
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0
)  # fmt: skip
MAX_ROUTES = 200  # distinct routes kept apart; more are counted as "other" (bounded memory)
_ID_SEGMENT = re.compile(r"^(\d+|[0-9a-f]{16,}|[0-9a-f-]{36})$", re.IGNORECASE)


def route_of(path: str) -> str:
    """The route of a request path: ids replaced by ``{id}``, the query dropped
    (``/organizations/42/relationships/documents`` -> ``/organizations/{id}/...``)."""
    if not path.startswith("/"):
        return "(other)"  # a masked download or an absolute URL: never a label of its own
    path = path.split("?", 1)[0]
    return "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


@dataclass(frozen=True)
class LatencyHistogram:
    """Attempts of one route and status: cumulative counts per upper bound (seconds)."""

    route: str
    status: str
    buckets: tuple[tuple[float, int], ...]  # (upper bound, attempts at or below it)
    count: int
    sum_seconds: float


class _Buckets:
    def __init__(self) -> None:
        self.counts = [0] * len(LATENCY_BUCKETS)
        self.count = 0
        self.sum = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.sum += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
                break


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
        self._latency: dict[tuple[str, str], _Buckets] = {}
        self.last_status: str | None = None  # of the latest attempt ("transport_error")
        self.last_attempt_at: float | None = None  # time.time() of the latest attempt
        self.key_refused = False  # the latest answer about the key was 401/403

    def record_attempt(
        self, status: int | None, duration_ms: float, path: str | None = None
    ) -> None:
        """One HTTP attempt; ``status`` None when no answer came (transport error);
        ``path``: the request's path (its route labels the latency histogram)."""
        with self._lock:
            self._count_latency(path, status, duration_ms / 1000)
            self.last_status = str(status) if status is not None else "transport_error"
            self.last_attempt_at = time.time()
            if status is not None and status < 500 and status != 429:
                # any other answer passed authentication: the key works (again)
                self.key_refused = status in (401, 403)
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

    def _count_latency(self, path: str | None, status: int | None, seconds: float) -> None:
        route = route_of(path) if path is not None else "(other)"
        key = (route, str(status) if status is not None else "transport_error")
        buckets = self._latency.get(key)
        if buckets is None:
            if len({r for r, _ in self._latency}) >= MAX_ROUTES and not any(
                r == route for r, _ in self._latency
            ):
                key = ("other", key[1])
            buckets = self._latency.setdefault(key, _Buckets())
        buckets.add(seconds)

    def latency_histograms(self) -> list[LatencyHistogram]:
        """Attempt durations per (route, status) since the client started."""
        with self._lock:
            out = []
            for (route, status), b in sorted(self._latency.items()):
                cumulative, running = [], 0
                for bound, n in zip(LATENCY_BUCKETS, b.counts, strict=True):
                    running += n
                    cumulative.append((bound, running))
                out.append(LatencyHistogram(route, status, tuple(cumulative), b.count, b.sum))
            return out

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
