"""The backlog: walking the drop folder (and this collector's claims) for candidates, and
taking the tracked files that became stable. Once-mode ``scan`` is both until settled;
the watch loop interleaves them with events.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator

from .collector import Collector
from .intake import Intake
from .parts import Part, Shared
from .stability import Signature, signature
from .walk import Found

TICK = 0.05  # seconds between looks at the tracker while watching
SCAN_SETTLE_LIMIT = 60.0  # once-mode: how long scan() waits for files still changing


class Backlog(Part):
    """Walks and stable files, fed to the intake."""

    def __init__(self, shared: Shared, collector: Collector, intake: Intake) -> None:
        super().__init__(shared)
        self.collector = collector
        self.intake = intake

    def candidates(self, start: str | None = None) -> Generator[Found, None, None]:
        """The files to look at: this collector's claims (resumed after a restart, none
        in flight here), then the drop folder (or the folder ``start`` below it)."""
        claims = self.collector.claims()
        if claims is not None and start is None:
            yield from claims.files()
        yield from self.folder.files(start)

    def step(self, it: Iterator[Found], budget: float) -> bool:
        """Consider walked files for ``budget`` seconds; True when the walk is finished."""
        deadline = time.monotonic() + budget
        try:
            for found in it:
                try:
                    self.intake.consider(found.path, found.rel, found.st, stable=False)
                except Exception:
                    self.log.exception("error taking %s; skipped", found.rel)
                if self.context.stopping.is_set() or time.monotonic() >= deadline:
                    return False
            return True
        finally:
            self.intake.flush()  # what this slice gathered: no file waits for a batch

    def _stat_sig(self, path: str) -> Signature | None:
        try:
            return signature(os.lstat(path))
        except OSError:
            return None

    def take_due(self) -> int:
        """Emit the tracked files that became stable; returns how many were looked at."""
        due = self.tracker.due(self._stat_sig)
        try:
            self._take_stable(due)
        finally:
            self.intake.flush()
        return len(due)

    def _take_stable(self, due: list[tuple[str, Signature]]) -> None:
        for path, _sig in due:
            if self.context.stopping.is_set():
                break
            rel = self.folder.rel(path)
            if self.collector.owned(path) is None and (rel is None or not self.folder.wanted(path)):
                continue
            assert rel is not None
            try:
                st = os.lstat(path)
            except OSError:
                self.log.debug("%s vanished before it was read; forgotten", rel)
                continue
            try:
                self.intake.consider(path, rel, st, stable=True)
            except Exception:
                self.log.exception("error taking %s; skipped", rel)

    def scan(self) -> None:
        """Emit the backlog (streamed), then wait for files still being written.

        Files still changing after :data:`SCAN_SETTLE_LIMIT` seconds are left for the next
        run (or the daemon's watch), with a log line.
        """
        it = self.candidates()
        while not self.step(it, 1.0):
            if self.context.stopping.is_set():
                return
            self.take_due()
        deadline = time.monotonic() + max(SCAN_SETTLE_LIMIT, 5 * self.opts.stability_delay)
        while len(self.tracker) and not self.context.stopping.is_set():
            if time.monotonic() >= deadline:
                self.log.warning(
                    "%d file(s) in %s still changing; left for the next run",
                    len(self.tracker),
                    self.folder.root,
                    extra={"source": self.name},
                )
                return
            self.take_due()
            wait = self.tracker.next_due_in()
            self.context.stopping.wait(min(TICK * 4, wait if wait is not None else TICK))
