"""watchdog observers for the drop folder, and the handler that turns events into work.

Two observers: the native one (inotify on Linux: events within a millisecond) and a
polling one for network shares, where inotify never hears of files written by other
machines. The polling observer is built from ``PollingObserverVFS`` with ``os.lstat``
and a ``scandir`` that hides ``processed/`` and ``failed/``: the stock
``PollingObserver`` follows symlinks (a link to ``..`` walks forever) and snapshots the
ever-growing ``processed/`` tree on every poll.

Events are only hints: the handler records *which* paths need a look (the stability
tracker for files, a queue of folders to walk for folders that appeared); what to do is
decided later, from the file itself, by the source's loop.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterator

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserverVFS

from .stability import StabilityTracker, signature

log = logging.getLogger("itglue_ingest.source.filesystem")

# Events that mean "look at this again". Opened/closed-without-write are left out on
# purpose: reading a file (as the engine does) must not make it look changed.
EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileAttribEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


def _path(p: bytes | str) -> str:
    return os.fsdecode(p)


class DropFolderHandler(FileSystemEventHandler):
    """Feeds the tracker (files) and the folder queue (new folders) from observer threads."""

    def __init__(
        self,
        tracker: StabilityTracker,
        wanted: Callable[[str], bool],
        folders: collections.deque[str],
        wake: threading.Event,
    ) -> None:
        self.tracker = tracker
        self.wanted = wanted  # is this absolute path a candidate file location?
        self.folders = folders
        self.wake = wake

    def _touch(self, path: str) -> None:
        if not self.wanted(path):
            return
        try:
            st = os.lstat(path)
        except OSError:
            self.tracker.forget(path)
            return
        self.tracker.touch(path, signature(st))
        self.wake.set()

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self._dispatch_event(event)
        except Exception:  # an observer thread that dies stops all watching
            log.exception("error handling file system event %r", event)

    def _dispatch_event(self, event: FileSystemEvent) -> None:
        src = _path(event.src_path)
        if event.event_type == "moved":
            dest = _path(event.dest_path)
            if event.is_directory:
                self.tracker.forget_under(src)
                if dest:
                    self.folders.append(dest)
                    self.wake.set()
            else:
                self.tracker.forget(src)
                if dest:
                    self._touch(dest)
            return
        if event.event_type == "deleted":
            if event.is_directory:
                self.tracker.forget_under(src)
            else:
                self.tracker.forget(src)
            return
        if event.is_directory:
            if event.event_type == "created":
                self.folders.append(src)
                self.wake.set()
            return
        self._touch(src)


ScanDir = Callable[[str | None], Iterator[os.DirEntry[str]]]


def _lstat_changes(path: str) -> os.stat_result:
    """``os.lstat`` with the ctime in the place of the mtime, for the polling snapshots.

    Their diff reports a file as modified only when its mtime or size changed, so a
    same-size ``cp -p`` over a file went unnoticed; the ctime changes on every write,
    ``utime`` and rename, and no tool can set it.
    """
    st = os.lstat(path)
    times = {
        "st_atime": st.st_atime,
        "st_mtime": st.st_ctime,
        "st_ctime": st.st_ctime,
        "st_atime_ns": st.st_atime_ns,
        "st_mtime_ns": st.st_ctime_ns,
        "st_ctime_ns": st.st_ctime_ns,
    }
    return os.stat_result(tuple(st), times)


def _filtered_scandir(hidden: Callable[[str], bool]) -> ScanDir:
    def listdir(path: str | None) -> Iterator[os.DirEntry[str]]:
        with os.scandir(path) as it:
            for entry in it:
                if not hidden(entry.path):
                    yield entry

    return listdir


class FolderWatcher:
    """The observer of one drop folder, and which of its folders it watches.

    Native (inotify): the root is watched on its own and each top-level sub-folder
    recursively, each as its own watch. That keeps ``processed/`` and ``failed/`` out of
    inotify altogether: a recursive watch of the root would add a watch for every dated
    folder ``processed/`` ever grows (one per organization folder per day, until the
    user's inotify watch limit is exhausted), and watchdog's recursive watch warns about
    callbacks registered twice whenever ``makedirs`` creates nested folders under it.
    A new top-level folder is added by :meth:`add` (the source calls it when the event
    arrives); sub-folders that vanish are dropped, and come back, in :meth:`check`.

    Polling: one recursive watch over a ``scandir`` that hides the excluded folders.
    A native observer that cannot start (inotify limits) falls back to polling.
    """

    def __init__(
        self,
        kind: str,
        root: str,
        *,
        recursive: bool,
        handler: DropFolderHandler,
        poll_interval: float,
        hidden: Callable[[str], bool],
    ) -> None:
        self.kind = kind
        self.root = root
        self.recursive = recursive
        self.handler = handler
        self.poll_interval = poll_interval
        self.hidden = hidden  # True: never watch this folder (processed/, ignored names)
        self.observer: BaseObserver | None = None
        self._root_watch: ObservedWatch | None = None
        self._subs: dict[str, tuple[ObservedWatch, tuple[int, int]]] = {}

    def start(self) -> None:
        if self.kind == "native":
            try:
                self._start_native()
                return
            except OSError as e:
                log.warning(
                    "native file watching of %s failed (%s); falling back to polling every %.1f s",
                    self.root,
                    e,
                    self.poll_interval,
                )
                self.stop()
                self.kind = "polling"
        observer = PollingObserverVFS(
            stat=_lstat_changes,
            listdir=_filtered_scandir(self.hidden),
            polling_interval=self.poll_interval,
        )
        self.observer = observer
        self._root_watch = observer.schedule(
            self.handler, self.root, recursive=self.recursive, event_filter=EVENT_FILTER
        )
        observer.start()

    def _start_native(self) -> None:
        observer = Observer()
        self.observer = observer
        self._root_watch = observer.schedule(
            self.handler, self.root, recursive=False, event_filter=EVENT_FILTER
        )
        if self.recursive:
            with os.scandir(self.root) as it:
                folders = [e.path for e in it if e.is_dir(follow_symlinks=False)]
            for folder in folders:
                self.add(folder)
        observer.start()

    def add(self, folder: str) -> None:
        """Watch a new top-level folder (native mode; others are covered already)."""
        if self.kind != "native" or not self.recursive or self.observer is None:
            return
        if os.path.dirname(folder) != self.root or folder in self._subs or self.hidden(folder):
            return
        try:
            st = os.lstat(folder)
            if not stat.S_ISDIR(st.st_mode):
                return
            watch = self.observer.schedule(
                self.handler, folder, recursive=True, event_filter=EVENT_FILTER
            )
        except OSError:
            return  # gone again, or a limit: the periodic rescan still finds its files
        self._subs[folder] = (watch, (st.st_dev, st.st_ino))

    def healthy(self) -> bool:
        """Whether the root is still watched (its emitter thread runs)."""
        observer = self.observer
        if observer is None or not observer.is_alive():
            return False
        # The native observer reads every watch through one inotify thread; if it died
        # (an exception in watchdog), the emitters live on but hear nothing.
        reader = getattr(observer, "_inotify_fd", None)
        if isinstance(reader, threading.Thread) and not reader.is_alive():
            return False
        return any(e.watch == self._root_watch and e.is_alive() for e in observer.emitters)

    def check(self) -> list[str]:
        """Drop watches of top-level folders that vanished or were replaced; re-add the
        ones replaced by a new folder. Returns the folders (re)added (to be walked)."""
        observer = self.observer
        if observer is None or self.kind != "native":
            return []
        alive = {e.watch for e in observer.emitters if e.is_alive()}
        readded: list[str] = []
        for folder, (watch, ident) in list(self._subs.items()):
            try:
                st = os.lstat(folder)
                current: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except OSError:
                current = None
            if watch in alive and current == ident:
                continue
            del self._subs[folder]
            with contextlib.suppress(KeyError, RuntimeError):
                observer.unschedule(watch)
            if current is not None:
                self.add(folder)
                readded.append(folder)
        return readded

    def stop(self) -> None:
        """Stop and join (idempotent)."""
        observer, self.observer = self.observer, None
        self._subs.clear()
        if observer is None:
            return
        try:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=10)
        except RuntimeError:  # never started
            pass
