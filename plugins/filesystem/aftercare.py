"""What happens to a file once its record is settled: ``ack`` and ``nack`` of the
drop-folder source.

Delivered (or a duplicate): moved to ``processed/YYYY/MM/DD/<sub-folders>/`` (never
overwriting: :func:`.placement.move_no_clobber`), deleted, or kept. Failed for good:
moved to ``failed/<sub-folders>/`` with ``<name>.error.txt`` saying why and what to do,
or kept. Both are idempotent (the engine repeats them after a crash) and act only on
the very file the record was made from: its version must still match and its content
hash must be the one delivered, so a file replaced while its record was in flight is
left to be taken as the new version it is, never moved or deleted unread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from typing import Literal

from pipeline import DocumentRecord

from .claims import Claims
from .names import decode_ref, display_name, display_path
from .options import FilesystemOptions
from .placement import DatedFolder, error_text, move_aside, move_no_clobber, write_exclusive
from .versions import base_version, matches, sha256_of

Check = Literal["same", "gone", "changed"]


class Aftercare:
    """The post-actions of one drop folder (called from the engine's worker threads)."""

    def __init__(
        self, source: str, opts: FilesystemOptions, root: str, log: logging.Logger
    ) -> None:
        self.source = source
        self.opts = opts
        self.root = root
        self.log = log
        self._lock = threading.Lock()
        self._processed = DatedFolder(opts.processed)
        self.claims: Claims | None = None  # set by the source once it claims files

    def _locate(self, record: DocumentRecord) -> tuple[str, bool, os.stat_result | None]:
        """Where the record's file is: its claim (where this release claims, else where
        an earlier one did: a claim resumed after an upgrade), else the drop folder (a
        record taken in place, or one of an earlier release). True when it is the claim;
        the path's ``lstat`` (None: nothing there)."""
        claims = self.claims
        if claims is not None:
            rel = decode_ref(record.source_ref)
            claimed = claims.path_of(rel, record.version)
            st = _lstat(claimed)
            if st is not None:
                return claimed, True, st
            legacy = claims.legacy_path_of(rel, record.version)
            if legacy != claimed:
                st = _lstat(legacy)
                if st is not None:
                    return legacy, True, st
        path = self.path_of(record.source_ref)
        return path, False, _lstat(path)

    def _tidy(self, path: str, claimed: bool) -> None:
        if claimed and self.claims is not None:
            self.claims.tidy(path)

    def path_of(self, ref: str) -> str:
        """The drop-folder path a record reference names."""
        return os.path.join(self.root, decode_ref(ref).replace("/", os.sep))

    def _check(
        self,
        path: str,
        st: os.stat_result | None,
        record: DocumentRecord,
        *,
        renamed: bool,
        what: str,
    ) -> Check:
        """Whether ``path`` (``st``: its ``lstat``) is still the file ``record`` was made
        from."""
        if st is None:
            return "gone"  # already moved or deleted: nothing to do (idempotent)
        if stat.S_ISLNK(st.st_mode) and self.opts.follow_symlinks:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return "gone"
        same = matches(record.version, st, renamed=renamed)
        hashes = {b.sha256 for b in record.files}
        if same and hashes:  # what was delivered, byte for byte (also within one tick)
            try:
                same = sha256_of(path) in hashes
            except FileNotFoundError:
                return "gone"
        if same:
            return "same"
        self.log.info(
            "%s changed since it was taken (%s); left for its new version instead of being %s",
            path,
            base_version(record.version),
            what,
            extra={"source": self.source, "source_ref": record.source_ref},
        )
        return "changed"

    def delivered(
        self, record: DocumentRecord, outcome: Literal["delivered", "duplicate"]
    ) -> str | None:
        """Move to ``processed/``, delete, or keep.

        A record that failed, was put in ``failed/`` and then delivered after
        ``itglue-ingest retry`` (from the engine's spooled copy) has its file in
        ``failed/``: that file is the one moved (or deleted), and its ``.error.txt`` goes.

        Returns the path of a file left in place because it changed (to be looked at
        again), else None.
        """
        if self.opts.after == "keep":
            return None
        rel = decode_ref(record.source_ref)
        note: str | None = None
        path, renamed, st = self._locate(record)
        claimed = renamed
        if st is None and self.opts.on_failure == "move":
            aside = os.path.join(os.fspath(self.opts.failed), rel.replace("/", os.sep))
            aside_st = _lstat(aside)
            if aside_st is not None:
                path, st, note, renamed = aside, aside_st, aside + ".error.txt", True
        # outside the lock: hashing a large file must not hold up other post-actions
        check = self._check(path, st, record, renamed=renamed, what="moved")
        if check != "same":
            return path if check == "changed" and note is None else None
        with self._lock:
            if self.opts.after == "delete":
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                self._tidy(path, claimed)
                self.log.info("deleted %s (%s)", rel, outcome, extra={"source": self.source})
            else:
                parent, _, name = rel.rpartition("/")
                target_dir = self._processed.today()
                if parent:
                    target_dir = os.path.join(target_dir, parent.replace("/", os.sep))
                # a claimed file is replaced by nobody: its lstat is still true
                with contextlib.suppress(FileNotFoundError):
                    moved = move_aside(path, target_dir, name, st if claimed else None)
                    self._tidy(path, claimed)
                    self.log.info(
                        "moved %s to %s (%s)", rel, moved, outcome, extra={"source": self.source}
                    )
            if note is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(note)
        return None

    def failed(self, record: DocumentRecord, reason: str) -> str | None:
        """Move to ``failed/`` with ``<name>.error.txt``, or keep. Returns the path of a
        file left in place because it changed, else None."""
        rel = decode_ref(record.source_ref)
        if self.opts.on_failure == "keep":
            self.log.warning(
                "failed %s: %s (left in place)", rel, reason, extra={"source": self.source}
            )
            return None
        path, claimed, st = self._locate(record)
        check = self._check(path, st, record, renamed=claimed, what="moved to failed/")
        if check != "same":
            return path if check == "changed" else None
        with self._lock:
            parent, _, name = rel.rpartition("/")
            target_dir = self.opts.failed
            if parent:
                target_dir = target_dir.joinpath(*parent.split("/"))
            try:
                moved = move_no_clobber(path, target_dir, name)
            except FileNotFoundError:
                return None
            self._tidy(path, claimed)
            note = error_text(
                source=self.source,
                rel=display_name(rel),
                folder=display_path(self.root),
                reason=reason,
                retry_hint=(
                    "  3. Or, if the file itself was fine (the organization was missing, IT\n"
                    "     Glue refused it for a while): itglue-ingest retry -c <config> "
                    f"--source {self.source}\n"
                    "     delivers the copy itglue-ingest kept and moves this file on to\n"
                    "     processed/. All failures: itglue-ingest status -c <config>"
                ),
            )
            err = write_exclusive(moved.with_name(moved.name + ".error.txt"), note)
            self.log.warning(
                "failed %s: %s; moved to %s (see %s)",
                rel,
                reason,
                moved,
                err.name,
                extra={"source": self.source},
            )
        return None


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
