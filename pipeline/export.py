"""Resumable export of one organization: documents as HTML, every attachment as a file.

The tree under ``DIR``::

    manifest.json                         what is there: sha256, size, updated_at, source
    documents/<name> (<id>).html          a document's sections, sanitized, with its title
    attachments/<collection>/<name> (<id>)/<file name>

A re-run compares each source's ``updated_at`` and size with the manifest and fetches
only what changed. Files are written beside their final name and renamed into place
(:mod:`core_client.download`), and the manifest is rewritten (atomically) after each
file, so a killed export leaves no half file under a final name and resumes where it was.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core_client.download import PART_SUFFIX
from core_client.exceptions import DownloadError, ITGlueError, NotFoundError
from itglue_common import safe_file_name
from itglue_common.sanitize import sanitize_html

if TYPE_CHECKING:
    from core_client.client import ITGlueClient
    from core_client.models import Attachment, Document, Resource

log = logging.getLogger("itglue_ingest.export")

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
# the organization's records that take attachments and are listed under it
# (docs/itglue-api.md section 5); flexible assets are listed per asset type
ORG_COLLECTIONS = (
    "documents",
    "configurations",
    "contacts",
    "locations",
    "passwords",
    "domains",
    "ssl_certificates",
    "checklists",
    "checklist_templates",
    "tickets",
)


@dataclass
class ExportReport:
    written: list[str] = field(default_factory=list)  # relative paths fetched this run
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)  # "what: why"
    skipped_collections: list[str] = field(default_factory=list)
    bytes_written: int = 0


Progress = Callable[[str, str], None]  # (event, relative path): "written"/"unchanged"/"failed"


class Manifest:
    """``manifest.json``: one entry per source (``attachments/123``, ``documents/45``)."""

    def __init__(self, root: Path, organization: dict[str, str]) -> None:
        self.path = root / MANIFEST
        self.entries: dict[str, dict[str, Any]] = {}
        self.organization = organization
        if self.path.exists():
            try:
                doc = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise ExportError(f"{self.path}: unreadable manifest ({e})") from None
            if doc.get("version") != MANIFEST_VERSION or not isinstance(doc.get("files"), dict):
                raise ExportError(f"{self.path}: not an export manifest of this version")
            old_org = (doc.get("organization") or {}).get("id")
            if old_org and old_org != organization["id"]:
                raise ExportError(
                    f"{root} holds an export of another organization "
                    f"({doc['organization'].get('name')!r}); choose another folder"
                )
            self.entries = doc["files"]

    def is_current(self, root: Path, source: str, updated_at: str | None, size: int | None) -> bool:
        entry = self.entries.get(source)
        if not entry or entry.get("updated_at") != updated_at:
            return False
        if size is not None and entry.get("size") != size:
            return False
        target = root / str(entry["path"])
        return target.is_file() and target.stat().st_size == int(entry.get("size", -1))

    def record(self, source: str, entry: dict[str, Any]) -> str | None:
        """Store the entry; the previous path when the file moved (renamed at the source)."""
        old = self.entries.get(source)
        self.entries[source] = entry
        if old and old.get("path") != entry["path"]:
            return str(old["path"])
        return None

    def save(self) -> None:
        doc = {
            "version": MANIFEST_VERSION,
            "organization": self.organization,
            "files": dict(sorted(self.entries.items())),
        }
        _write_atomic(self.path, json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8"))


class ExportError(Exception):
    """The export cannot start or continue (bad folder, foreign manifest)."""


class OrganizationExport:
    """One run of the export of ``organization_id`` into ``root``."""

    def __init__(
        self,
        client: ITGlueClient,
        organization: Resource,
        root: Path,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.org_id = organization.id
        self.root = root
        self.progress = progress or (lambda event, path: None)
        self.report = ExportReport()
        self.manifest = Manifest(
            root, {"id": organization.id, "name": str(organization.attr("name") or "")}
        )
        self._taken: set[str] = {str(e["path"]) for e in self.manifest.entries.values()}

    def run(self) -> ExportReport:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        _remove_partials(self.root)
        for collection in ORG_COLLECTIONS:
            try:
                records = list(self._records(collection))
            except NotFoundError:
                # an account or region without this resource: say so, go on
                self.report.skipped_collections.append(collection)
                log.warning("export: %s cannot be listed here (404); skipped", collection)
                continue
            for record in records:
                if collection == "documents":
                    self._document(record)  # type: ignore[arg-type]
                self._attachments_of(collection, record)
        for asset in self._flexible_assets():
            self._attachments_of("flexible_assets", asset)
        self.manifest.save()
        return self.report

    # -- what the organization has ---------------------------------------------------
    def _records(self, collection: str) -> Iterator[Resource]:
        resources = getattr(self.client, collection)
        return resources.within(self.org_id).list()  # type: ignore[no-any-return]

    def _flexible_assets(self) -> Iterator[Resource]:
        for kind in self.client.flexible_asset_types.list():
            yield from self.client.list_flexible_assets(
                kind.id, filters={"organization_id": self.org_id}
            )

    # -- documents -------------------------------------------------------------------
    def _document(self, doc: Document) -> None:
        source = f"documents/{doc.id}"
        if self.manifest.is_current(self.root, source, doc.updated_at, None):
            self._unchanged(source)
            return
        title = doc.name or f"Document {doc.id}"
        rel = self._place(
            source, "documents", f"{safe_file_name(title, 'document')} ({doc.id})", ".html"
        )
        try:
            sections = sorted(
                self.client.list_document_sections(doc.id), key=lambda s: (s.sort or 0, s.id)
            )
            data = render_document(title, sections).encode("utf-8")
            _write_atomic(self.root / rel, data)
        except (ITGlueError, OSError) as e:
            self._failed(f"document {doc.id} ({title})", e)
            return
        self._written(
            source,
            rel,
            {
                "kind": "document",
                "source_id": doc.id,
                "updated_at": doc.updated_at,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "title": title,
            },
        )

    # -- attachments -----------------------------------------------------------------
    def _attachments_of(self, collection: str, record: Resource) -> None:
        try:
            attachments = sorted(
                self.client.list_attachments(collection, record.id), key=lambda a: int(a.id)
            )
        except ITGlueError as e:
            self._failed(f"attachments of {collection} {record.id}", e)
            return
        label = str(record.attr("name") or record.attr("hostname") or collection[:-1])
        folder = f"attachments/{collection}/{safe_file_name(label, 'record')} ({record.id})"
        for att in attachments:
            self._attachment(collection, record.id, att, folder)

    def _attachment(self, collection: str, record_id: str, att: Attachment, folder: str) -> None:
        source = f"attachments/{att.id}"
        if self.manifest.is_current(self.root, source, att.updated_at, att.attachment_file_size):
            self._unchanged(source)
            return
        name = safe_file_name(
            att.name or att.file_name or att.attachment_file_name, f"attachment-{att.id}"
        )
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, ext = name, ""
        rel = self._place(source, folder, stem, f".{ext}" if ext else "", unique_by=att.id)
        dest = self.root / rel
        try:
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            got = self.client.download_attachment_to(collection, record_id, att, dest)
        except (ITGlueError, OSError) as e:
            self._failed(f"attachment {att.id} ({name}) of {collection} {record_id}", e)
            return
        self.report.bytes_written += got.size
        self._written(
            source,
            rel,
            {
                "kind": "attachment",
                "source_id": att.id,
                "resource_type": collection,
                "resource_id": record_id,
                "name": att.name,
                "updated_at": att.updated_at,
                "size": got.size,
                "sha256": got.sha256,
            },
        )

    # -- bookkeeping -----------------------------------------------------------------
    def _place(
        self, source: str, folder: str, stem: str, ext: str, unique_by: str | None = None
    ) -> str:
        """A relative path for ``source``: its manifest path when the name is the same,
        else a free one (`` (<id>)`` added on a clash with another source)."""
        rel = f"{folder}/{stem}{ext}"
        current = self.manifest.entries.get(source, {}).get("path")
        if rel == current:
            return rel
        if rel in self._taken and unique_by is not None:
            rel = f"{folder}/{stem} ({unique_by}){ext}"
        self._taken.add(rel)
        return rel

    def _written(self, source: str, rel: str, entry: dict[str, Any]) -> None:
        moved = self.manifest.record(source, {"path": rel, **entry})
        if moved:
            (self.root / moved).unlink(missing_ok=True)  # renamed at the source
            self._taken.discard(moved)
        self.manifest.save()  # a killed run resumes from here
        self.report.written.append(rel)
        self.progress("written", rel)

    def _unchanged(self, source: str) -> None:
        self.report.unchanged += 1
        self.progress("unchanged", str(self.manifest.entries[source]["path"]))

    def _failed(self, what: str, error: Exception) -> None:
        kind = "download" if isinstance(error, DownloadError) else type(error).__name__
        self.report.failed.append(f"{what}: {kind}: {error}")
        log.warning("export: %s failed: %s", what, error)
        self.progress("failed", what)


def render_document(title: str, sections: list[Any]) -> str:
    """A standalone HTML page: the title, then each section's sanitized HTML."""
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        content = sanitize_html(section.content or "")
        if section.section_type == "Document::Heading":
            level = min(max(int(section.level or 2), 1), 6)
            parts.append(f"<h{level}>{content}</h{level}>")
        else:
            parts.append(f"<section>{content}</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, part = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:100]}.", suffix=PART_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, path)
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise


def _remove_partials(root: Path) -> None:
    """Leftovers of a killed run (only our hidden ``.<name>.<random>.part`` files)."""
    for part in root.rglob(f".*{PART_SUFFIX}"):
        if part.is_file():
            part.unlink()


__all__ = ["MANIFEST", "ExportError", "ExportReport", "OrganizationExport", "render_document"]
