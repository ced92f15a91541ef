"""The daemon's watch loop: observer events, stable files, new folders, periodic rescans.

A drop folder that is missing (an unmounted share) is reported and looked for again
every ``missing_retry_interval`` seconds; when it is back, watching resumes with a full
rescan. A fresh observer is always followed by a walk for what it missed.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
from collections.abc import Generator

from .backlog import TICK, Backlog
from .observe import DropFolderHandler, FolderWatcher
from .parts import Part, Shared
from .walk import Found

WALK_SLICE = 0.2  # seconds of walking before the tracker gets a look again


class WatchLoop(Part):
    """One source's observer and the loop around it."""

    def __init__(self, shared: Shared, backlog: Backlog, wake: threading.Event) -> None:
        super().__init__(shared)
        self.backlog = backlog
        self._wake = wake  # set by events and by acks that leave a changed file
        self._folders: collections.deque[str] = collections.deque()
        self._watcher: FolderWatcher | None = None
        self._root_id: tuple[int, int] | None = None

    def _start(self) -> None:
        handler = DropFolderHandler(self.tracker, self.folder.wanted, self._folders, self._wake)
        watcher = FolderWatcher(
            self.opts.observer,
            self.folder.root,
            recursive=self.opts.recursive,
            handler=handler,
            poll_interval=self.opts.poll_interval,
            hidden=self.folder.never_watch,
        )
        self._watcher = watcher
        watcher.start()
        st = os.stat(self.folder.root)
        self._root_id = (st.st_dev, st.st_ino)
        self.log.info(
            "watching %s (%s observer)", self.folder.root, watcher.kind, extra={"source": self.name}
        )

    def stop(self) -> None:
        """Stop the observer and join its threads (again: nothing)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def healthy(self) -> bool:
        """Whether the current observer still watches the current folder."""
        if self._watcher is None or not self._watcher.healthy():
            return False
        try:
            st = os.stat(self.folder.root)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._root_id

    def run(self) -> None:
        """Watch until ``context.stopping``: events, stable files, periodic full rescans."""
        stopping = self.context.stopping
        walker: Generator[Found, None, None] | None = None
        full_walk = False  # the walker is a full rescan (not one new folder's)
        next_rescan = 0.0
        missing_since: float | None = None
        next_missing_check = 0.0
        next_check = 0.0
        try:
            while not stopping.is_set():
                now = time.monotonic()
                if self._watcher is None or not self.healthy():
                    if self._watcher is not None:
                        self.stop()
                        walker = None
                    if now < next_missing_check:
                        stopping.wait(min(TICK * 4, next_missing_check - now))
                        continue
                    if not self.folder.available():
                        self.context.report_scan(
                            f"drop folder {self.folder.root} is not available"
                            " (unmounted or removed?)"
                        )
                        if missing_since is None:
                            missing_since = now
                            self.log.warning(
                                "drop folder %s is not available (unmounted or removed?); "
                                "looking again every %.0f s",
                                self.folder.root,
                                self.opts.missing_retry_interval,
                                extra={"source": self.name},
                            )
                        next_missing_check = now + self.opts.missing_retry_interval
                        continue
                    try:
                        self._start()
                    except OSError as e:
                        self.context.report_scan(f"cannot watch {self.folder.root}: {e}")
                        self.log.warning(
                            "cannot watch %s: %s; trying again in %.0f s",
                            self.folder.root,
                            e,
                            self.opts.missing_retry_interval,
                            extra={"source": self.name},
                        )
                        self.stop()
                        next_missing_check = now + self.opts.missing_retry_interval
                        continue
                    if missing_since is not None:
                        self.log.warning(
                            "drop folder %s is available again; watching resumes",
                            self.folder.root,
                            extra={"source": self.name},
                        )
                        missing_since = None
                    next_rescan = now  # a fresh observer: walk once for what it missed
                    self.context.report_scan()  # watching the folder: connected
                self.backlog.take_due()
                if now >= next_check and self._watcher is not None:
                    self._folders.extend(self._watcher.check())
                    next_check = now + 1.0
                while self._folders and walker is None:
                    folder = self._folders.popleft()
                    if self.folder.wanted_folder(folder):
                        if self._watcher is not None:
                            self._watcher.add(folder)  # watch first, then walk: none missed
                        walker, full_walk = self.backlog.candidates(start=folder), False
                if walker is None and now >= next_rescan:
                    walker, full_walk = self.backlog.candidates(), True
                    next_rescan = now + self.opts.rescan_interval
                if walker is not None:
                    if self.backlog.step(walker, WALK_SLICE):
                        walker = None
                        if full_walk:  # a quiet moment for the claim folder
                            self.backlog.collector.tidy_claims()
                        if self.healthy():  # a walk of the watched folder: a scan
                            self.context.report_scan()
                    continue
                self._wake.clear()
                wait = self.tracker.next_due_in()
                self._wake.wait(TICK if wait is None else min(max(wait, 0.005), TICK))
        finally:
            if walker is not None:
                with contextlib.suppress(Exception):
                    walker.close()
            self.stop()
