"""Moving a finished file aside (``processed/YYYY/MM/DD/...``, ``failed/...``) without
ever overwriting anything.

``os.rename`` silently replaces an existing target, and ``shutil.move`` does too, so
neither is safe when two scans of ``invoice.pdf`` land on the same day. A hard link
fails with ``EEXIST`` instead of replacing, which makes "take the first free name"
atomic: link to ``invoice.pdf``, else ``invoice (1).pdf``, ... then unlink the
original. Where hard links are not possible (another filesystem, some SMB/FAT mounts)
the file is copied into an exclusively created target (``open(..., "xb")``) and the
original removed after the copy is complete and synced.

A crash between the link and the unlink leaves the file under both names; the next
attempt (``ack`` is retried after a restart) finds the target is the same inode and
only removes the original, so no ``name (1)`` copy appears.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

MAX_CLASHES = 10_000


def dated_dir(base: Path, when: float | None = None) -> Path:
    """``base/YYYY/MM/DD`` for ``when`` (local date; default now)."""
    return Path(_dated(os.fspath(base), time.localtime(time.time() if when is None else when)))


def _dated(base: str, t: time.struct_time) -> str:
    return os.path.join(base, f"{t.tm_year:04d}", f"{t.tm_mon:02d}", f"{t.tm_mday:02d}")


class DatedFolder:
    """``base/YYYY/MM/DD`` of today, made into a string once a day (the post-action of
    every file asks for it)."""

    def __init__(self, base: Path) -> None:
        self.base = os.fspath(base)
        self._today: tuple[tuple[int, int, int], str] | None = None  # one assignment

    def today(self) -> str:
        t = time.localtime()
        day = (t.tm_year, t.tm_mon, t.tm_mday)
        cached = self._today
        if cached is not None and cached[0] == day:
            return cached[1]
        path = _dated(self.base, t)
        self._today = (day, path)
        return path


def _numbered(name: str, n: int) -> str:
    """``name`` with `` (n)`` before its extension: ``a.pdf`` -> ``a (1).pdf``."""
    if n == 0:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return f"{name} ({n})"
    return f"{stem} ({n}).{ext}"


def _same_file(a: str, b: str, a_st: os.stat_result | None = None) -> bool:
    try:
        return os.path.samestat(a_st or os.lstat(a), os.lstat(b))
    except OSError:
        return False


def _copy_exclusive(src: str, dst: str) -> None:
    # created 0600 so that nobody else can read the copy before copystat gives it the
    # original's mode
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(src, "rb") as fin, open(fd, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1024 * 1024)
        fout.flush()
        os.fsync(fout.fileno())
    shutil.copystat(src, dst)


def move_no_clobber(src: str, dst_dir: str | Path, name: str) -> Path:
    """Move ``src`` into ``dst_dir`` as ``name`` or the first free ``name (n)``.

    :raises FileNotFoundError: ``src`` is gone (callers treat that as "already done").
    """
    return Path(move_aside(src, os.fspath(dst_dir), name))


def move_aside(src: str, dst_dir: str, name: str, src_st: os.stat_result | None = None) -> str:
    """:func:`move_no_clobber` on str paths, for the post-action of every file: the
    link comes first, and the folder is made only when the link finds it missing.
    ``src_st``: the ``lstat`` of ``src`` when the caller has it (one look fewer when
    the name is taken).
    """
    use_link = True
    made = False
    n = 0
    while n < MAX_CLASHES:
        dst = os.path.join(dst_dir, _numbered(name, n))
        if use_link:
            try:
                os.link(src, dst, follow_symlinks=False)
            except FileExistsError:
                if _same_file(src, dst, src_st):
                    # a move that crashed between link and unlink: finish it
                    os.unlink(src)
                    return dst
                n += 1
                continue
            except OSError as e:
                if e.errno == errno.ENOENT:
                    if not os.path.lexists(src):
                        raise
                    if not made:  # the target folder is missing: made, then again
                        os.makedirs(dst_dir, exist_ok=True)
                        made = True
                        continue
                    raise
                if e.errno not in (
                    errno.EXDEV,
                    errno.EPERM,
                    errno.ENOTSUP,
                    errno.EMLINK,
                    errno.EACCES,
                    errno.ENOSYS,
                ):
                    raise
                use_link = False
            else:
                os.unlink(src)
                return dst
        if not made:
            os.makedirs(dst_dir, exist_ok=True)
            made = True
        try:
            _copy_exclusive(src, dst)
        except FileExistsError:
            n += 1
            continue
        except BaseException:
            # never leave a half copy behind that looks like the processed file
            if os.path.exists(dst) and os.path.exists(src):
                os.unlink(dst)
            raise
        os.unlink(src)
        return dst
    raise OSError(errno.EEXIST, f"no free name for {name!r} in {dst_dir}")


def write_exclusive(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` or the first free numbered name beside it."""
    for n in range(MAX_CLASHES):
        target = path.with_name(_numbered(path.name, n)) if n else path
        try:
            with open(target, "x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError:
            continue
        return target
    raise OSError(errno.EEXIST, f"no free name for {path}")


def error_text(
    *, source: str, rel: str, folder: str, reason: str, now: float | None = None, retry_hint: str
) -> str:
    """What ``<name>.error.txt`` says: the file, when, why, and what to do next."""
    when = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return (
        "itglue-ingest could not deliver this file to IT Glue.\n"
        "\n"
        f"File:    {rel}\n"
        f"Source:  {source} (drop folder {folder})\n"
        f"When:    {when:%Y-%m-%d %H:%M:%S} UTC\n"
        f"Reason:  {reason}\n"
        "\n"
        "What to do:\n"
        "  1. Fix the cause above (for example: a type that is not allowed, a file that is\n"
        "     too large, an organization that does not exist in IT Glue, a file that\n"
        "     cannot be read).\n"
        "  2. Move the file back into the drop folder (into the same sub-folder); it is\n"
        "     taken again. Then delete this .error.txt.\n"
        f"{retry_hint}\n"
    )
