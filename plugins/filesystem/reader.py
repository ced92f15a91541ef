"""Opening a file from a drop folder safely, and noticing when it changes under the reader.

``open(path)`` is not safe on a folder other people write to: a FIFO blocks the reader
forever, a symlink swapped in after the check points anywhere, and a file that is still
being appended to is read torn. :func:`open_checked` opens with ``O_NOFOLLOW |
O_NONBLOCK`` (a FIFO or device opens without blocking and is then refused as "not a
regular file"), checks the open descriptor is the very file that was found stable
(same inode, size, mtime), and :class:`CheckedReader` re-checks at end of file, so a
file that changed while the engine spooled it raises :class:`ChangedWhileReading`
instead of delivering a torn copy.
"""

from __future__ import annotations

import errno
import io
import os
import stat

from pipeline import TransientError

from .stability import Signature, signature

# The reader's own buffer, allocated when the file is opened. Small: the spool reads in
# 1 MiB chunks, which go straight into their bytes, so the buffer is barely used. At 1 MiB
# each buffer was an mmap and munmap of its own: a 20,000-file all-duplicate re-run spent
# 0.57 ms of engine CPU per file, 0.53-0.54 with 64 KiB (the same resident memory).
READ_BUFFER = 64 * 1024


class NotARegularFile(OSError):
    """The path is a FIFO, socket, device or folder (or a link, when not followed)."""


class ChangedWhileReading(TransientError):
    """The file changed between being found stable and being read to the end.

    Transient: the engine records nothing (no failed row for a half-written version) and
    the source takes the file again once it is stable.
    """


class CheckedReader(io.RawIOBase):
    """A raw reader over an open descriptor that verifies the file at end of file."""

    def __init__(self, fd: int, expected: Signature, display: str) -> None:
        super().__init__()
        self._fd = fd
        self._expected = expected
        self._display = display
        self._read = 0
        self.changed = False  # set when the end-of-file check found the file changed

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = os.readv(self._fd, [buffer])
        self._read += n
        if n == 0 and len(buffer) > 0:
            now = signature(os.fstat(self._fd))
            if now != self._expected or self._read != self._expected[0]:
                self.changed = True
                raise ChangedWhileReading(
                    f"{self._display} changed while it was being read; it is taken again "
                    "once it is stable"
                )
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()


def open_checked(
    path: str, expected: Signature, display: str, *, follow_symlinks: bool = False
) -> io.BufferedReader:
    """Open ``path`` for reading if it is still the regular file described by ``expected``.

    :raises FileNotFoundError: it is gone.
    :raises PermissionError: it cannot be read.
    :raises NotARegularFile: a FIFO, device, socket or (unfollowed) symlink.
    :raises ChangedWhileReading: it is not the file that was found stable any more.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:  # a symlink where O_NOFOLLOW forbids one
            raise NotARegularFile(f"{display} is a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile(f"{display} is not a regular file")
        if signature(st) != expected:
            raise ChangedWhileReading(f"{display} changed before it could be read")
        # Back to blocking reads: O_NONBLOCK only served to open FIFOs without hanging.
        os.set_blocking(fd, True)
        return io.BufferedReader(CheckedReader(fd, expected, display), buffer_size=READ_BUFFER)
    except BaseException:
        os.close(fd)
        raise
