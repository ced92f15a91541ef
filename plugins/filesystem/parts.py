"""What every part of one drop-folder source shares (name, options, context, folder,
stability tracker, once-per-version log), handed over once instead of six arguments."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import SourceContext

from .folder import DropFolder
from .notes import OnceLog
from .options import FilesystemOptions
from .stability import StabilityTracker


@dataclass(frozen=True)
class Shared:
    """The source-wide objects the parts (backlog, intake, spooler, watch loop) use."""

    name: str
    opts: FilesystemOptions
    context: SourceContext
    folder: DropFolder
    tracker: StabilityTracker
    notes: OnceLog


class Part:
    """Base of the source's parts: the shared objects as attributes."""

    def __init__(self, shared: Shared) -> None:
        self.name = shared.name
        self.opts = shared.opts
        self.context = shared.context
        self.log = shared.context.log
        self.folder = shared.folder
        self.tracker = shared.tracker
        self.notes = shared.notes
