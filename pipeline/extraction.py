"""What a file says, as structured content: the contract between extractors and the sink.

An extractor turns one file into an :class:`Extracted` (headings, HTML fragments and
pictures in document order, plus the plain text). Extractors are registered per MIME
type through the ``ingest_register_extractors`` hook into an :class:`ExtractorRegistry`;
the built-in ``extract`` transform runs them in a worker process pool with a time budget,
a memory cap and :class:`ExtractLimits`, so they are plain top-level (picklable)
functions that read the file at the path and nothing else.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    """A heading (becomes a ``Document::Heading`` section)."""

    text: str
    level: int = 1  # 1..6

    def __post_init__(self) -> None:
        if not 1 <= self.level <= 6:
            raise ValueError(f"heading level {self.level} is not between 1 and 6")


@dataclass(frozen=True)
class Html:
    """An HTML fragment (p, ul/ol/li, table, b/i/strong/em, a, h1-h6, pre/code, br...).
    The sink sanitizes it again with the one sanitizer the mail bodies use."""

    html: str


@dataclass(frozen=True)
class Picture:
    """A picture where it stood in the document (becomes a document image)."""

    data: bytes
    mime: str  # "image/png", "image/jpeg", ...
    name: str  # file name for /document_images
    alt: str = ""


Block = Heading | Html | Picture


@dataclass(frozen=True)
class Extracted:
    """A file's content: blocks in document order and its plain text."""

    blocks: tuple[Block, ...]
    text: str  # plain text of the whole file (routing, search)
    title: str | None = None  # the file's title metadata, or its first heading
    note: str | None = None  # a short note shown as its own section ("cut at 1,000 rows")
    pages: int | None = None
    replacement: bytes | None = None  # e.g. a searchable (OCR'd) PDF to attach instead
    replacement_name: str | None = None


@dataclass(frozen=True)
class ExtractLimits:
    """The ``[transforms.extract]`` limits an extractor honours (picklable)."""

    max_pages: int = 500
    max_rows: int = 1000
    max_columns: int = 50
    max_output_bytes: int = 5_000_000
    max_unzipped_bytes: int = 200_000_000  # OOXML zip-bomb guard (total)
    max_zip_ratio: int = 100  # OOXML zip-bomb guard (per member)
    ocr_languages: tuple[str, ...] = ("eng",)
    ocr: bool = True
    searchable_pdf: bool = False
    # the time an extractor aims to finish in: past it, a long job (OCR page by page) stops
    # and returns what it has with a note; the pool kills a worker only later, at the
    # transform's ``timeout``, so a slow but genuine file keeps the text read so far
    seconds: float = 45.0


class ExtractionError(Exception):
    """This file's content cannot be extracted (the message says why, for the note).

    Never fails the record: the document lands with the attachment and a note section
    "text could not be extracted: <message>".
    """


Extractor = Callable[[Path, ExtractLimits], Extracted]


class RegisterExtractor:
    """The ``register`` argument of ``ingest_register_extractors``:
    ``register(mime_types, extractor, *, name)``."""

    def __init__(self, registry: ExtractorRegistry) -> None:
        self._registry = registry

    def __call__(self, mime_types: Sequence[str], extractor: Extractor, *, name: str) -> None:
        self._registry.register(mime_types, extractor, name=name)


@dataclass(frozen=True)
class Registered:
    """One registration: the extractor's name and function."""

    name: str
    extractor: Extractor


class ExtractorRegistry:
    """Extractors by MIME type. A pattern may end in ``/*`` (``image/*``); an exact type
    wins over a pattern. Registering a type twice is an error naming both extractors."""

    def __init__(self) -> None:
        self._by_type: dict[str, Registered] = {}

    def register(self, mime_types: Sequence[str], extractor: Extractor, *, name: str) -> None:
        if isinstance(mime_types, str):
            raise TypeError("register() takes a list of MIME types, not one string")
        if not callable(extractor):
            raise TypeError(f"extractor {name!r} is not callable")
        for raw in mime_types:
            mime = raw.strip().lower()
            if "/" not in mime:
                raise ValueError(f"extractor {name!r}: {raw!r} is not a MIME type")
            if mime in self._by_type:
                raise ValueError(
                    f"MIME type {mime!r} has two extractors: {self._by_type[mime].name!r}"
                    f" and {name!r}; block one of the plugins"
                )
            self._by_type[mime] = Registered(name, extractor)

    def lookup(self, mime_type: str | None) -> Registered | None:
        """The extractor for ``mime_type`` (parameters such as ``; charset`` ignored)."""
        if not mime_type:
            return None
        mime = mime_type.split(";")[0].strip().lower()
        found = self._by_type.get(mime)
        if found is not None:
            return found
        patterns = sorted((p for p in self._by_type if "*" in p), key=len, reverse=True)
        for pattern in patterns:
            if fnmatch.fnmatchcase(mime, pattern):
                return self._by_type[pattern]
        return None

    def types(self) -> dict[str, str]:
        """MIME type (or pattern) -> extractor name, sorted by type."""
        return {mime: reg.name for mime, reg in sorted(self._by_type.items())}

    def __contains__(self, mime_type: object) -> bool:
        return isinstance(mime_type, str) and self.lookup(mime_type) is not None

    def __len__(self) -> int:
        return len(self._by_type)


__all__ = [
    "Block",
    "ExtractLimits",
    "Extracted",
    "ExtractionError",
    "Extractor",
    "ExtractorRegistry",
    "Heading",
    "Html",
    "Picture",
    "RegisterExtractor",
    "Registered",
]
