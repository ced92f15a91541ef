"""The class of a failure reason: a small fixed set, so that a metric label stays bounded
(the reason itself names files and organizations: never a label)."""

from __future__ import annotations

# first match wins; each entry: (class, words any of which in the lowercased reason)
_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("engine", ("engine error",)),
    ("too_large", ("too large", "over the upload limit", "http 413")),
    ("unreadable", ("unreadable", "could not be read")),
    ("type", ("[transforms.mime]",)),
    ("routing", ("no organization", "[routing]", "no router", "organization")),
    ("rejected", ("it glue refused", "it glue answered 4", "it glue error")),
    ("plugin", (" raised ", " returned ")),
)
REASON_CLASSES: tuple[str, ...] = (*(c for c, _ in _CLASSES), "other")


def reason_class(reason: str) -> str:
    """``too_large``, ``unreadable``, ``type`` (refused by [transforms.mime]),
    ``routing``, ``rejected`` (IT Glue refused it), ``plugin`` (a plugin raised an
    unexpected error), ``engine``, or ``other``."""
    text = reason.lower()
    for name, words in _CLASSES:
        if any(w in text for w in words):
            return name
    return "other"
