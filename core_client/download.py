"""Streamed downloads into a path or a file object, hashed and size-checked on the way.

A path is written to a hidden ``.<name>.<random>.part`` file beside it and renamed into
place only once complete and checked, so a crash never leaves half a file under the
final name (a later run removes the leftovers: :data:`PART_SUFFIX`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .exceptions import DownloadError

PART_SUFFIX = ".part"
DownloadTarget = str | os.PathLike[str] | IO[bytes]


@dataclass(frozen=True)
class Downloaded:
    """What a download wrote: its size, its sha256 (hex) and the path (for a path)."""

    size: int
    sha256: str
    path: Path | None = None


class _HashingWriter:
    """Writes through to ``out``, counting and hashing; ``restart`` begins again."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.seekable = _seekable(out)
        self.start = out.tell() if self.seekable else 0
        self.size = 0
        self.digest = hashlib.sha256()

    def restart(self) -> IO[bytes]:
        if self.size:
            if not self.seekable:
                raise DownloadError(
                    "the download was cut short and the target file object cannot start over"
                )
            self.out.seek(self.start)
            self.out.truncate()
        self.size = 0
        self.digest = hashlib.sha256()
        return self  # type: ignore[return-value]  # duck-typed: only write() is used

    def write(self, chunk: bytes) -> int:
        self.out.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)
        return len(chunk)


def download_into(
    target: DownloadTarget,
    fetch: Callable[[Callable[[], IO[bytes]]], None],
    *,
    expected_size: int | None,
    what: str,
) -> Downloaded:
    """Run ``fetch(sink)`` (which streams the body into ``sink()``, once per attempt)
    into ``target``; raise :class:`DownloadError` when the size is not ``expected_size``."""
    if not isinstance(target, str | os.PathLike):
        writer = _HashingWriter(target)
        fetch(writer.restart)
        _check_size(writer.size, expected_size, what)
        return Downloaded(writer.size, writer.digest.hexdigest())
    dest = Path(target)
    fd, part = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name[:100]}.", suffix=PART_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer = _HashingWriter(fh)
            fetch(writer.restart)
            _check_size(writer.size, expected_size, what)
            fh.flush()
            os.fsync(fh.fileno())  # the bytes are on disk before the name points at them
        os.replace(part, dest)
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise
    return Downloaded(writer.size, writer.digest.hexdigest(), dest)


def _check_size(size: int, expected: int | None, what: str) -> None:
    if expected is not None and size != expected:
        raise DownloadError(f"{what}: got {size} bytes, the attachment has {expected}")


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError, OSError):
        return False


__all__ = ["PART_SUFFIX", "DownloadTarget", "Downloaded", "download_into"]
