"""What the ``updated_at`` checkpoint may advance to during one poll."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Watermark:
    """Tracks what the ``updated_at`` checkpoint may advance to during one poll.

    ``done`` items are in the ledger (spooled, known or failed for good); ``deferred``
    ones were not spooled for a temporary reason. The checkpoint may move to the highest
    done value, but never past the lowest deferred one (the since-filter is inclusive,
    so that item comes back). Before the feed was walked to its end this is only safe
    while the items came in ascending updated-at order (later pages are newer).
    """

    saved: float | None
    best: tuple[float, str] | None = None
    lowest_deferred: tuple[float, str] | None = None
    ascending: bool = True
    _last: float | None = None

    def _see(self, key: float) -> None:
        if self._last is not None and key < self._last:
            self.ascending = False
        self._last = key

    def done(self, key: float, raw: str) -> None:
        self._see(key)
        if self.best is None or key > self.best[0]:
            self.best = (key, raw)

    def deferred(self, key: float, raw: str) -> None:
        self._see(key)
        if self.lowest_deferred is None or key < self.lowest_deferred[0]:
            self.lowest_deferred = (key, raw)

    def candidate(self, complete: bool) -> str | None:
        if not (complete or self.ascending) or self.best is None:
            return None
        cand = self.best
        if self.lowest_deferred is not None and self.lowest_deferred[0] < cand[0]:
            cand = self.lowest_deferred
        if self.saved is not None and cand[0] <= self.saved:
            return None
        self.saved = cand[0]
        return cand[1]
