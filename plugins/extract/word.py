"""DOCX as document content, with mammoth.

Why mammoth: it converts by meaning, not by looks (Word's "Heading 2" style becomes
``<h2>``, numbered paragraphs become ``<ol>``), emits clean HTML without inline styles,
handles tables, links, bold/italic and footnotes, hands each embedded picture to a
callback at the place it stands, and is small, pure Python and maintained since 2013.
python-docx would need all of that written by hand.

Pictures: mammoth's ``convert_image`` hook replaces each one with a placeholder
``<img src="picture:N">``; the top-level elements of the HTML are then cut at those
placeholders into Html, Heading and Picture blocks in document order. Formats a browser
cannot show (EMF, WMF) stay only in the attached file, and the note says so.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import mammoth
import mammoth.images

from pipeline import Block, Extracted, ExtractionError, ExtractLimits, Heading, Html, Picture

from .blocks import WEB_IMAGES, blocks_text, html_text
from .htmltree import HEADINGS, Element, Node, parse, plain_text, to_html
from .titles import meaningful_title
from .zipguard import check_zip, read_member

_PLACEHOLDER = re.compile(r'<img src="picture:(\d+)"[^>]*>')
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"


@dataclass
class _Pictures:
    """What the ``convert_image`` hook collected, by placeholder number."""

    found: list[Picture] = field(default_factory=list)
    skipped: int = 0

    def convert(self, image: mammoth.images.Image) -> dict[str, str]:
        mime = (image.content_type or "").lower()
        if mime not in WEB_IMAGES:
            self.skipped += 1
            return {}  # mammoth drops an <img> without src
        with image.open() as stream:
            data = stream.read()
        n = len(self.found)
        alt = (image.alt_text or "").strip()
        self.found.append(Picture(data, mime, f"picture-{n + 1}{WEB_IMAGES[mime]}", alt))
        return {"src": f"picture:{n}"}


def extract_docx(path: Path, limits: ExtractLimits) -> Extracted:
    check_zip(path, limits)
    pictures = _Pictures()
    try:
        with path.open("rb") as f:
            result = mammoth.convert_to_html(
                f, convert_image=mammoth.images.img_element(pictures.convert)
            )
    except (KeyError, ValueError, OSError, ET.ParseError) as e:  # no document part, bad XML
        raise ExtractionError(f"not a readable Word document ({type(e).__name__}: {e})") from e
    blocks = tuple(_blocks(parse(result.value), pictures.found))
    text = blocks_text(blocks)
    first_heading = next((b.text for b in blocks if isinstance(b, Heading)), None)
    note = None
    if pictures.skipped:
        note = (
            f"{pictures.skipped} picture(s) in formats a browser cannot show (EMF/WMF/TIFF)"
            " are only in the attached file"
        )
    return Extracted(
        blocks=blocks,
        text=text,
        title=_core_title(path) or first_heading,
        note=note,
    )


def _blocks(nodes: list[Node], pictures: list[Picture]) -> list[Block]:
    """Top-level headings as Heading blocks, pictures where they stood, the rest as Html."""
    out: list[Block] = []
    pending: list[str] = []

    def flush() -> None:
        fragment = "".join(pending).strip()
        if fragment:
            out.append(Html(fragment))
        pending.clear()

    for node in nodes:
        markup = to_html(node)
        used = [pictures[int(n)] for n in _PLACEHOLDER.findall(markup)]
        if isinstance(node, Element) and node.tag in HEADINGS and plain_text(node):
            flush()
            out.append(Heading(plain_text(node)[:255], HEADINGS[node.tag]))
        else:
            rest = _PLACEHOLDER.sub("", markup)
            if html_text(rest) or "<table" in rest:
                pending.append(rest)
        if used:  # pictures inside a paragraph or table follow it
            flush()
            out.extend(used)
    flush()
    return out


def _core_title(path: Path) -> str | None:
    """The title in ``docProps/core.xml`` (Word's File > Properties)."""
    try:
        data = read_member(path, "docProps/core.xml", limit=1_000_000)
        if not data:
            return None
        # expat (>= 2.4, as Python ships it) bounds entity expansion and never loads
        # external entities; the part is also capped at 1 MB above
        node = ET.fromstring(data).find(_DC_TITLE)  # noqa: S314
    except (ET.ParseError, OSError, ValueError):
        return None
    return meaningful_title(node.text if node is not None else None)
