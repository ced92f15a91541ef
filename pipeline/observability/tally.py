"""What this process did, counted as it happens: records received, delivered, duplicate,
failed (by reason class) and retried per source, extraction outcomes, and the time from
a record's arrival to its delivery. Exported by the metrics endpoint; plain Python so the
engine does not depend on the exporter."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

from .reasons import reason_class

# seconds from a record's arrival (the source emitted it) to its delivery
DELIVERY_BUCKETS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0
)  # fmt: skip


@dataclass(frozen=True)
class TallySnapshot:
    """The counters at one moment (cumulative since the engine started)."""

    records: dict[tuple[str, str], int]  # (source, outcome) -> n
    failed: dict[tuple[str, str], int]  # (source, reason class) -> n
    extractions: dict[tuple[str, str, str], int]  # (source, extractor, outcome) -> n
    delivery_buckets: dict[str, list[int]]  # source -> count per DELIVERY_BUCKETS bound
    delivery_count: dict[str, int]
    delivery_sum: dict[str, float]
    last_delivery_at: float | None  # wall clock


class Tally:
    """Thread-safe counters of one engine (never reset: Prometheus expects that)."""

    OUTCOMES = ("received", "delivered", "duplicate", "failed", "retried")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: Counter[tuple[str, str]] = Counter()
        self._failed: Counter[tuple[str, str]] = Counter()
        self._extractions: Counter[tuple[str, str, str]] = Counter()
        self._buckets: dict[str, list[int]] = {}
        self._count: Counter[str] = Counter()
        self._sum: dict[str, float] = {}
        self._last_delivery_at: float | None = None

    def received(self, source: str) -> None:
        with self._lock:
            self._records[(source, "received")] += 1

    def duplicate(self, source: str) -> None:
        with self._lock:
            self._records[(source, "duplicate")] += 1

    def retried(self, source: str) -> None:
        """A transient failure: the record waits for another attempt."""
        with self._lock:
            self._records[(source, "retried")] += 1

    def failed(self, source: str, reason: str) -> None:
        with self._lock:
            self._records[(source, "failed")] += 1
            self._failed[(source, reason_class(reason))] += 1

    def delivered(self, source: str, arrived_at: float) -> None:
        """Delivered; ``arrived_at``: when the record entered the ledger (wall clock)."""
        now = time.time()
        seconds = max(0.0, now - arrived_at)
        with self._lock:
            self._records[(source, "delivered")] += 1
            counts = self._buckets.setdefault(source, [0] * len(DELIVERY_BUCKETS))
            for i, bound in enumerate(DELIVERY_BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
                    break
            self._count[source] += 1
            self._sum[source] = self._sum.get(source, 0.0) + seconds
            self._last_delivery_at = now

    def extraction(self, source: str, extractor: str, outcome: str) -> None:
        """One file's extraction: ``outcome`` e.g. ``extracted``, ``failed``, ``timeout``,
        ``skipped`` (keep the set small: it is a metric label)."""
        with self._lock:
            self._extractions[(source, extractor, outcome)] += 1

    def snapshot(self) -> TallySnapshot:
        with self._lock:
            return TallySnapshot(
                records=dict(self._records),
                failed=dict(self._failed),
                extractions=dict(self._extractions),
                delivery_buckets={s: list(c) for s, c in self._buckets.items()},
                delivery_count=dict(self._count),
                delivery_sum=dict(self._sum),
                last_delivery_at=self._last_delivery_at,
            )
