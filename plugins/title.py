"""The ``title`` transform: turn what a source called a record into a clean document name.

Sources name records after what they saw: ``Scan_2024-03-01__0001.PDF``, a mail subject
with tabs and a zero-width space, a feed title of 2,000 characters. IT Glue shows the
name in lists and search, so it should read like a title: extension dropped, ``_`` as a
space, whitespace collapsed, control and format characters removed (they render as
boxes or break the web UI's search), characters IT Glue's forms refuse in names
(``<``, ``>``) replaced, and the length capped. A name is never empty: the first file's
name, then the source reference, then ``"Untitled"`` stand in.

The standard library does this in a few lines; no library is needed (``unicodedata``
gives the character classes).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from pydantic import Field

from pipeline import DocumentRecord, EngineContext, Transform, TransformOptions, hookimpl

# Extensions worth stripping from a title: short, alphanumeric, after a dot that is not
# the first character ("report.final.pdf" -> "report.final"; ".bashrc" stays).
_EXTENSION = re.compile(r"(?<=[^.\s])\.[A-Za-z0-9]{1,5}$")
_SPACES = re.compile(r"\s+")
_REFUSED = str.maketrans({"<": "(", ">": ")"})


class TitleOptions(TransformOptions):
    """``[transforms.title]``."""

    strip_extension: bool = True  # "Scan 0001.pdf" -> "Scan 0001"
    underscores_to_spaces: bool = True
    max_length: int = Field(default=255, ge=16, le=1000)


def clean_title(
    raw: str, *, strip_extension: bool = True, underscores: bool = True, max_length: int = 255
) -> str:
    """``raw`` as a document name (may be empty when nothing printable is left)."""
    text = unicodedata.normalize("NFC", raw)
    # Cc = control (tabs, newlines -> a space), Cf = format (zero-width, bidi overrides),
    # Cs/Co/Cn = surrogates, private use, unassigned: none belongs in a title
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn"}
    )
    text = text.translate(_REFUSED).strip()
    if strip_extension:
        text = _EXTENSION.sub("", text)
    if underscores:
        text = text.replace("_", " ")
    text = _SPACES.sub(" ", text).strip(" .-")
    if len(text) > max_length:
        cut = text[: max_length - 1]
        # cut at a word boundary when one is near the end, then mark the cut
        space = cut.rfind(" ")
        if space > max_length * 0.7:
            cut = cut[:space]
        text = cut.rstrip(" .-,;") + "…"
    return text


class TitleTransform(Transform):
    """Clean ``record.name``; fall back to the file name or the source reference."""

    options_model = TitleOptions

    def __init__(self, name: str, options: Any, context: EngineContext) -> None:
        super().__init__(name, options, context)
        self.opts: TitleOptions = (
            options if isinstance(options, TitleOptions) else TitleOptions.model_validate(options)
        )

    def title(self, raw: str) -> str:
        return clean_title(
            raw,
            strip_extension=self.opts.strip_extension,
            underscores=self.opts.underscores_to_spaces,
            max_length=self.opts.max_length,
        )

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        candidates = [record.name, *(b.file_name for b in record.files[:1]), record.source_ref]
        for raw in candidates:
            name = self.title(raw or "")
            if name:
                break
        else:
            name = "Untitled"
        if name == record.name:
            return record
        metadata = dict(record.metadata)
        metadata.setdefault("original_name", record.name)
        return record.model_copy(update={"name": name, "metadata": metadata})


@hookimpl
def ingest_register_transforms(register: Callable[[str, type[Transform]], None]) -> None:
    register("title", TitleTransform)
