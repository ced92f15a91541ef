"""The plain text of extracted blocks (``Extracted.text``: routing and search read it).

Block-level tags end a line and cells end with a space, so words of neighbouring
paragraphs or cells never run together.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from pipeline import Block, Heading, Html

# picture types a browser shows, and the file extension each is saved under
WEB_IMAGES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/webp": ".webp",
}

_LINE_END = re.compile(r"</(p|li|h[1-6]|tr|div|pre|blockquote|caption)\s*>|<br\s*/?>", re.I)
_CELL_END = re.compile(r"</t[dh]\s*>", re.I)
_TAG = re.compile(r"<[^>]*>")


def html_text(fragment: str) -> str:
    """The text of an HTML fragment, one line per block element."""
    text = _CELL_END.sub(" ", _LINE_END.sub("\n", fragment))
    text = html.unescape(_TAG.sub("", text))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def blocks_text(blocks: Iterable[Block]) -> str:
    """Headings and HTML blocks as text, a blank line between blocks (pictures add none)."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(block.text)
        elif isinstance(block, Html):
            parts.append(html_text(block.html))
    return "\n\n".join(p for p in parts if p)
