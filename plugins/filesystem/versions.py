"""A drop-folder file's version: what must change whenever its content can have changed.

Size and mtime alone are not enough: ``cp -p`` or ``rsync -t`` of a same-size file
carries the mtime over, so a replaced file looked unchanged. The version also holds
the inode (a file renamed over another is a new inode) and the ctime, which every
write, rename and ``utime`` updates and which no tool can set (``touch -r`` cannot).
A ``chmod`` or ``touch`` thus makes a new version too; the engine's content dedupe then
finds it a duplicate without uploading anything.

Ledgers written before the inode and ctime were added hold ``<size>-<mtime_ns>``
versions; :func:`matches` and :func:`legacy_version_of` keep those usable.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass


@dataclass(frozen=True)
class Version:
    size: int
    mtime_ns: int
    ino: int | None = None  # None: a version from before inode and ctime were kept
    ctime_ns: int | None = None


def version_of(st: os.stat_result) -> str:
    """``<size>-<mtime_ns>-<inode>-<ctime_ns>``."""
    return f"{st.st_size}-{st.st_mtime_ns}-{st.st_ino}-{st.st_ctime_ns}"


def legacy_version_of(st: os.stat_result) -> str:
    """The version earlier releases recorded for this file (``<size>-<mtime_ns>``)."""
    return f"{st.st_size}-{st.st_mtime_ns}"


def base_version(version: str) -> str:
    """A version without its ``#n`` suffix (a file taken again, see the source)."""
    return version.split("#", 1)[0]


def parse(version: str) -> Version | None:
    """The fields of a version string (None when it is none of ours)."""
    try:
        fields = [int(x) for x in base_version(version).split("-")]
    except ValueError:
        return None
    if len(fields) == 2:
        return Version(fields[0], fields[1])
    if len(fields) == 4:
        return Version(*fields)
    return None


def matches(version: str, st: os.stat_result, *, renamed: bool = False) -> bool:
    """Whether the file ``st`` describes can still be the one ``version`` was taken from.

    ``renamed``: the file was moved since (claimed, or put in ``failed/``); a rename
    changes the ctime, and a copy to another file system the inode, so only size and
    mtime are compared then (the content hash decides).
    """
    v = parse(version)
    if v is None or (v.size, v.mtime_ns) != (st.st_size, st.st_mtime_ns):
        return False
    if renamed or v.ino is None:
        return True
    return (v.ino, v.ctime_ns) == (st.st_ino, st.st_ctime_ns)


def sha256_of(path: str) -> str | None:
    """The sha256 of a regular file's content (hex, as the spool computes it); None
    when ``path`` is something else now (a FIFO would block a plain ``open``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        os.set_blocking(fd, True)
        h = hashlib.sha256()
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
    return h.hexdigest()
