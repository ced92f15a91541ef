"""What happens to a file once its record is settled: ``ack`` and ``nack`` of the
drop-folder source.

Delivered (or a duplicate): moved to ``processed/YYYY/MM/DD/<sub-folders>/`` (never
overwriting: :func:`.placement.move_no_clobber`), deleted, or kept. Failed for good:
moved to ``failed/<sub-folders>/`` with ``<name>.error.txt`` saying why and what to do,
or kept. Both are idempotent (the engine repeats them after a crash) and act only on
the very version of the file the record was made from: a newer file of the same name
is never moved or deleted by an older record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from typing import Literal

from .names import decode_ref, display_name, display_path
from .options import FilesystemOptions
from .placement import dated_dir, error_text, move_no_clobber, write_exclusive


def base_version(version: str) -> str:
    """``<size>-<mtime_ns>`` of a version (without a ``#n`` retry suffix)."""
    return version.split("#", 1)[0]


def version_of(st: os.stat_result) -> str:
    """A file's version: changes whenever its content can have changed."""
    return f"{st.st_size}-{st.st_mtime_ns}"


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

    def path_of(self, ref: str) -> str:
        """The drop-folder path a record reference names."""
        return os.path.join(self.root, decode_ref(ref).replace("/", os.sep))

    def _current_version(self, path: str) -> str | None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode) and self.opts.follow_symlinks:
            with contextlib.suppress(OSError):
                st = os.stat(path)
        return version_of(st)

    def _matches(self, path: str, version: str, what: str) -> bool:
        current = self._current_version(path)
        if current is None:
            return False  # already moved or deleted: nothing to do (idempotent)
        if current != base_version(version):
            self.log.info(
                "%s changed since it was taken (%s -> %s); left for its new version "
                "instead of being %s",
                path,
                base_version(version),
                current,
                what,
                extra={"source": self.source},
            )
            return False
        return True

    def delivered(self, ref: str, version: str, outcome: Literal["delivered", "duplicate"]) -> None:
        """Move to ``processed/``, delete, or keep.

        A record that failed, was put in ``failed/`` and then delivered after
        ``itglue-ingest retry`` (from the engine's spooled copy) has its file in
        ``failed/``: that file is the one moved (or deleted), and its ``.error.txt`` goes.
        """
        if self.opts.after == "keep":
            return
        path = self.path_of(ref)
        rel = decode_ref(ref)
        note: str | None = None
        with self._lock:
            if not os.path.lexists(path) and self.opts.on_failure == "move":
                aside = os.path.join(os.fspath(self.opts.failed), rel.replace("/", os.sep))
                if os.path.lexists(aside):
                    path, note = aside, aside + ".error.txt"
            if not self._matches(path, version, "moved"):
                return
            if self.opts.after == "delete":
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                self.log.info("deleted %s (%s)", rel, outcome, extra={"source": self.source})
            else:
                parent, _, name = rel.rpartition("/")
                target_dir = dated_dir(self.opts.processed)
                if parent:
                    target_dir = target_dir.joinpath(*parent.split("/"))
                with contextlib.suppress(FileNotFoundError):
                    moved = move_no_clobber(path, target_dir, name)
                    self.log.info(
                        "moved %s to %s (%s)", rel, moved, outcome, extra={"source": self.source}
                    )
            if note is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(note)

    def failed(self, ref: str, version: str, reason: str) -> None:
        """Move to ``failed/`` with ``<name>.error.txt``, or keep."""
        rel = decode_ref(ref)
        if self.opts.on_failure == "keep":
            self.log.warning(
                "failed %s: %s (left in place)", rel, reason, extra={"source": self.source}
            )
            return
        path = self.path_of(ref)
        with self._lock:
            if not self._matches(path, version, "moved to failed/"):
                return
            parent, _, name = rel.rpartition("/")
            target_dir = self.opts.failed
            if parent:
                target_dir = target_dir.joinpath(*parent.split("/"))
            try:
                moved = move_no_clobber(path, target_dir, name)
            except FileNotFoundError:
                return
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
