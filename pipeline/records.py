"""The records that flow through the pipeline.

A source hands the engine a :class:`RecordDraft` (what it found: a file, a mail, a feed
item, with readable :class:`FileInput` s). The engine copies the bytes into the spool
and turns the draft into a :class:`DocumentRecord` whose files are :class:`Blob` s
(spooled path, size, sha256). Transforms, the router and the sink only ever see
``DocumentRecord`` s; they are pydantic models so the ledger can store them as JSON.

``(source, source_ref, version)`` is a record's identity in the ledger; ``content_hash``
is its dedupe key (its content's digest, qualified by the IT Glue instance it goes to).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SectionKind = Literal["text", "heading", "image"]
TargetKind = Literal["document", "attachment"]


class SectionImage(BaseModel):
    """A picture of an ``image`` section: a file the plugin that made it keeps until the
    record is delivered (e.g. a picture extracted from a DOCX)."""

    model_config = ConfigDict(frozen=True)

    file_name: str
    path: Path
    mime_type: str
    size: int
    sha256: str
    alt: str = ""


class Section(BaseModel):
    """A piece of document content, e.g. an email body. ``content`` is HTML; an ``image``
    section carries its picture in ``image`` (a gallery with that one picture)."""

    model_config = ConfigDict(frozen=True)

    kind: SectionKind = "text"
    content: str = ""
    level: int | None = None  # headings only, 1-6
    image: SectionImage | None = None  # image sections only

    @property
    def resource_type(self) -> str:
        """The IT Glue section type: ``Document::Text``, ``Document::Heading`` or
        ``Document::Gallery``."""
        return {
            "text": "Document::Text",
            "heading": "Document::Heading",
            "image": "Document::Gallery",
        }[self.kind]


class Blob(BaseModel):
    """A file of a record, staged in the spool (content-addressed by sha256)."""

    model_config = ConfigDict(frozen=True)

    file_name: str
    path: Path
    size: int
    sha256: str
    mime_type: str | None = None  # the effective type (sniffed by the mime transform)
    claimed_mime: str | None = None  # what the source said (extension, Content-Type)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Target(BaseModel):
    """Where a record lands in IT Glue.

    ``document`` (default): a new document in the organization, the files attached to it.
    ``attachment``: the files attached to an existing resource, found by
    ``resource_id`` or by ``resource_name`` (through the metadata cache).
    """

    model_config = ConfigDict(frozen=True)

    kind: TargetKind = "document"
    resource_type: str | None = None  # attachment target: configurations, contacts, ...
    resource_id: str | None = None
    resource_name: str | None = None
    publish: bool = False


class DocumentRecord(BaseModel):
    """One thing to land in IT Glue, as stored in the ledger."""

    id: int | None = None  # ledger row id, set once the record is received
    source: str
    source_ref: str
    version: str = ""
    name: str
    files: list[Blob] = Field(default_factory=list)
    sections: list[Section] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    organization: str | None = None  # organization name (hint from the source or routing)
    organization_id: str | None = None  # resolved by routing
    target: Target | None = None  # set by routing
    # the IT Glue instance ([itglue.instances.NAME]) it goes to, set by routing (a
    # source's `instance` until then); None with the single [itglue] table
    instance: str | None = None

    @property
    def content_hash(self) -> str:
        """The dedupe key in the ledger: :attr:`content_digest`, qualified by the instance
        when the record names one (the same content lands once in each instance)."""
        return qualified(self.content_digest, self.instance)

    @property
    def content_digest(self) -> str:
        """A sha256 over the files' hashes and the sections' content (what an
        instance's metadata cache knows a document by)."""
        h = hashlib.sha256()
        files = self.files
        if len(files) == 1:  # the common case, without the sort
            h.update(b"F" + files[0].sha256.encode())
        else:
            for sha in sorted(b.sha256 for b in files):
                h.update(b"F" + sha.encode())
        for section in self.sections:
            h.update(b"S" + hashlib.sha256(section.content.encode()).hexdigest().encode())
            if section.image is not None:
                h.update(b"I" + section.image.sha256.encode())
        return h.hexdigest()

    @property
    def total_size(self) -> int:
        return sum(b.size for b in self.files)


def qualified(digest: str, instance: str | None) -> str:
    """The :attr:`DocumentRecord.content_hash` of content whose
    :attr:`~DocumentRecord.content_digest` is ``digest``, going to ``instance``: one
    digest serves every instance a caller asks about."""
    if instance is None:
        return digest
    return hashlib.sha256(f"{instance}\0{digest}".encode()).hexdigest()


Opener = Callable[[], IO[bytes]]


@dataclass(frozen=True)
class FileInput:
    """A file a source hands to the engine: read once, streamed into the spool.

    Give exactly one of ``path`` (the engine opens it) or ``open`` (a callable returning
    a binary stream, e.g. an IMAP part or an HTTP download).
    """

    file_name: str
    path: Path | None = None
    open: Opener | None = None
    claimed_mime: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.open is None):
            raise ValueError("FileInput needs exactly one of path= or open=")


@dataclass
class RecordDraft:
    """What a source emits; the engine spools its files and makes a DocumentRecord."""

    source_ref: str
    name: str
    files: list[FileInput] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    organization: str | None = None
    version: str = ""  # a new version of a known source_ref is a new record


class Route(BaseModel):
    """The answer of ``ingest_route``: where a record goes."""

    model_config = ConfigDict(frozen=True)

    organization_id: str
    organization_name: str | None = None
    target: Target = Field(default_factory=Target)
    reason: str | None = None  # why there: "rule 2 ...", "auto: ...", shown by `status`
    instance: str | None = None  # the IT Glue instance (None: the record's, else the default)
