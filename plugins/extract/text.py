"""Plain text, Markdown and HTML files as document content.

Markdown: markdown-it-py (CommonMark-exact, maintained by the executablebooks project,
already in the dependency tree through rich) with tables and strikethrough, raw HTML
allowed because the result is sanitized anyway. HTML: the file's ``<body>`` through the
one sanitizer (``pipeline.sanitize_html``) and its ``<title>`` as the title. Plain text:
paragraphs at blank lines (``pipeline.text_to_html``, as for feed texts). Bytes are
decoded as UTF-8 (a BOM says which UTF), else as Windows-1252, which every byte decodes
in: a stray byte never loses the rest of the file.
"""

from __future__ import annotations

import codecs
import html
import re
from pathlib import Path

from markdown_it import MarkdownIt

from pipeline import (
    Extracted,
    ExtractionError,
    ExtractLimits,
    Html,
    sanitize_html,
    text_to_html,
)

TEXT_TYPES = ("text/plain",)
MARKDOWN_TYPES = ("text/markdown", "text/x-markdown")
HTML_TYPES = ("text/html", "application/xhtml+xml")

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_BODY = re.compile(r"<body[^>]*>(.*?)(?:</body\s*>|$)", re.IGNORECASE | re.DOTALL)
_H1 = re.compile(r"<h1[^>]*>(.*?)</h1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def read_text(path: Path, limits: ExtractLimits) -> str:
    """The file's text; more than ``max_output_bytes`` is an ExtractionError (a note)."""
    with path.open("rb") as f:
        data = f.read(limits.max_output_bytes + 1)
    if len(data) > limits.max_output_bytes:
        raise ExtractionError(
            f"the text is larger than {limits.max_output_bytes:,} bytes"
            " ([transforms.extract] max_output_bytes)"
        )
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def html_text(markup: str) -> str:
    """The text of (sanitized) HTML, whitespace collapsed."""
    return " ".join(html.unescape(_TAG.sub(" ", markup)).split())


def extract_text(path: Path, limits: ExtractLimits) -> Extracted:
    text = read_text(path, limits)
    body = text_to_html(text)
    return Extracted(blocks=(Html(body),) if body else (), text=text.strip())


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def extract_markdown(path: Path, limits: ExtractLimits) -> Extracted:
    source = read_text(path, limits)
    rendered = sanitize_html(_markdown().render(source))
    heading = _H1.search(rendered)
    title = html_text(heading.group(1)) if heading else None
    return Extracted(
        blocks=(Html(rendered),) if rendered.strip() else (),
        text=html_text(rendered),
        title=title or None,
    )


def extract_html(path: Path, limits: ExtractLimits) -> Extracted:
    markup = read_text(path, limits)
    title_match = _TITLE.search(markup)
    body_match = _BODY.search(markup)
    body = sanitize_html(body_match.group(1) if body_match else markup)
    title = html_text(title_match.group(1)) if title_match else None
    if not title:
        heading = _H1.search(body)
        title = html_text(heading.group(1)) if heading else None
    return Extracted(
        blocks=(Html(body),) if body.strip() else (),
        text=html_text(body),
        title=title or None,
    )
