"""Keeping the API key out of text that leaves the client.

The client never formats the key into anything, so these are the second line of
defence: text that comes from somewhere else (a ``requests`` exception message, a
server's error body echoed back) is scrubbed before it goes into an exception or a
log line. ``Secret`` holds the key itself so that a stray ``repr()``/``str()``/``%s``
shows ``***`` and not the key.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"


class Secret:
    """A string that does not print itself (``reveal()`` is the one way to read it)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> str:  # refuse to be pickled into some state file
        raise TypeError("Secret values cannot be pickled")


def scrub(text: str, secrets: Iterable[str | Secret]) -> str:
    """``text`` with every occurrence of each secret (4+ chars) replaced by ``***``."""
    for s in secrets:
        value = s.reveal() if isinstance(s, Secret) else s
        if value and len(value) >= 4 and value in text:
            text = text.replace(value, MASK)
    return text
