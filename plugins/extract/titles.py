"""A file's own title metadata, kept only when it names the file.

Office and PDF tools fill the title field with their defaults ("PowerPoint Presentation",
"Microsoft Word - report.docx", "Slide 1"); such a title says less than the file name, so
it is dropped and the first heading (or the file name) names the document instead.
"""

from __future__ import annotations

import re

_GENERIC = frozenset(
    {
        "document", "presentation", "powerpoint presentation", "slide 1", "untitled",
        "book1", "sheet1", "workbook", "microsoft word document", "untitled document",
    }
)  # fmt: skip
_TOOL_PREFIX = re.compile(r"^(microsoft (word|excel|powerpoint)|powerpoint) - ", re.IGNORECASE)


def meaningful_title(raw: object) -> str | None:
    """``raw`` as a title, or None when it is empty or a tool's default."""
    if not isinstance(raw, str):
        return None
    title = " ".join(raw.split())
    title = _TOOL_PREFIX.sub("", title)
    if title.lower() in _GENERIC or not any(ch.isalnum() for ch in title):
        return None
    return title[:255]
