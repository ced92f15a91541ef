"""The ``Retry-After`` header (RFC 9110 section 10.2.3) as seconds to wait."""

from __future__ import annotations

import email.utils
import math
import re
import time
from datetime import UTC

# delta-seconds, leniently: fractions (some proxies send them) and a sign (negative
# means "now"); not float()'s other spellings such as "1e3", "nan" or "1_000"
_SECONDS = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def parse_retry_after(
    value: str | None, *, now: float | None = None, maximum: float | None = None
) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP-date).

    None when absent or unparseable (the caller then uses its own estimate); 0.0 for a
    negative delay or a date in the past; at most ``maximum`` when given. ``now``
    (epoch seconds) is for HTTP-dates; default: the current time. All three date
    formats RFC 9110 requires recipients to accept are understood.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # "-0000" and asctime dates parse naive: HTTP dates are UTC
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):  # "9" * 400 is a float overflow
        return None
    seconds = max(0.0, seconds)
    return seconds if maximum is None else min(seconds, maximum)
