"""Whether each source can reach what it reads (the drop folder, the mailbox, the feed),
when it last scanned successfully and what is wrong now. Sources report through their
context (:meth:`~pipeline.sources.SourceContext.report_scan`); the engine's scheduler
reports every ``scan()`` that returns or raises, so a source only reports what happens
inside its own ``watch()`` loop."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceState:
    """One source's state. ``connected`` None: it has not reported yet."""

    connected: bool | None = None
    last_scan_at: float | None = None  # wall clock of the last successful scan
    error: str | None = None  # why it is not connected (None when it is)
    changed_at: float | None = None


class SourceHealth:
    """The states of an engine's sources (thread-safe)."""

    def __init__(self, names: list[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, SourceState] = {n: SourceState() for n in names or []}
        self._reports: dict[str, int] = {}  # reports of trouble per source, ever

    def add(self, name: str) -> None:
        with self._lock:
            self._states.setdefault(name, SourceState())

    def ok(self, name: str) -> None:
        """``name`` scanned successfully just now."""
        now = time.time()
        with self._lock:
            self._states[name] = SourceState(True, now, None, now)

    def trouble(self, name: str, error: str) -> None:
        """``name`` cannot reach what it reads: ``error`` says why."""
        now = time.time()
        with self._lock:
            before = self._states.get(name, SourceState())
            changed = before.changed_at if before.error == error else now
            self._states[name] = SourceState(False, before.last_scan_at, error, changed)
            self._reports[name] = self._reports.get(name, 0) + 1

    def mark(self, name: str) -> int:
        """A mark to pass to :meth:`scan_returned` after a scan."""
        with self._lock:
            return self._reports.get(name, 0)

    def scan_returned(self, name: str, mark: int) -> None:
        """A ``scan()`` returned: a success, unless the source reported trouble during it."""
        with self._lock:
            if self._reports.get(name, 0) != mark:
                return
        self.ok(name)

    def snapshot(self) -> dict[str, SourceState]:
        with self._lock:
            return dict(self._states)
