"""Sliding-window request budget per API key (default 3000 requests per 300 s).

Hand-written rather than a library because it is ten lines and must answer one extra
question a token bucket does not: how long until the oldest request leaves the window
(the optional ``Retry-After`` value).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class SlidingWindowLimiter:
    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("rate limit must be a positive count per positive window")
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, now: float | None = None) -> float | None:
        """Count one request; None if allowed, else seconds until a slot frees up.

        Refused requests do not consume budget (a client hammering through 429s is not
        punished further -- the real scope is undocumented, this is the lenient choice).
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            horizon = now - self.window
            while hits and hits[0] <= horizon:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window - now, 0.0)
            hits.append(now)
            return None

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()


def retry_after_header(wait: float) -> int:
    """Whole seconds, at least 1 (Retry-After has no fractions)."""
    return max(1, math.ceil(wait))
