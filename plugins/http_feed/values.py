"""Values from the feed: URLs (the HTTPS rule), dotted paths into JSON, timestamps, names.

Pure functions, no I/O; ``tests/http_feed/test_feed_logic.py`` tests them in-process.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from itglue_common import is_loopback_host
from itglue_common import safe_file_name as safe_file_name  # the feed's files are named by it

from .parsing import TooDeep


def url_problem(url: str, allow_insecure_loopback: bool) -> str | None:
    """Why ``url`` may not be fetched (HTTPS rule), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as e:
        return f"not a valid URL ({e})"
    if parts.username or parts.password:
        return "credentials in the URL are refused; use the auth settings"
    if not host:
        return f"not an absolute URL: {display_url(url)!r}"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if is_loopback_host(host):
            if allow_insecure_loopback:
                return None
            return (
                f"refusing http:// to {host}: HTTPS only (plain http:// is allowed for "
                "loopback hosts with allow_insecure_loopback = true)"
            )
        return f"refusing http:// to {host}: HTTPS only"
    return f"unsupported URL scheme {parts.scheme!r}: HTTPS only"


def display_url(url: str) -> str:
    """A URL without its query string and credentials, for messages (signed URLs and
    cursors can carry tokens)."""
    try:
        p = urlsplit(url)
        host = p.hostname or ""
        port = f":{p.port}" if p.port else ""
    except ValueError:
        return "<invalid URL>"
    return f"{p.scheme}://{host}{port}{p.path}"


def origin(url: str) -> tuple[str, str, int | None]:
    p = urlsplit(url)
    default = {"https": 443, "http": 80}.get(p.scheme)
    return (p.scheme, (p.hostname or "").lower(), p.port or default)


MISSING = object()


def lookup(doc: Any, path: str) -> Any:
    """The value at a dotted path (``a.b.0.c``; list elements by index), or ``MISSING``.
    An empty path is the document itself."""
    if path == "":
        return doc
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            if part not in cur:
                return MISSING
            cur = cur[part]
        elif isinstance(cur, list) and re.fullmatch(r"-?\d+", part):
            i = int(part)
            if not -len(cur) <= i < len(cur):
                return MISSING
            cur = cur[i]
        else:
            return MISSING
    return cur


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, TooDeep):
        return str(value).strip("<>")
    return {dict: "an object", list: "a list", bool: "a boolean", str: "a string"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def parse_timestamp(value: Any) -> float | None:
    """An updated-at value as seconds since the epoch (ISO 8601 or a number), or None.

    Never NaN or infinite (``"NaN"``, ``1e999``, an integer too large for a float): such
    a stamp would compare false with everything and stall the checkpoint."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _finite(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return _finite(float(text))
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    except (ValueError, OverflowError):  # not a date, or beyond year 1..9999 once in UTC
        return None


def _finite(value: float) -> float | None:
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def canonical_hash(item: Any) -> str:
    data = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(data.encode()).hexdigest()
