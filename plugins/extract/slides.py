"""PPTX as document content: a heading per slide, its text, tables, pictures and notes.

Why python-pptx: the maintained reader of the format (the same author as python-docx),
it knows placeholders (which shape is the slide title), tables, group shapes, pictures
with their image bytes and type, and the notes page. Shapes are read top to bottom, then
left to right, the way a reader scans a slide.
"""

from __future__ import annotations

import html
import zipfile
from pathlib import Path
from typing import Any

import pptx
import pptx.exc
from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER
from pptx.slide import Slide

from pipeline import Block, Extracted, ExtractionError, ExtractLimits, Heading, Html, Picture

from .blocks import WEB_IMAGES, blocks_text
from .titles import meaningful_title
from .zipguard import check_zip

_TITLES = {PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE}


def extract_pptx(path: Path, limits: ExtractLimits) -> Extracted:
    check_zip(path, limits)
    try:
        with path.open("rb") as f:
            deck = pptx.Presentation(f)
        blocks: list[Block] = []
        titles: list[str] = []
        slides = list(deck.slides)
        for number, slide in enumerate(slides[: limits.max_pages], start=1):
            title = _title(slide)
            if title:
                titles.append(title)
            blocks += _slide(slide, number, title)
        core_title = meaningful_title(deck.core_properties.title)
    except (pptx.exc.PythonPptxError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ExtractionError(f"not a readable PowerPoint file ({type(e).__name__}: {e})") from e
    note = None
    if len(slides) > limits.max_pages:
        note = (
            f"the first {limits.max_pages:,} of {len(slides):,} slides (max_pages);"
            " the rest is only in the attached file"
        )
    return Extracted(
        blocks=tuple(blocks),
        text=blocks_text(blocks),
        title=core_title or (titles[0] if titles else None),
        note=note,
        pages=len(slides),
    )


def _title_shape(slide: Slide) -> Any | None:
    return next((s for s in slide.placeholders if _is_title(s)), None)


def _title(slide: Slide) -> str:
    shape = _title_shape(slide)
    return " ".join(_text_of(shape).split())[:200] if shape is not None else ""


def _slide(slide: Slide, number: int, title: str) -> list[Block]:
    title_shape = _title_shape(slide)
    out = _SlideBlocks(number)
    out.blocks.append(Heading(f"Slide {number}: {title}" if title else f"Slide {number}", 2))
    for shape in _reading_order(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        out.add(shape)
    notes = _notes(slide)
    if notes:
        out.pending.append(f"<p><em>Notes:</em></p>{_paragraphs(notes)}")
    out.flush()
    return out.blocks


class _SlideBlocks:
    """A slide's shapes in reading order: text and tables as HTML, each picture where it
    stands between them."""

    def __init__(self, slide: int) -> None:
        self.slide = slide
        self.blocks: list[Block] = []
        self.pending: list[str] = []
        self.pictures = 0

    def flush(self) -> None:
        if self.pending:
            self.blocks.append(Html("".join(self.pending)))
            self.pending.clear()

    def add(self, shape: Any) -> None:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            for inner in _reading_order(shape.shapes):
                self.add(inner)
        elif getattr(shape, "has_table", False) and shape.has_table:
            self.pending.append(_table(shape.table))
        elif shape.shape_type == MSO_SHAPE_TYPE.PICTURE:
            picture = _picture(shape, self.slide, self.pictures + 1)
            if picture is not None:
                self.flush()
                self.blocks.append(picture)
                self.pictures += 1
        elif shape.has_text_frame:
            text = _text_of(shape)
            if text:
                self.pending.append(_paragraphs(text))


def _is_title(shape: Any) -> bool:
    try:
        return shape.placeholder_format.type in _TITLES
    except ValueError:
        return False


def _reading_order(shapes: Any) -> list[Any]:
    return sorted(shapes, key=lambda s: (s.top or 0, s.left or 0))


def _text_of(shape: Any) -> str:
    if not shape.has_text_frame:
        return ""
    # a vertical tab is PowerPoint's line break inside a paragraph
    return str(shape.text_frame.text).replace("\x0b", "\n").strip()


def _paragraphs(text: str) -> str:
    return "".join(
        f"<p>{html.escape(line.strip(), quote=False)}</p>"
        for line in text.split("\n")
        if line.strip()
    )


def _table(table: Any) -> str:
    rows = []
    for row in table.rows:
        cells = "".join(
            f"<td>{html.escape(' '.join(cell.text.split()), quote=False)}</td>"
            for cell in row.cells
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table>{''.join(rows)}</table>"


def _picture(shape: Any, slide: int, n: int) -> Picture | None:
    try:
        image = shape.image
        mime = image.content_type
    except (AttributeError, KeyError, ValueError):  # a linked (external) picture
        return None
    if mime not in WEB_IMAGES:
        return None
    alt = shape._element.xpath("./p:nvPicPr/p:cNvPr/@descr")
    return Picture(
        image.blob, mime, f"slide-{slide}-picture-{n}{WEB_IMAGES[mime]}", str(alt[0]) if alt else ""
    )


def _notes(slide: Slide) -> str:
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    return frame.text.replace("\x0b", "\n").strip() if frame is not None else ""
