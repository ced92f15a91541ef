"""Claiming a file before taking it, so that any number of collectors can share a folder.

Two hosts (each with its own state) watching one SMB or NFS share would both take every
file. Before a file is read it is renamed into this collector's claim folder,
``<drop>/.claimed/<collector>/<sub-folders>/<version>~<name>``: a rename is atomic on
local file systems, NFS and SMB, so of two collectors renaming the same file one wins and
the other gets ``ENOENT`` and leaves it. The version in the name keeps the version the
file was found with (the rename changes its ctime) and lets two versions of one name be
in flight at once; the sub-folders are made once and reused, so a claim is one rename.
After a crash a collector resumes the files in its own claim folder; another collector's
claims are never touched (:func:`release_claims` hands back the files of a collector
that is gone for good).

Earlier releases claimed into ``<collector>/<version>/<sub-folders>/<name>`` (a folder
per file); such claims are still resumed, and that layout is still used for a name too
long to carry its version, and for a file whose top sub-folder is named like a version
(so that a path always reads one way, see :meth:`Claims.owned`).
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
from .versions import base_version
from .walk import Found, walk

CLAIM_DIR = ".claimed"  # a dot folder: the walk, the observers and the filter skip it
NAME_MAX = 255  # bytes in one file name (ext4, XFS, btrfs, NFS, SMB)
# a claim's version: always the four fields of versions.version_of (never a legacy
# two-field one, which a sub-folder such as "2024-06" could be named like)
_VERSION = re.compile(r"\d+-\d+-\d+-\d+")
_CLAIMED_NAME = re.compile(r"(\d+-\d+-\d+-\d+)~(.+)", re.DOTALL)


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
        self._prefix = self.base + os.sep
        self._lock = threading.Lock()  # claim and tidy: a folder is not removed under a claim

    def path_of(self, rel: str, version: str) -> str:
        """Where the file ``rel`` taken at ``version`` is while it is claimed."""
        return self._where(rel, version)[0]

    def _where(self, rel: str, version: str) -> tuple[str, bool]:
        """:meth:`path_of`, and whether that is the earlier layout (called for every
        file, twice: plain string work, the name encoded only when it may be long)."""
        if "#" in version:
            version = base_version(version)
        parent, _, name = rel.rpartition("/")
        claimed = f"{version}~{name}"
        # 4 bytes at most per character: only a long name can pass the limit
        too_long = len(claimed) > NAME_MAX // 4 and len(os.fsencode(claimed)) > NAME_MAX
        if not parent:
            if too_long:
                return self.legacy_path_of(rel, version), True
            return self._prefix + claimed, False
        top = rel.partition("/")[0]
        if too_long or (top[:1].isdigit() and _VERSION.fullmatch(top)):
            return self.legacy_path_of(rel, version), True
        return self._prefix + parent.replace("/", os.sep) + os.sep + claimed, False

    def legacy_path_of(self, rel: str, version: str) -> str:
        """Where an earlier release claimed it (``<version>/<rel>``, a folder per file)."""
        return os.path.join(self.base, base_version(version), rel.replace("/", os.sep))

    def owned(self, path: str) -> tuple[str, str] | None:
        """``(rel, version)`` of a file in this collector's claim folder, else None.

        A path reads one way only: its first part a version means the earlier layout
        (:meth:`path_of` never puts a file of the new one below such a folder), else
        its name ``<version>~<name>`` the new one.
        """
        if not path.startswith(self._prefix):
            return None
        inner = path[len(self._prefix) :]
        first, sep, rest = inner.partition(os.sep)
        if sep and rest and _VERSION.fullmatch(first):
            return rest.replace(os.sep, "/"), first
        parent, sep, last = inner.rpartition(os.sep)
        m = _CLAIMED_NAME.fullmatch(last)
        if m is None:
            return None
        rel = f"{parent}{sep}{m[2]}"
        return rel.replace(os.sep, "/"), m[1]

    def claim(self, path: str, rel: str, version: str) -> str | None:
        """Rename ``path`` into the claim folder; its new path, or None when another
        collector took it first (or it vanished, or this very version is claimed).

        :raises OSError: the rename is not possible (now): ``EXDEV`` (another file
            system below the drop folder), the file still open on an SMB client, no
            permission.
        """
        target, legacy = self._where(rel, version)
        with self._lock:
            # a folder per file: one already there may hold this very version
            made_new = legacy and self._made_new(base_version(version), rel)
            if legacy and not made_new and os.path.lexists(target):
                return None
            # the new layout needs no such look: the name holds the inode and ctime,
            # and a rename or link changes the ctime, so no other claim has this name
            try:
                os.rename(path, target)
            except FileNotFoundError:
                # the source is gone (another collector won), or the sub-folder is
                # missing (first claim below it, or tidied since): made, then once again
                if legacy or not os.path.lexists(path) or not self._made_parent(target):
                    return None
                try:
                    os.rename(path, target)
                except FileNotFoundError:
                    return None
        return target

    def _made_parent(self, target: str) -> bool:
        """Make the folder ``target`` goes into; False when it was there already."""
        try:
            os.makedirs(os.path.dirname(target))
        except FileExistsError:
            return False
        return True

    def _made_new(self, version: str, rel: str) -> bool:
        """Make the folders of an earlier-layout claim; True when its version folder is
        new (so nothing can be claimed in it yet)."""
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

    def _is_legacy(self, path: str) -> bool:
        first, sep, rest = path[len(self._prefix) :].partition(os.sep)
        return bool(sep and rest and _VERSION.fullmatch(first))

    def files(self) -> Iterator[Found]:
        """The files claimed by this collector (streamed), to resume after a restart."""
        yield from walk(self.base, recursive=True, prune=lambda _path, _rel: False)

    def tidy(self, path: str) -> None:
        """Remove the folders a finished earlier-layout claim left empty (its version
        folder). Nothing for the new layout: its sub-folders are reused, and those left
        empty go at a quiet moment (:meth:`tidy_empty`)."""
        if not path.startswith(self._prefix) or not self._is_legacy(path):
            return
        with self._lock:
            folder = os.path.dirname(path)
            while folder.startswith(self._prefix):
                try:
                    os.rmdir(folder)
                except OSError:  # not empty (or gone): its other files are in flight
                    return
                folder = os.path.dirname(folder)

    def tidy_empty(self) -> int:
        """Remove the empty folders below the claim folder (bottom up; the collector's
        own folder stays); how many. For a quiet moment, such as the end of a scan. The
        walk does not hold up claims; each ``rmdir`` waits for the one in progress (a
        claim makes its folder again if it was removed just before)."""
        folders: list[str] = []  # with no file in them: children after their parents
        stack = [self.base]
        while stack:
            folder = stack.pop()
            has_file = False
            try:
                with os.scandir(folder) as it:
                    for entry in it:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            has_file = True
            except OSError:  # gone, or not readable: left alone
                continue
            if not has_file and folder != self.base:
                folders.append(folder)
        removed = 0
        for folder in reversed(folders):
            with self._lock:
                try:
                    os.rmdir(folder)
                except OSError:  # a sub-folder stayed (it holds files), or a claim came
                    continue
            removed += 1
        return removed


def release_claims(root: str | Path, collector: str) -> list[Path]:
    """Move the files claimed by ``collector`` back into the drop folder (to the same
    sub-folder and name, numbered when the name is taken meanwhile), for any collector
    to take.

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
    claims.tidy_empty()
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
