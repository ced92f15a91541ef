"""The drop folder's geometry: where it is, and which paths below it are candidates.

``processed/`` and ``failed/`` are never sources, also when they were configured through
another path to the same place (a symlink): re-ingesting processed/ would move files
round in circles.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from .names import PathFilter
from .options import FilesystemOptions
from .walk import Found, walk


class DropFolder:
    """Paths as the walk and the observer spell them (below ``root``, not resolved)."""

    def __init__(self, options: FilesystemOptions) -> None:
        self.root: str = os.path.abspath(os.fspath(options.path))
        self.recursive = options.recursive
        self.filter = PathFilter(options.include, options.exclude)
        self._hidden_dirs = self._excluded_dirs(options)

    def _excluded_dirs(self, options: FilesystemOptions) -> set[str]:
        """processed/ and failed/, as configured and as reached through ``root``."""
        dirs: set[str] = set()
        real_root = os.path.realpath(self.root)
        for d in (options.processed, options.failed):
            dirs.add(os.path.abspath(os.fspath(d)))
            real = os.path.realpath(d)
            if real == real_root or real.startswith(real_root + os.sep):
                dirs.add(
                    os.path.normpath(os.path.join(self.root, os.path.relpath(real, real_root)))
                )
        return dirs

    def available(self) -> bool:
        """Whether the folder is there (a share may be unmounted)."""
        try:
            st = os.stat(self.root)
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode)

    def rel(self, path: str) -> str | None:
        """``path`` relative to the folder, with ``/``; None when it is not below it."""
        prefix = self.root.rstrip(os.sep) + os.sep
        if not path.startswith(prefix):
            return None
        return path[len(prefix) :].replace(os.sep, "/")

    def hidden(self, path: str) -> bool:
        """processed/ and failed/ (and anything below them) are never sources."""
        return any(path == d or path.startswith(d + os.sep) for d in self._hidden_dirs)

    def holds_real(self, real: str) -> bool:
        """Whether a resolved path (a link's target, an open file) lies in the folder."""
        root = os.path.realpath(self.root).rstrip(os.sep) + os.sep
        return real.startswith(root) and not self.hidden(real)

    def holds_fd(self, fd: int) -> bool:
        """Whether an opened descriptor's real path lies inside the drop folder (Linux)."""
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return True  # no /proc: the realpath check before opening stands
        return self.holds_real(real)

    def wanted(self, path: str) -> bool:
        """Whether a file at ``path`` is a candidate (recursion, include/exclude)."""
        rel = self.rel(path)
        if rel is None or self.hidden(path):
            return False
        if not self.recursive and "/" in rel:
            return False
        return self.filter.accepts_file(rel)

    def wanted_folder(self, folder: str) -> bool:
        """Whether a new folder is walked (and watched): recursive, nothing excludes it."""
        rel = self.rel(folder)
        if rel is None or self.hidden(folder) or not self.recursive:
            return False
        parts = rel.split("/")
        return not any(self.filter.skip_dir("/".join(parts[: i + 1])) for i in range(len(parts)))

    def never_watch(self, path: str) -> bool:
        """Folders the observer leaves out: processed/, failed/, ignored or excluded."""
        if self.hidden(path):
            return True
        rel = self.rel(path)
        return rel is not None and self.filter.skip_dir(rel)

    def files(self, start: str | None = None) -> Iterator[Found]:
        """The candidate files, streamed (the whole folder, or the folder ``start``)."""
        for found in walk(self.root, recursive=self.recursive, prune=self._prune, start=start):
            if self.hidden(found.path):
                continue
            if not self.recursive and "/" in found.rel:
                continue
            if not self.filter.accepts_file(found.rel):
                continue
            yield found

    def _prune(self, path: str, rel: str) -> bool:
        return self.hidden(path) or self.filter.skip_dir(rel)
