"""The ``title`` transform: turn what a source called a record into a clean document name.

Sources name records after what they saw: ``Scan_2024-03-01__0001.PDF``, a mail subject
with tabs and a zero-width space, a feed title of 2,000 characters. IT Glue shows the
name in lists and search, so it should read like a title: extension dropped, ``_`` as a
space, whitespace collapsed, control and format characters removed (they render as
boxes or break the web UI's search), characters IT Glue's forms refuse in names
(``<``, ``>``) replaced, and the length capped. A name is never empty: the first file's
name, then the source reference, then ``"Untitled"`` stand in.

When the name says nothing about the content (``scan_0001.pdf``, ``IMG_2041.jpg``,
``Document1.docx``, a hash or a timestamp), the title the ``extract`` transform found in
the file (its title metadata or first heading, ``metadata.extract.title``) is used
instead, if that one says something.

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
from plugins.extract.titles import meaningful_title

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
    from_content: bool = True  # a name that says nothing -> the file's own title


# Words that scanners, cameras, phones and office programs put in the names they make up
_GENERIC = (
    "scan scans scanned scanner img image images dsc dscn dscf dcim pxl mvimg vid photo"
    " photos pic picture screenshot screen shot capture whatsapp document documents doc"
    " docs file files untitled new copy of at and the att attachment pdf microsoft"
    " word excel powerpoint unbenannt dokument bild kopie sans titre"
)
_GENERIC_WORDS = frozenset(_GENERIC.split())
_DIGITS = re.compile(r"[\d.:,+-]+")  # numbers, dates, times: 0001, 2024-03-01, 10.22.33
_HASH = re.compile(r"(?=.*\d)[0-9a-f]{8,}", re.IGNORECASE)  # hashes, uuid parts
_NUMBERED = re.compile(r"([a-z]+)[\d-]+")


def says_nothing(title: str) -> bool:
    """True when ``title`` names no content: only generic words, numbers, dates, hashes
    or short codes ("IMG E2041", "Scan 2024-03-01 0001", "Document1", "3f2a9c0d1e...")."""
    for token in re.split(r"[\s_()\[\]{}#~]+", title.casefold()):
        token = token.strip(".-,;:'\"")
        if len(token) <= 1 or token in _GENERIC_WORDS or _DIGITS.fullmatch(token):
            continue
        if _HASH.fullmatch(token.replace("-", "")):
            continue
        numbered = _NUMBERED.fullmatch(token)  # "document1", "img2041"
        if numbered and numbered.group(1) in _GENERIC_WORDS:
            continue
        letters = sum(ch.isalpha() for ch in token)
        if letters <= 2 and any(ch.isdigit() for ch in token):  # "e2041", "p1000123"
            continue
        return False
    return True


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
        if self.opts.from_content and says_nothing(name):
            name = self.content_title(record) or name
        if name == record.name:
            return record
        metadata = dict(record.metadata)
        metadata.setdefault("original_name", record.name)
        return record.model_copy(update={"name": name, "metadata": metadata})

    def content_title(self, record: DocumentRecord) -> str | None:
        """The title the extract transform found in the file, when it says something."""
        extract = record.metadata.get("extract")
        raw = extract.get("title") if isinstance(extract, dict) else None
        title = self.title(meaningful_title(raw) or "")  # tool defaults dropped
        return title if title and not says_nothing(title) else None


@hookimpl
def ingest_register_transforms(register: Callable[[str, type[Transform]], None]) -> None:
    register("title", TitleTransform)
