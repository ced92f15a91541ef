"""What every property test means by a safe name and printable text."""

from __future__ import annotations

import unicodedata

from itglue_common.escaping import UNSAFE

#: the longest file name common file systems (and IT Glue) take, in UTF-8 bytes
NAME_LIMIT = 255


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a safe file name (None when it is)."""
    if not name or name in (".", ".."):
        return "empty or a dot name"
    if "/" in name or "\\" in name or "\x00" in name:
        return "path separator or NUL"
    bad = [ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Cs") or UNSAFE.match(ch)]
    if bad:
        return f"control, format or separator characters {bad!r}"
    if len(name.encode("utf-8")) > NAME_LIMIT:
        return f"{len(name.encode('utf-8'))} bytes"
    if name != name.strip():
        return "leading or trailing white space"
    return None
