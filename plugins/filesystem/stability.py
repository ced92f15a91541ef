"""When is a file in a drop folder complete? When it has stopped changing.

Nothing tells a reader that a scanner, a browser or an SMB client has finished writing
(``close_write`` never reaches a polling observer, and a copy may close and reopen the
file). The tracker takes a file once its size and modification time are unchanged and
no event arrived for ``delay`` seconds; any event or any change of either restarts the
wait. Observers call :meth:`touch` (from their thread); the source's loop calls
:meth:`due` (from its own) and takes what it returns.

The clock is injectable so the logic is tested without sleeping.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Signature = tuple[int, int, int]  # (size, mtime_ns, inode)


def signature(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass
class _Pending:
    quiet_since: float
    sig: Signature | None


class StabilityTracker:
    """Files waiting to become stable, keyed by absolute path."""

    def __init__(self, delay: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.delay = delay
        self.clock = clock
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def __contains__(self, path: object) -> bool:
        with self._lock:
            return path in self._pending

    def touch(self, path: str, sig: Signature | None = None) -> None:
        """Something happened to ``path``: (re)start its wait."""
        now = self.clock()
        with self._lock:
            entry = self._pending.get(path)
            if entry is None:
                self._pending[path] = _Pending(now, sig)
            else:
                entry.quiet_since = now
                if sig is not None:
                    entry.sig = sig

    def forget(self, path: str) -> None:
        """``path`` was deleted or moved away."""
        with self._lock:
            self._pending.pop(path, None)

    def forget_under(self, folder: str) -> None:
        """A folder was deleted or moved away: forget everything below it."""
        prefix = folder.rstrip(os.sep) + os.sep
        with self._lock:
            for p in [p for p in self._pending if p.startswith(prefix)]:
                del self._pending[p]

    def next_due_in(self) -> float | None:
        """Seconds until the earliest pending file may be due (None: nothing pending)."""
        with self._lock:
            if not self._pending:
                return None
            earliest = min(e.quiet_since for e in self._pending.values())
        return max(0.0, earliest + self.delay - self.clock())

    def due(
        self, stat: Callable[[str], Signature | None], limit: int = 1000
    ) -> list[tuple[str, Signature]]:
        """Files quiet for ``delay`` whose signature did not change since last seen.

        ``stat`` returns a path's current signature, or None when it is gone (it is then
        forgotten). A file whose signature changed waits ``delay`` again. Returned files
        leave the tracker; an event afterwards tracks them anew.
        """
        now = self.clock()
        with self._lock:
            candidates = [
                (p, e.sig, e.quiet_since)
                for p, e in self._pending.items()
                if now - e.quiet_since >= self.delay
            ][:limit]
        ready: list[tuple[str, Signature]] = []
        for path, seen, since in candidates:
            current = stat(path)  # outside the lock: the observer keeps going
            with self._lock:
                entry = self._pending.get(path)
                if entry is None or entry.sig != seen or entry.quiet_since != since:
                    continue  # forgotten or touched meanwhile: its new entry decides
                if current is None:
                    del self._pending[path]
                elif current != seen:
                    entry.sig = current
                    entry.quiet_since = self.clock()
                else:
                    del self._pending[path]
                    ready.append((path, current))
        return ready
