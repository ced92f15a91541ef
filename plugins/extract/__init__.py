"""The ``extract`` transform and the text extractors (plain text, Markdown, HTML).

The transform turns a record's file into document sections through the extractor
registry (``ingest_register_extractors``); how it runs them safely: :mod:`.pool`; how
their output becomes sections: :mod:`.content`. Other formats register their extractors
from their own plugin modules, like any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline import RegisterExtractor, Transform, hookimpl

from .options import ExtractOptions
from .text import (
    HTML_TYPES,
    MARKDOWN_TYPES,
    TEXT_TYPES,
    extract_html,
    extract_markdown,
    extract_text,
)
from .transform import ExtractTransform

__all__ = ["ExtractOptions", "ExtractTransform"]


@hookimpl
def ingest_register_transforms(register: Callable[[str, type[Transform]], None]) -> None:
    register("extract", ExtractTransform)


@hookimpl
def ingest_register_extractors(register: RegisterExtractor) -> None:
    register(TEXT_TYPES, extract_text, name="text")
    register(MARKDOWN_TYPES, extract_markdown, name="markdown")
    register(HTML_TYPES, extract_html, name="html")
