"""This collector's claims: its claim folder, and a file claimed before it is read.

Collectors sharing one drop folder each rename a file into their own claim folder before
taking it, so only one takes it. Claiming needs every outcome to move the file away: a
file kept in place would be claimed again (a new ctime, a new version) for ever.
"""

from __future__ import annotations

import errno
import logging
import os
import threading

from pipeline import SourceContext

from .aftercare import Aftercare
from .claims import Claims, new_collector_id, valid_collector_id
from .notes import OnceLog
from .options import FilesystemOptions
from .stability import StabilityTracker

_COLLECTOR = "collector"  # checkpoint: this collector's claim folder name


class Collector:
    """The claim folder (made on first use) and claiming; nothing when files are taken
    in place (``claiming`` False)."""

    def __init__(
        self,
        name: str,
        options: FilesystemOptions,
        root: str,
        context: SourceContext,
        aftercare: Aftercare,
        tracker: StabilityTracker,
        notes: OnceLog,
    ) -> None:
        self.name = name
        self.root = root
        self.context = context
        self.log = context.log
        self.aftercare = aftercare
        self.tracker = tracker
        self.notes = notes
        # a dry run takes files in place: nothing in the drop folder may change
        claims = options.after != "keep" and options.on_failure == "move"
        self.claiming = claims and not context.dry_run
        self._claims: Claims | None = None
        self._lock = threading.Lock()

    def claims(self) -> Claims | None:
        """This collector's claim folder (None when files are taken in place). Its name
        is kept in the ledger, so it is stable across restarts and unique per state."""
        if not self.claiming:
            return None
        with self._lock:
            if self._claims is None:
                collector = self.context.get_checkpoint(_COLLECTOR)
                if collector is None or not valid_collector_id(collector):
                    collector = new_collector_id()
                    self.context.set_checkpoint(_COLLECTOR, collector)
                self._claims = Claims(self.root, collector)
                self.aftercare.claims = self._claims
                self.log.info(
                    "collector %s: files are claimed into %s before they are taken",
                    collector,
                    self._claims.base,
                    extra={"source": self.name},
                )
            return self._claims

    def tidy_claims(self) -> None:
        """Remove the folders of the claim folder left empty (claims reuse their
        sub-folders, so nothing removes them per file); for a quiet moment: a scan
        finished, the source closes. Nothing when no claim was made by this process."""
        claims = self._claims
        if claims is not None:
            claims.tidy_empty()

    def owned(self, path: str) -> tuple[str, str] | None:
        """``(rel, version)`` when ``path`` is in this collector's claim folder."""
        claims = self.claims()
        return claims.owned(path) if claims is not None else None

    def claim(
        self,
        path: str,
        rel: str,
        ref: str,
        st: os.stat_result,
        version: str,
        *,
        is_link: bool | None = None,
    ) -> str | None:
        """The path to read the file from: its claim (None: another collector has it).

        ``is_link``: whether ``path`` is a symbolic link, when the caller knows from
        the walk's ``lstat`` (``st`` is the target's for a followed link); None: looked at.
        """
        claims = self.claims()
        if claims is None or st.st_size == 0 or claims.owned(path) is not None:
            return path  # empty files are left in place (see Spooler.emit); claimed already
        if os.path.islink(path) if is_link is None else is_link:
            return path  # a relative link would point elsewhere from the claim folder
        try:
            claimed = claims.claim(path, rel, version)
        except OSError as e:
            note = self.notes.note
            if e.errno == errno.EXDEV:  # another file system mounted below the drop folder
                note(ref, version, logging.WARNING, "cannot claim %s (%s); taken in place", rel, e)
                return path
            # still open on an SMB client (sharing mode), no permission: not now
            note(ref, version, logging.WARNING, "cannot claim %s (%s); trying again later", rel, e)
            self.tracker.touch(path)
            return None
        if claimed is None:
            self.log.debug("%s was claimed by another collector (or is gone); left", rel)
        return claimed
