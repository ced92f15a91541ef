"""The text layer of a PDF, page by page, with pdfminer.six.

Why pdfminer.six: its layout analysis groups characters into lines and text boxes
(paragraphs) in reading order and keeps each character's font size, which is what
paragraphs and headings need; it is pure Python, maintained by a community team, reads
damaged files through a fallback parser (pypdf refuses some that pdfminer reads, e.g. a
missing cross-reference table) and decrypts RC4/AES files. pypdf's text extraction has
no boxes or sizes, and PDFium-based tools give lines without paragraphs.

Headings: a text box of at most a few short lines whose font is clearly larger than the
body text's (the size most characters have) is a heading; the larger the size, the
higher the level. A page's paragraphs are one Html block.

Pages are read lazily and at most ``max_pages`` of them: a 5,000-page file costs 500
pages, and the note says where the text stops. pdfminer is slow on dense pages (a few
pages a second), so reading also stops after :data:`READ_SECONDS`, well inside the
per-file budget (``[transforms.extract] timeout``, 180 s by default): a long manual
lands with the text of its first pages rather than none at all. The page count comes
from the page tree's
``/Count`` (no page is parsed for it). A PDF without any text layer (a scan) comes back
with empty text and its page count, for the OCR extractor (:mod:`plugins.extract.ocr`
registers ``application/pdf`` and calls :func:`extract_pdf_text` first).
"""

from __future__ import annotations

import html
import itertools
import logging
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import LAParams, LTChar, LTPage, LTTextBox, LTTextLine
from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser
from pdfminer.pdftypes import resolve1
from pdfminer.psparser import PSException

from pipeline import Block, Extracted, ExtractionError, ExtractLimits, Heading, Html

from .titles import meaningful_title

HEADING_RATIO = 1.15  # a font this much larger than the body text's is a heading
MAX_HEADING_CHARS = 200
MAX_HEADING_LINES = 3
READ_SECONDS = 40.0

# pdfminer logs every oddity of a damaged file at WARNING; they are not ours to report
logging.getLogger("pdfminer").setLevel(logging.ERROR)


@dataclass(frozen=True)
class _Box:
    page: int
    text: str
    size: float  # the font size most of its characters have
    lines: int


def extract_pdf_text(
    path: Path, limits: ExtractLimits, *, seconds: float = READ_SECONDS
) -> Extracted:
    """The text layer of the first ``max_pages`` pages, or of those read in ``seconds``
    (at least one); empty text for a scan."""
    try:
        with path.open("rb") as f:
            document = _open(f)
            pages = _page_count(document)
            title = meaningful_title(_info(document, "Title"))
            boxes, read = _boxes(document, limits, time.monotonic() + seconds)
    except ExtractionError:
        raise
    except (PSException, ValueError, TypeError, KeyError, AttributeError, EOFError) as e:
        # pdfminer has no single error type for a damaged file
        raise ExtractionError(f"malformed PDF ({type(e).__name__}: {e})"[:300]) from e
    if read == 0 and pages > 0:
        raise ExtractionError("malformed PDF (no page of its page tree can be read)")
    pages = max(pages, read)
    note = None
    if pages > read:
        why = "max_pages" if read >= limits.max_pages else "time or size"
        note = (
            f"text of the first {read:,} of {pages:,} pages ({why});"
            " the rest is only in the attached file"
        )
    if not boxes:  # a scan: no text layer on the pages read
        return Extracted(blocks=(), text="", title=title, note=note, pages=pages)
    blocks = _blocks(boxes)
    first_heading = next((b.text for b in blocks if isinstance(b, Heading)), None)
    text = "\n\n".join(box.text for box in boxes)
    return Extracted(
        blocks=tuple(blocks), text=text, title=title or first_heading, note=note, pages=pages
    )


def _open(f: object) -> PDFDocument:
    try:
        return PDFDocument(PDFParser(f))  # type: ignore[arg-type]
    except (PDFPasswordIncorrect, PDFEncryptionError) as e:
        # an owner password alone (printing/copy restrictions) opens with the empty one
        raise ExtractionError("encrypted PDF") from e


def _info(document: PDFDocument, key: str) -> str | None:
    for info in document.info:
        value = resolve1(info.get(key))
        if isinstance(value, bytes):
            return _pdf_string(value)
        if isinstance(value, str):
            return value
    return None


def _pdf_string(raw: bytes) -> str:
    """A PDF text string: UTF-16 with a byte order mark, else PDFDocEncoding (~Latin-1)."""
    if raw.startswith((b"\xfe\xff", b"\xff\xfe")):
        return raw.decode("utf-16", errors="replace")
    return raw.decode("latin-1")


def _page_count(document: PDFDocument) -> int:
    pages = resolve1(document.catalog.get("Pages"))
    count = resolve1(pages.get("Count")) if isinstance(pages, dict) else None
    return count if isinstance(count, int) and count >= 0 else 0


def _boxes(document: PDFDocument, limits: ExtractLimits, deadline: float) -> tuple[list[_Box], int]:
    """The text boxes of the first ``max_pages`` pages and how many pages were read."""
    resources = PDFResourceManager(caching=True)
    device = PDFPageAggregator(resources, laparams=LAParams())
    interpreter = PDFPageInterpreter(resources, device)
    boxes: list[_Box] = []
    read = 0
    used = 0
    for number, page in enumerate(
        itertools.islice(PDFPage.create_pages(document), limits.max_pages), start=1
    ):
        interpreter.process_page(page)
        layout = device.get_result()
        read = number
        for box in _page_boxes(layout, number):
            used += len(box.text.encode("utf-8"))
            if used > limits.max_output_bytes:
                return boxes, read
            boxes.append(box)
        if time.monotonic() > deadline:
            break
    return boxes, read


def _page_boxes(layout: LTPage, number: int) -> list[_Box]:
    """A page's text boxes; a box whose lines change font size is cut there, because
    layout analysis often glues a heading to the paragraph under it."""
    out = []
    for element in layout:
        if not isinstance(element, LTTextBox):
            continue
        runs: list[tuple[float, list[str]]] = []
        for line in element:
            if not isinstance(line, LTTextLine):
                continue
            sizes = Counter(round(ch.size, 1) for ch in line if isinstance(ch, LTChar))
            size = sizes.most_common(1)[0][0] if sizes else 0.0
            if runs and runs[-1][0] == size:
                runs[-1][1].append(line.get_text())
            else:
                runs.append((size, [line.get_text()]))
        for size, lines in runs:
            text = _join_lines(lines)
            if text:
                out.append(_Box(number, text, size, len(lines)))
    return out


def _join_lines(lines: object) -> str:
    """A text box's lines as one paragraph (a hyphen at a line end joins the word)."""
    text = ""
    for raw in lines:  # type: ignore[attr-defined]
        line = " ".join(str(raw).split())
        if not line:
            continue
        if text.endswith("-") and line[:1].islower():
            text = text[:-1] + line
        elif text and _wide(text[-1]) and _wide(line[0]):  # CJK: no spaces between words
            text += line
        else:
            text = f"{text} {line}" if text else line
    return text


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _blocks(boxes: list[_Box]) -> list[Block]:
    body = _body_size(boxes)
    heading_sizes = sorted({b.size for b in boxes if _is_heading(b, body)}, reverse=True)
    level = {size: min(i + 1, 6) for i, size in enumerate(heading_sizes)}
    out: list[Block] = []
    paragraphs: list[str] = []
    page = boxes[0].page

    def flush() -> None:
        if paragraphs:
            out.append(Html("".join(paragraphs)))
            paragraphs.clear()

    for box in boxes:
        if box.page != page:  # one Html block per page
            flush()
            page = box.page
        if box.size in level and _is_heading(box, body):
            flush()
            out.append(Heading(box.text[:255], level[box.size]))
        else:
            paragraphs.append(f"<p>{html.escape(box.text, quote=False)}</p>")
    flush()
    return out


def _body_size(boxes: list[_Box]) -> float:
    weights: Counter[float] = Counter()
    for box in boxes:
        weights[box.size] += len(box.text)
    return weights.most_common(1)[0][0]


def _is_heading(box: _Box, body: float) -> bool:
    return (
        body > 0
        and box.size >= body * HEADING_RATIO
        and len(box.text) <= MAX_HEADING_CHARS
        and box.lines <= MAX_HEADING_LINES
        and any(ch.isalpha() for ch in box.text)
    )
