"""Claiming a file before taking it, so that any number of collectors can share a folder.

Two hosts (each with its own state) watching one SMB or NFS share would both take every
file. Before a file is read it is renamed into this collector's claim folder,
``<drop>/.claimed/<collector>/<version>/<relative path>``: a rename is atomic on local
file systems, NFS and SMB, so of two collectors renaming the same file one wins and the
other gets ``ENOENT`` and leaves it. The version folder keeps the version the file was
found with (the rename changes its ctime) and lets two versions of one name be in flight
at once. After a crash a collector resumes the files in its own claim folder; another
collector's claims are never touched (:func:`release_claims` hands back the files of a
collector that is gone for good).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from .placement import move_no_clobber
from .versions import base_version, parse
from .walk import Found, walk

CLAIM_DIR = ".claimed"  # a dot folder: the walk, the observers and the filter skip it


def new_collector_id() -> str:
    """``<host>-<random>``: readable for an admin, unique per state (also on one host)."""
    host = re.sub(r"[^A-Za-z0-9_-]+", "_", socket.gethostname().split(".")[0])[:40]
    return f"{host or 'collector'}-{secrets.token_hex(4)}"


def valid_collector_id(collector: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}", collector) is not None


class Claims:
    """The claim folder of one collector in one drop folder."""

    def __init__(self, root: str, collector: str) -> None:
        if not valid_collector_id(collector):
            raise ValueError(f"not a collector id: {collector!r}")
        self.root = root
        self.collector = collector
        self.base = os.path.join(root, CLAIM_DIR, collector)
        self._lock = threading.Lock()  # claim and tidy: a folder is not removed under a claim

    def path_of(self, rel: str, version: str) -> str:
        """Where the file ``rel`` taken at ``version`` is while it is claimed."""
        return os.path.join(self.base, base_version(version), rel.replace("/", os.sep))

    def owned(self, path: str) -> tuple[str, str] | None:
        """``(rel, version)`` of a file in this collector's claim folder, else None."""
        prefix = self.base + os.sep
        if not path.startswith(prefix):
            return None
        version, _, rel = path[len(prefix) :].partition(os.sep)
        if not rel or parse(version) is None:
            return None
        return rel.replace(os.sep, "/"), version

    def claim(self, path: str, rel: str, version: str) -> str | None:
        """Rename ``path`` into the claim folder; its new path, or None when another
        collector took it first (or it vanished, or this very version is claimed).

        :raises OSError: the rename is not possible (now): ``EXDEV`` (another file
            system below the drop folder), the file still open on an SMB client, no
            permission.
        """
        target = self.path_of(rel, version)
        with self._lock:
            if not self._made_new(base_version(version), rel) and os.path.lexists(target):
                return None
            try:
                os.rename(path, target)
            except FileNotFoundError:
                return None
        return target

    def _made_new(self, version: str, rel: str) -> bool:
        """Make the folders of a claim; True when its version folder is new (so nothing
        can be claimed in it yet). Two ``mkdir`` in the common case, where ``makedirs``
        would look at every parent first (a backlog claims thousands a second)."""
        folder = os.path.join(self.base, version)
        parts = rel.split("/")[:-1]
        try:
            os.mkdir(folder)
        except FileExistsError:
            os.makedirs(os.path.join(folder, *parts), exist_ok=True)
            return False
        except FileNotFoundError:  # the collector's own folder (first claim, or removed)
            os.makedirs(os.path.join(folder, *parts), exist_ok=True)
            return True
        if parts:
            os.makedirs(os.path.join(folder, *parts))
        return True

    def files(self) -> Iterator[Found]:
        """The files claimed by this collector (streamed), to resume after a restart."""
        yield from walk(self.base, recursive=True, prune=lambda _path, _rel: False)

    def tidy(self, path: str) -> None:
        """Remove the folders a finished claim left empty (the collector's folder stays)."""
        with self._lock:
            folder = os.path.dirname(path)
            while folder.startswith(self.base + os.sep):
                try:
                    os.rmdir(folder)
                except OSError:  # not empty (or gone): its other files are in flight
                    return
                folder = os.path.dirname(folder)


def release_claims(root: str | Path, collector: str) -> list[Path]:
    """Move the files claimed by ``collector`` back into the drop folder (to the same
    sub-folder, numbered when the name is taken meanwhile), for any collector to take.

    Only for a collector that no longer runs (its host retired, its state lost): a
    running one would find its claimed files gone.
    """
    claims = Claims(os.path.abspath(os.fspath(root)), collector)
    moved: list[Path] = []
    for found in list(claims.files()):
        owned = claims.owned(found.path)
        if owned is None:
            continue
        rel = owned[0]
        parent, _, name = rel.rpartition("/")
        target_dir = Path(claims.root, *parent.split("/")) if parent else Path(claims.root)
        try:
            moved.append(move_no_clobber(found.path, target_dir, name))
        except FileNotFoundError:
            continue
        claims.tidy(found.path)
    return moved


def claimed_counts(root: str | Path) -> dict[str, int]:
    """How many files each collector has claimed in the drop folder ``root``."""
    counts: dict[str, int] = {}
    claim_dir = os.path.join(os.path.abspath(os.fspath(root)), CLAIM_DIR)
    try:
        collectors = sorted(e.name for e in os.scandir(claim_dir) if e.is_dir())
    except FileNotFoundError:
        return counts
    for collector in collectors:
        if valid_collector_id(collector):
            counts[collector] = sum(
                1 for _ in Claims(os.path.dirname(claim_dir), collector).files()
            )
    return counts
