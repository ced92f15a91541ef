"""The drop-folder source: every complete file in a folder becomes one record, once.

A file is noticed (by a walk or a watchdog event), waits until it is stable (a scanner
may still be writing it), is emitted once per version, and is moved (or deleted, or
kept) only after delivery, and only while it is still the version that was delivered,
so a newer file of the same name is never moved by an older record. Odd input (empty,
too large, unreadable, special files, symlinks, undecodable names) is logged once per
version and never stops the daemon.

How a file travels step by step, and the outcome for each kind of odd input:
docs/internals.md, "The drop-folder source".
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from pipeline import DocumentRecord, PipelineError, Source, SourceContext

from .aftercare import Aftercare
from .backlog import Backlog
from .claims import Claims
from .collector import Collector
from .folder import DropFolder
from .intake import Intake
from .notes import OnceLog
from .options import FilesystemOptions
from .parts import Shared
from .spooling import Spooler
from .stability import StabilityTracker
from .versions import base_version
from .watching import WatchLoop


class FilesystemSource(Source):
    """``type = "filesystem"``: a watched drop folder.

    Wires the parts together: :class:`DropFolder` (which paths are candidates),
    :class:`Backlog` (walks, stable files), :class:`WatchLoop` (the daemon's observer),
    :class:`Intake` (once per version, the reader threads), :class:`Spooler` (one file
    into the spool), :class:`Collector` (claiming) and :class:`Aftercare` (after delivery).
    """

    options_model = FilesystemOptions

    def __init__(self, name: str, options: Any, context: SourceContext) -> None:
        if not isinstance(options, FilesystemOptions):
            options = FilesystemOptions.model_validate(options)
        super().__init__(name, options, context)
        self.opts: FilesystemOptions = options
        self.log = context.log
        self.folder = DropFolder(options)
        self.root = self.folder.root
        self.tracker = StabilityTracker(options.stability_delay)
        self._wake = threading.Event()
        notes = OnceLog(self.log, name)
        self.aftercare = Aftercare(name, options, self.root, self.log)
        self.collector = Collector(
            name, options, self.root, context, self.aftercare, self.tracker, notes
        )
        shared = Shared(name, options, context, self.folder, self.tracker, notes)
        self.intake = Intake(shared, self.collector, Spooler(shared))
        self.backlog = Backlog(shared, self.collector, self.intake)
        self.watching = WatchLoop(shared, self.backlog, self._wake)

    def scan(self) -> None:
        """Emit the backlog (streamed), then wait for files still being written; a
        missing folder raises (``once`` reports it, the daemon's watch waits for it)."""
        if not self.folder.available():  # an unmounted share: `once` must not say "ok"
            raise PipelineError(
                f"drop folder {self.root} is not available (unmounted or removed?); nothing scanned"
            )
        self.intake.upgrade_mark()
        with self.intake.readers():
            self.backlog.scan()
        self.collector.tidy_claims()

    def watch(self) -> None:
        """Watch until ``context.stopping``: events, stable files, periodic full rescans
        (a missing drop folder is looked for again; see :mod:`.watching`)."""
        self.intake.upgrade_mark()
        with self.intake.readers():
            self.watching.run()

    def _watch_ok(self) -> bool:
        """Whether the observer watches the drop folder (the tests wait for it)."""
        return self.watching.healthy()

    def _claims_now(self) -> Claims | None:
        """This collector's claim folder, made on first use (None: files taken in place)."""
        return self.collector.claims()

    # ------------------------------------------------------------------ outcomes

    def ack(self, record: DocumentRecord, outcome: Literal["delivered", "duplicate"]) -> None:
        """Delivered or duplicate: move to ``processed/``, delete, or keep (idempotent)."""
        try:
            self._claims_now()  # a record resumed after a restart: its file is claimed
            self._look_again(self.aftercare.delivered(record, outcome))
        finally:
            self._done(record)

    def nack(self, record: DocumentRecord, reason: str) -> None:
        """Failed for good: move to ``failed/`` with ``<name>.error.txt``, or keep."""
        try:
            self._claims_now()
            self._look_again(self.aftercare.failed(record, reason))
        finally:
            self._done(record)

    def _look_again(self, changed: str | None) -> None:
        """A file the post-action left because it changed: take its new version."""
        if changed is not None:
            self.tracker.touch(changed)
            self._wake.set()

    def _done(self, record: DocumentRecord) -> None:
        self.intake.release(record.source_ref, base_version(record.version))

    def close(self) -> None:
        """Stop the observer (if ``watch`` did not already) and join its threads; the
        claim folder's empty folders go (every post-action is over)."""
        self.watching.stop()
        self.collector.tidy_claims()
