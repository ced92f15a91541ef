"""Names in a drop folder: record references, readable names, what to ignore.

A file's identity in the ledger is its path relative to the drop folder. POSIX file
names are bytes, not text: a scanner on a Latin-1 share can write ``b"caf\\xe9.pdf"``,
which is no valid UTF-8 and cannot be stored as SQLite text. :func:`encode_ref` keeps
such a reference exact and reversible (``raw:`` + percent-encoded bytes) and leaves every
valid UTF-8 path readable as it is; :func:`decode_ref` turns a stored reference back into
the path, so ``ack``/``nack`` after a restart find the very same file.

The ignore rules are ``fnmatch`` patterns, matched case-insensitively (drop folders are
often SMB shares filled from Windows, where ``Thumbs.db`` and ``THUMBS.DB`` are the same
file). A pattern with a ``/`` matches the relative path, any other the base name.
"""

from __future__ import annotations

import fnmatch
import os
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import quote_from_bytes, unquote_to_bytes

RAW_PREFIX = "raw:"

# Names that are never documents: partial downloads and copies, editor lock files,
# desktop and NAS metadata. Dot files (and dot folders) are ignored as well.
DEFAULT_IGNORED_NAMES: tuple[str, ...] = (
    "*.part",
    "*.partial",
    "*.crdownload",
    "*.download",
    "*.tmp",
    "*.temp",
    "*.filepart",
    "~$*",
    ".~lock*",
    "thumbs.db",
    "desktop.ini",
    ".ds_store",
    "@eadir",
    "__macosx",
    "$recycle.bin",
    "#recycle",
)
# the patterns above as one expression (fnmatch's own translation): asked for every
# part of every path a walk finds
_IGNORED = re.compile("|".join(fnmatch.translate(p) for p in DEFAULT_IGNORED_NAMES))


def encode_ref(rel: str) -> str:
    """The ledger reference of the relative path ``rel`` (``os.fsdecode`` form, POSIX ``/``).

    Valid UTF-8 paths are their own reference; others (and, to stay reversible, paths
    that happen to start with ``raw:``) become ``raw:`` + percent-encoded bytes.
    """
    raw = os.fsencode(rel)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and not text.startswith(RAW_PREFIX):
        return text
    return RAW_PREFIX + quote_from_bytes(raw, safe="/ ")


def decode_ref(ref: str) -> str:
    """The relative path (``os.fsdecode`` form) a reference made by :func:`encode_ref` names."""
    if ref.startswith(RAW_PREFIX):
        return os.fsdecode(unquote_to_bytes(ref[len(RAW_PREFIX) :]))
    return ref


def display_name(name: str) -> str:
    """``name`` as printable text: undecodable bytes become U+FFFD, control, format and
    line-separator characters ``_``.

    This is what IT Glue sees as the attachment's file name and what logs show; the
    exact bytes stay in the reference.
    """
    if name.isascii() and name.isprintable():  # the common case: nothing to replace
        return name.strip() or "unnamed"
    text = os.fsencode(name).decode("utf-8", errors="replace")
    text = unicodedata.normalize("NFC", text)
    cleaned = "".join(
        "_" if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") else ch for ch in text
    ).strip()
    return cleaned or "unnamed"


def display_path(path: str) -> str:
    """A path as valid text (undecodable bytes as U+FFFD), for metadata and notes."""
    return os.fsencode(path).decode("utf-8", errors="replace")


def _lower(patterns: Iterable[str]) -> tuple[str, ...]:
    return tuple(p.lower() for p in patterns)


class PathFilter:
    """Decides which names in the drop folder are candidates.

    ``include`` (empty: everything) and ``exclude`` are the user's patterns; the
    built-in temporary/metadata names and dot files are always ignored.
    """

    def __init__(self, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
        self.include = _lower(include)
        self.exclude = _lower(exclude)

    @staticmethod
    def _match(rel: str, name: str, patterns: tuple[str, ...]) -> bool:
        for p in patterns:
            target = rel if "/" in p else name
            if fnmatch.fnmatchcase(target, p):
                return True
        return False

    def ignored_name(self, name: str) -> bool:
        """Temporary, hidden or metadata names (files and folders alike)."""
        low = name.lower()
        if low.startswith("."):
            return True
        return _IGNORED.match(low) is not None

    def skip_dir(self, rel: str) -> bool:
        """Whether the walk should not enter folder ``rel`` (relative, POSIX)."""
        name = rel.rsplit("/", 1)[-1]
        if self.ignored_name(name):
            return True
        low = rel.lower()
        # "Archive/*" excludes everything below Archive: no need to enter it at all
        return self._match(low, name.lower(), self.exclude) or self._match(
            low + "/", name.lower(), tuple(p for p in self.exclude if "/" in p)
        )

    def accepts_file(self, rel: str) -> bool:
        """Whether the file at ``rel`` (relative, POSIX) is a candidate.

        Every folder on the way must be acceptable too (events come for deep paths
        without a walk having pruned their parents).
        """
        parts = rel.split("/")
        if any(self.ignored_name(p) for p in parts):
            return False
        low = rel.lower()
        name = parts[-1].lower()
        for i in range(1, len(parts)):
            if self._match("/".join(parts[:i]).lower(), parts[i - 1].lower(), self.exclude):
                return False
        if self._match(low, name, self.exclude):
            return False
        return not self.include or self._match(low, name, self.include)


def organization_of(rel: str) -> str | None:
    """The first sub-folder of ``rel`` as an organization name (None at the top level)."""
    parts = rel.split("/")
    if len(parts) < 2:
        return None
    org = display_name(parts[0])
    return org or None
