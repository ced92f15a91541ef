"""An :class:`~pipeline.Extracted` as document sections, in order.

Fewest requests first: consecutive HTML blocks share one text section up to
``max_section_bytes`` (split between elements beyond that); each heading (a ``Heading``
block or a top-level ``<h1>``-``<h6>`` of the HTML) is its own heading section, as IT
Glue shows headings in the document outline; each picture is an image section, stored
as a file under the plugin's folder until the record is delivered. The whole output is
capped at ``max_output_bytes``; a cut says so in the note.
"""

from __future__ import annotations

import hashlib
import html
import mimetypes
import os
from dataclasses import dataclass, field
from pathlib import Path

from itglue_common import safe_file_name
from pipeline import Extracted, Heading, Html, Picture, Section, SectionImage, sanitize_html

from . import htmltree


def note_section(note: str) -> Section:
    """The short note shown at the end of the document ("cut at 1,000 rows")."""
    return Section(kind="text", content=f"<p><em>{html.escape(note)}</em></p>")


@dataclass
class SectionBuilder:
    """Collects sections; ``pictures`` is the folder for this record's pictures."""

    pictures: Path
    max_section_bytes: int
    max_output_bytes: int
    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _html: list[htmltree.Node] = field(default_factory=list)
    _used: int = 0
    _cut: bool = False

    def add(self, extracted: Extracted) -> list[Section]:
        for block in extracted.blocks:
            if self._cut:
                break
            if isinstance(block, Heading):
                self._heading(block.text, block.level)
            elif isinstance(block, Html):
                self._fragment(block.html)
            elif isinstance(block, Picture):
                self._picture(block)
        self._flush()
        notes = ([extracted.note] if extracted.note else []) + self.notes
        if notes:
            self.sections.append(note_section(" ".join(notes)))
        return self.sections

    def _spend(self, n: int) -> bool:
        if self._used + n > self.max_output_bytes:
            self._cut = True
            self.notes.append(
                f"The content was cut at {self.max_output_bytes:,} bytes"
                " ([transforms.extract] max_output_bytes); the attached file has all of it."
            )
            return False
        self._used += n
        return True

    def _heading(self, text: str, level: int) -> None:
        text = " ".join(text.split())
        if not text:
            return
        self._flush()
        content = html.escape(text, quote=False)
        if self._spend(len(content)):
            self.sections.append(Section(kind="heading", content=content, level=level))

    def _fragment(self, fragment: str) -> None:
        for node in htmltree.parse(sanitize_html(fragment)):
            if isinstance(node, htmltree.Element) and node.tag in htmltree.HEADINGS:
                self._heading(htmltree.plain_text(node), htmltree.HEADINGS[node.tag])
            elif isinstance(node, str) and not node.strip():
                continue
            elif self._spend(htmltree.size(htmltree.to_html(node))):
                self._html.append(node)
            else:
                return

    def _flush(self) -> None:
        if not self._html:
            return
        for piece in htmltree.pack(self._html, self.max_section_bytes):
            self.sections.append(Section(kind="text", content=piece))
        self._html = []

    def _picture(self, picture: Picture) -> None:
        if not picture.data or not self._spend(len(picture.data)):
            return
        self._flush()
        sha = hashlib.sha256(picture.data).hexdigest()
        index = len(self.sections)
        extension = mimetypes.guess_extension(picture.mime) or ""
        name = safe_file_name(picture.name, f"image-{index}{extension}")
        path = self.pictures / f"{index:04d}-{sha[:16]}{extension}"
        store(path, picture.data)
        image = SectionImage(
            file_name=name,
            path=path,
            mime_type=picture.mime,
            size=len(picture.data),
            sha256=sha,
            alt=picture.alt,
        )
        self.sections.append(Section(kind="image", image=image))


def store(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (0600, folders 0700) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
