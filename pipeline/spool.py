"""Content-addressed staging of record bytes until they are delivered.

A source's file is read exactly once, while the engine copies it into the spool: the
sha256 is computed during the copy (in chunks, never a whole file in memory), the bytes
go to a temporary file that is fsync'd and atomically renamed to
``<spool>/<sha[:2]>/<sha>``. From then on the record no longer depends on the original
(the source may move or delete it after the ack), and a crash at any point leaves either
no file or a complete one. A file of at most :data:`CHUNK` bytes stays in memory until
it is committed: a record found to be a duplicate as it arrives writes nothing.

The same content spooled twice is stored once. Which records still need a file is the
ledger's knowledge (its ``ledger_blobs`` table); :meth:`Spool.free` removes a file only
when the caller (the engine, holding :attr:`Spool.lock`) found no record left that
references it, and never one committed for a row not inserted yet (pinned). Files are
0600, folders 0700.

Hand-written rather than a library: the few lines of hashing copy, fsync and rename are
the whole job, and the durability order (file, then folder entry, then ledger row) is
what makes the engine crash-safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CHUNK = 1024 * 1024


class SpoolTooLarge(Exception):
    """The input is larger than the configured limit; nothing was kept."""

    def __init__(self, size: int, limit: int, *, exact: bool = True) -> None:
        self.size = size
        self.limit = limit
        at_least = "" if exact else "at least "
        super().__init__(
            f"too large: {at_least}{size} bytes > limit {limit}; "
            "raise [pipeline] max_file_size or split the file"
        )


class SpoolWriteError(Exception):
    """The spool could not store the bytes (disk full, its folder unusable): the
    engine's problem, not the input's -- deliberately not an ``OSError``, which means
    "the input cannot be read" to the engine."""


@dataclass(frozen=True)
class Spooled:
    """A file in the spool."""

    sha256: str
    size: int
    path: Path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """The spool folder (``<state_dir>/spool``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        for d in (root, self.tmp):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(d, 0o700)
        # Held by the engine around "ledger row inserted" and "no reference left +
        # unlink", so a free never races a new reference.
        self.lock = threading.RLock()
        # content committed but not referenced by a ledger row yet: never freed
        self._pins: Counter[str] = Counter()
        self._folders: dict[str, Path] = {}  # path_for's: "ab" -> <root>/ab

    def path_for(self, sha256: str) -> Path:
        # one pathlib join per call rather than two (every record's every file names
        # its path): the folders' paths (two hex digits: at most 256) are kept; a Path
        # never changes, and two threads adding the same folder add equal values
        folder = self._folders.get(sha256[:2])
        if folder is None:
            folder = self._folders[sha256[:2]] = self.root / sha256[:2]
        return folder / sha256

    def holds(self, sha256: str) -> bool:
        """Whether this spool has the file of ``sha256``."""
        return self.path_for(sha256).is_file()

    def store(self, stream: IO[bytes], limit: int, *, expected_size: int | None = None) -> Spooled:
        """Copy ``stream`` into the spool, hashing on the way; at most ``limit`` bytes.

        The caller should hold :attr:`lock` from this call until the referencing ledger
        row is committed (the file may already exist and be about to be freed otherwise);
        the engine instead stages, commits (the file stays pinned) and unpins once its
        row exists, see :meth:`commit`.
        """
        staged = self.stage(stream, limit, expected_size=expected_size)
        spooled = self.commit(staged)
        self.unpin(spooled.sha256)
        return spooled

    def stage(self, stream: IO[bytes], limit: int, *, expected_size: int | None = None) -> Staged:
        """Read and hash ``stream``; :meth:`commit` or :meth:`discard` the result.

        Up to :data:`CHUNK` bytes stay in memory; a larger input goes to a temporary file
        as it is read (fsync'd by :meth:`commit`, not here: staged bytes whose record is
        a duplicate are never committed).
        """
        if expected_size is not None and expected_size > limit:
            raise SpoolTooLarge(expected_size, limit)
        h = hashlib.sha256()
        first = stream.read(CHUNK)  # an OSError here: the input is unreadable
        more = stream.read(CHUNK) if first else b""
        if not more:
            if len(first) > limit:
                raise SpoolTooLarge(len(first), limit, exact=False)
            h.update(first)
            return Staged(None, h.hexdigest(), len(first), first)
        tmp, out = self._new_tmp()
        size = 0
        try:
            with out:
                for chunk in itertools.chain((first, more), iter(lambda: stream.read(CHUNK), b"")):
                    size += len(chunk)
                    if size > limit:
                        raise SpoolTooLarge(size, limit, exact=False)
                    h.update(chunk)
                    self._write(out, chunk)
                self._write(out, b"")  # flush (the fsync is the commit's)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return Staged(tmp, h.hexdigest(), size)

    def _new_tmp(self, prefix: str = "") -> tuple[Path, IO[bytes]]:
        """A new temporary file (0600) in the spool, open for writing."""
        tmp = self.tmp / f"{prefix}{uuid.uuid4().hex}.part"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as e:
            raise SpoolWriteError(f"spool {self.root}: cannot write: {e.strerror or e}") from e
        return tmp, os.fdopen(fd, "wb")

    def _write(self, out: IO[bytes], chunk: bytes, *, sync: bool = False) -> None:
        """Write ``chunk`` (when empty: flush, and fsync with ``sync``); errors are the
        spool's."""
        try:
            if chunk:
                out.write(chunk)
            else:
                out.flush()
                if sync:
                    os.fsync(out.fileno())
        except OSError as e:
            raise SpoolWriteError(f"spool {self.root}: cannot write: {e.strerror or e}") from e

    def _durable_tmp(self, staged: Staged) -> Path:
        """The staged bytes in a temporary file, fsync'd."""
        if staged.path is None:
            tmp, out = self._new_tmp()
            try:
                with out:
                    self._write(out, staged.data or b"")
                    self._write(out, b"", sync=True)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            return tmp
        try:
            fd = os.open(staged.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise SpoolWriteError(f"spool {self.root}: cannot write: {e.strerror or e}") from e
        return staged.path

    def commit(self, staged: Staged) -> Spooled:
        """Move a staged file to its content address (durably); idempotent per content.

        The file is pinned (never freed) until :meth:`unpin`, which the caller calls
        once its ledger row references the file (or it gave up): the folder's fsync runs
        outside :attr:`lock`, so the fsyncs of files spooled at once overlap.

        :raises SpoolWriteError: the bytes cannot be written (disk full...).
        """
        final = self.path_for(staged.sha256)
        tmp: Path | None = None
        if not final.exists():  # else: the same content is spooled already
            tmp = self._durable_tmp(staged)
        with self.lock:
            if final.exists():
                if tmp is not None:
                    tmp.unlink()
            else:
                if tmp is None:  # freed since it was looked at: write it after all
                    tmp = self._durable_tmp(staged)
                if not final.parent.is_dir():  # at most 256 of them; kept once made
                    final.parent.mkdir(exist_ok=True, mode=0o700)
                    _fsync_dir(self.root)
                os.replace(tmp, final)
            self._pins[staged.sha256] += 1
        if staged.path is not None and staged.path != tmp:
            with contextlib.suppress(OSError):
                staged.path.unlink()  # a duplicate of content spooled meanwhile
        try:
            # also when the file was there: its own rename's fsync may still be running
            _fsync_dir(final.parent)
        except BaseException:
            self.unpin(staged.sha256)
            raise
        return Spooled(staged.sha256, staged.size, final)

    def unpin(self, sha256: str) -> None:
        """A committed file is referenced by its ledger row now (or was given up)."""
        with self.lock:
            self._pins[sha256] -= 1
            if self._pins[sha256] <= 0:
                del self._pins[sha256]

    def probe(self, size: int = 64 * 1024) -> None:
        """Write, fsync and remove ``size`` bytes: whether the spool can take a file now.

        :raises SpoolWriteError: it cannot (disk full, folder unusable).
        """
        tmp, out = self._new_tmp("probe-")
        try:
            with out:
                self._write(out, bytes(size))
                self._write(out, b"", sync=True)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def discard(self, staged: Staged) -> None:
        if staged.path is not None:
            with contextlib.suppress(OSError):
                staged.path.unlink()

    def free(self, sha256: str) -> bool:
        """Remove the file of ``sha256`` (the caller checked nothing references it)
        unless it is pinned: a ledger row is about to reference it."""
        with self.lock:
            if self._pins[sha256] > 0:
                return False
        path = self.path_for(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def hashes(self) -> Iterator[str]:
        """Every content hash present in the spool."""
        for sub in self.root.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                for f in sub.iterdir():
                    if len(f.name) == 64:
                        yield f.name

    def clean_tmp(self) -> int:
        """Remove partial copies left by a crash; returns how many."""
        n = 0
        for f in self.tmp.iterdir():
            with contextlib.suppress(OSError):
                f.unlink()
                n += 1
        return n

    def sweep(self, is_referenced: Callable[[str], bool]) -> int:
        """Remove files no ledger row references (a crash between spool and ledger).

        Asks about one file at a time, so a large spool is never mirrored in memory.
        """
        n = 0
        with self.lock:
            for sha in list(self.hashes()):
                if not is_referenced(sha) and self.free(sha):
                    n += 1
        return n

    def usage(self) -> tuple[int, int]:
        """(files, bytes) currently in the spool."""
        files = size = 0
        for sha in self.hashes():
            with contextlib.suppress(OSError):
                size += self.path_for(sha).stat().st_size
                files += 1
        return files, size


@dataclass(frozen=True)
class Staged:
    """Read and hashed, not committed: in a temporary file (``path``), or in memory
    (``data``, at most :data:`CHUNK` bytes)."""

    path: Path | None
    sha256: str
    size: int
    data: bytes | None = None
