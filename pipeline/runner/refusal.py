"""The destination refused the key: noticed by the workers, acted on by the runs.

One refused delivery is enough to know that no other can land: ``once`` stops within a
tick instead of retrying until ``once_timeout``; the daemon keeps the records waiting
(they are retried) and the next delivery that lands clears the refusal.
"""

from __future__ import annotations

import threading


class KeyRefusal:
    """The last refusal of the key, and the records it held up (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._records: set[int] = set()
        self.event = threading.Event()  # set while the key is refused

    def report(self, record_id: int, reason: str) -> None:
        with self._lock:
            self._reason = reason
            self._records.add(record_id)
        self.event.set()

    def clear(self) -> None:
        """A delivery landed: the key works (again)."""
        if not self.event.is_set():
            return
        with self._lock:
            self._reason = None
            self._records.clear()
        self.event.clear()

    @property
    def reason(self) -> str | None:
        with self._lock:
            return self._reason

    def held_records(self) -> list[int]:
        """The records postponed because of the refusal (due again after the fix)."""
        with self._lock:
            return sorted(self._records)
