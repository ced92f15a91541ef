"""Section HTML for plugins: the one sanitizer (:mod:`itglue_common.sanitize`, an nh3
allowlist) and plain text as paragraphs. Mail bodies, feed texts and extracted files are
untrusted, and IT Glue shows sections to every user of the organization; the mail source,
the extractors, the sink and the export all clean HTML with the same function."""

from __future__ import annotations

import html as _html
import re

from itglue_common import sanitize_html

__all__ = ["sanitize_html", "text_to_html"]


def text_to_html(text: str) -> str:
    """Plain text as HTML paragraphs (blank lines split paragraphs; newlines are <br>)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(
        "<p>" + _html.escape(p.strip()).replace("\n", "<br>") + "</p>" for p in paragraphs
    )
