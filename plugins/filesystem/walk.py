"""A streaming walk of the drop folder.

``os.walk`` builds a list of every name in a folder before yielding it, which for a
backlog of 100,000 scans in one folder holds them all in memory at once. This walk
keeps only a stack of folder paths; the entries of one folder come from one
``os.scandir`` iterator, lazily, and are yielded as they are read. Folders are never
entered through symlinks (loops, escapes from the root), and excluded folders
(``processed/``, ``failed/``, ignored names) are pruned before they are read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

log = logging.getLogger("itglue_ingest.source.filesystem")


@dataclass(frozen=True)
class Found:
    """A non-directory entry: its absolute path, path relative to the root, and lstat."""

    path: str
    rel: str
    st: os.stat_result


def walk(
    root: str,
    *,
    recursive: bool,
    prune: Callable[[str, str], bool],
    start: str | None = None,
) -> Iterator[Found]:
    """Every non-directory entry under ``start`` (default ``root``), streamed.

    :param prune: ``prune(abs_path, rel)`` True means "do not enter this folder".
    Unreadable folders are logged and skipped; the walk goes on.
    """
    stack = [start or root]
    root_prefix = root.rstrip(os.sep) + os.sep
    while stack:
        folder = stack.pop()
        try:
            it = os.scandir(folder)
        except FileNotFoundError:
            continue
        except OSError as e:
            log.warning("cannot list folder %s: %s; skipped", folder, e.strerror or e)
            continue
        with it:
            for entry in it:
                path = entry.path
                rel = path[len(root_prefix) :] if path.startswith(root_prefix) else entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if recursive and not prune(path, rel):
                            stack.append(path)
                        continue
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone between listing and stat
                except OSError as e:
                    log.warning("cannot stat %s: %s; skipped", path, e.strerror or e)
                    continue
                yield Found(path, rel.replace(os.sep, "/"), st)
