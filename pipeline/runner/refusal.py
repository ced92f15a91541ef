"""An IT Glue instance refused its key: noticed by the workers, acted on by the runs.

One refused delivery is enough to know that no other record for that instance can land:
``once`` stops within a tick when every instance refused its key (with several
instances, it ends as soon as only the refused instances' records are left) instead of
retrying until ``once_timeout``; the daemon keeps the records waiting (they are
retried) and the next delivery that lands in that instance clears its refusal.
"""

from __future__ import annotations

import threading


class KeyRefusal:
    """The last refusal of each instance's key, and the records it held up (thread-safe).

    Instances are named as records carry them (None: the single ``[itglue]`` table, or
    a sink without instances).
    """

    def __init__(self, instances: int = 1) -> None:
        self._instances = max(1, instances)
        self._lock = threading.Lock()
        self._reasons: dict[str | None, str] = {}
        self._records: dict[int, str | None] = {}  # record id -> its instance
        self.event = threading.Event()  # set while every instance refuses its key

    def report(self, record_id: int, reason: str, instance: str | None = None) -> None:
        with self._lock:
            self._reasons[instance] = reason
            self._records[record_id] = instance
            if len(self._reasons) >= self._instances:
                self.event.set()

    def landed(self, instance: str | None = None) -> None:
        """A delivery to ``instance`` landed: its key works (again)."""
        if not self._reasons:  # the common path: nothing refused, no lock taken
            return
        with self._lock:
            self._reasons.pop(instance, None)
            self._records = {r: i for r, i in self._records.items() if i != instance}
            self.event.clear()

    def clear(self) -> None:
        """Forget every refusal (a new run finds them again within a tick)."""
        with self._lock:
            self._reasons.clear()
            self._records.clear()
        self.event.clear()

    @property
    def reason(self) -> str | None:
        """Why the key was refused (one line per refusing instance), or None."""
        with self._lock:
            return "; ".join(self._reasons.values()) or None

    def refused(self) -> dict[str | None, str]:
        """Each instance whose key is refused, with the reason."""
        with self._lock:
            return dict(self._reasons)

    def held_records(self) -> list[int]:
        """The records postponed because of a refusal (due again after the fix)."""
        with self._lock:
            return sorted(self._records)
