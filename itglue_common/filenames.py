"""File names from untrusted sources (mail attachments, feed items) made safe to store.

A name arrives as someone else wrote it: ``../../etc/passwd``, ``C:\\x\\evil.exe``, a
newline or an escape sequence, a bidi override that shows ``fdp.exe`` as ``exe.pdf``,
300 characters. It leaves as one path component that every file system and IT Glue take.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 200  # IT Glue and most file systems take 255; leave room for " (2)"
_MAX_EXTENSION = 16


def _printable(ch: str) -> bool:
    # C*: controls, format (bidi, zero-width), surrogates, private use, unassigned;
    # Zl/Zp: the Unicode line and paragraph separators (a log reader breaks lines there)
    category = unicodedata.category(ch)
    return category[0] != "C" and category not in ("Zl", "Zp")


def _clean(name: str) -> str:
    text = unicodedata.normalize("NFC", name)
    text = re.split(r"[/\\]", text)[-1]  # a path: keep the last component
    text = "".join(ch for ch in text if _printable(ch))
    text = re.sub(r"\.{2,}", ".", text)
    text = re.sub(r'[<>:"|?*]', "_", text)  # refused by Windows (and SMB shares)
    text = re.sub(r"^[\s.]+|[\s.]+$", "", text)
    if len(text.encode()) > MAX_NAME_BYTES:
        stem, dot, ext = text.rpartition(".")
        if not dot or len(ext) > _MAX_EXTENSION:
            stem, ext = text, ""
        keep = MAX_NAME_BYTES - len(ext.encode()) - (1 if ext else 0)
        stem = stem.encode()[:keep].decode("utf-8", errors="ignore")
        stem = re.sub(r"[\s.]+$", "", stem)
        text = f"{stem}.{ext}" if ext else stem
    return text


def safe_file_name(name: str | None, fallback: str) -> str:
    """``name`` as a safe file name: no directories, no ``..``, no control, format or
    line-separator characters, no leading or trailing dots and spaces, at most
    :data:`MAX_NAME_BYTES` UTF-8 bytes with the extension kept. ``fallback`` (cleaned
    the same way) when nothing is left, and ``"unnamed"`` when that is empty too."""
    return _clean(name or "") or _clean(fallback) or "unnamed"
