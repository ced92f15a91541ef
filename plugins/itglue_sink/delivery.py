"""One attempt at delivering one record: each step journaled right after it succeeded,
a create whose answer was lost reconciled before anything is created again."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core_client import exceptions as itg
from core_client.client import ITGlueClient
from itglue_common import human_size
from pipeline import (
    Blob,
    DeliveryResult,
    DocumentRecord,
    PermanentError,
    SectionImage,
    StepJournal,
    Target,
    TransientError,
    sanitize_html,
)

from .matching import is_one_of, match_attachment, name_key, parse_time

if TYPE_CHECKING:
    from .sink import ItglueSink

log = logging.getLogger("itglue_ingest.sink")

# the record metadata key the extract transform puts a file's plain text under (issue 13)
EXTRACTED_TEXT = "extract_text"


class Delivery:
    """One attempt at delivering one record (keeps its request count and current step)."""

    def __init__(self, sink: ItglueSink, record: DocumentRecord, journal: StepJournal) -> None:
        self.sink = sink
        self.record = record
        self.journal = journal
        self.requests = 0
        self.doing = "starting the delivery"
        # True when an earlier attempt may have added sections/attachments that it could
        # not journal (the document existed before this attempt): list before adding.
        self.resumed = False

    @property
    def client(self) -> ITGlueClient:
        return self.sink.context.itglue(self.record.instance)

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.doing = what
        self.requests += 1
        return fn(*args, **kwargs)

    def taken_by_another(self, step: str, value: str) -> bool:
        """Whether another record journaled ``value`` under ``step`` (a GLOB pattern)."""
        return self.journal.taken_by_another(step, value)

    def not_taken(self, attachments: Iterable[Any]) -> list[Any]:
        """``attachments`` without those another record uploaded: a shared target (a
        configuration) holds other records' files, maybe of the same name and size."""
        return [a for a in attachments if not self.taken_by_another("attachment:*", str(a.id))]

    def settle(self) -> float:
        """How long to wait before looking again for what a request whose answer was lost
        made: the server may still be working on it (a gateway or our read timeout gave up
        first), and looking again too soon finds nothing and creates it a second time. One
        read timeout more, capped by ``[pipeline] retry_max``."""
        limits = self.sink.context.limits
        return float(min(limits.request_timeout, limits.retry_max))

    def done(self, step: str) -> str | None:
        value = self.journal.get(step)
        return value or None  # "" marks a step reset after its resource vanished

    # -- target document ---------------------------------------------------------------

    def document(self, *, publish: bool) -> DeliveryResult:
        record = self.record
        org_id = record.organization_id
        if not org_id:
            raise PermanentError(
                "the record has no organization id: add 'route' to [pipeline] transforms"
            )
        doc_id, url = self.ensure_document(org_id)
        self.sections(doc_id)
        attachment_ids = self.attachments("documents", doc_id)
        if publish and not self.done("published"):
            self.call(f"publishing document {doc_id}", self.client.publish_document, doc_id)
            self.journal.record("published", "1")
        self.remember(doc_id, org_id, attachment_ids)
        self.sink.release(doc_id, self.record.instance)
        return DeliveryResult(
            organization_id=org_id,
            resource_type="documents",
            resource_id=doc_id,
            attachment_ids=attachment_ids,
            url=url,
            requests=self.requests,
        )

    def ensure_document(self, org_id: str) -> tuple[str, str | None]:
        """The journaled document, a reconciled one, or a new one (recorded at once)."""
        doc_id = self.done("document")
        if doc_id:
            self.sink.claim(doc_id, self.record)
            self.resumed = True
            return doc_id, None
        with self.sink.create_lock(self.record.instance, org_id, self.record.name):
            return self._reconcile_or_create(org_id)

    def _reconcile_or_create(self, org_id: str) -> tuple[str, str | None]:
        pending = self.done("document.pending")
        if pending:
            found = self.reconcile_document(org_id, since=pending)
            if found:
                self.journal.record("document", found)
                self.resumed = True
                return found, None
        sent_at = datetime.now(UTC).isoformat()
        self.journal.record("document.pending", sent_at)
        what = f"creating document {self.record.name!r} in organization {org_id}"
        try:
            doc = self.call(what, self.client.create_document, org_id, self.record.name)
        except itg.AmbiguousOutcomeError:
            found = self.reconcile_document(org_id, since=sent_at)
            if not found:
                raise TransientError(
                    f"{what}: the answer was lost and no such document exists (yet); it is"
                    " looked for again, then created, on the next attempt",
                    retry_after=self.settle(),
                ) from None
            self.journal.record("document", found)
            self.resumed = True
            return found, None
        except (itg.CircuitOpenError, itg.TransportError, itg.ClientClosedError):
            self.journal.record("document.pending", "")  # not sent: nothing to reconcile
            raise
        doc_id = str(doc.id)
        self.sink.claim(doc_id, self.record)
        self.journal.record("document", doc_id)
        return doc_id, getattr(doc, "resource_url", None)

    def reconcile_document(self, org_id: str, *, since: str | None) -> str | None:
        """An existing document that an earlier, unanswered create made, or None.

        Candidates: same name (case-insensitive), created no earlier than the pending
        marker (less ``reconcile_clock_skew``), not known to the cache as another
        content's document, and whose attachments (if any yet) are all files of this
        record by name and size -- a same-named document someone made by hand is not ours.
        """
        record = self.record
        self.doing = f"reconciling document {record.name!r} in organization {org_id}"
        self.requests += 1
        docs = [
            d
            for d in self.client.list_documents(org_id)
            if name_key(getattr(d, "name", None)) == name_key(record.name)
        ]
        not_before = parse_time(since)
        if not_before is not None:
            not_before -= timedelta(seconds=self.sink.opts.reconcile_clock_skew)
        cache = self.sink.context.metadata_cache(self.record.instance)
        ours = {(b.file_name, b.size) for b in record.files}
        for doc in sorted(docs, key=lambda d: (len(str(d.id)), str(d.id)), reverse=True):
            created = parse_time(getattr(doc, "created_at", None))
            if not_before is not None and created is not None and created < not_before:
                continue
            if self.taken_by_another("document", str(doc.id)):
                continue  # another record created it (and resumes into it)
            cached = cache.get_cached_document(doc.id)
            if cached is not None and cached.sha256 and cached.sha256 != record.content_digest:
                continue
            if record.files:
                self.requests += 1
                atts = list(self.client.list_attachments("documents", str(doc.id)))
                if not all(is_one_of(a, ours) for a in atts):
                    continue
            if not self.sink.claim(str(doc.id), record):
                continue  # another record of this process is filling it
            log.info(
                "reconciled: document %s already exists for %r (its create's answer was lost)",
                doc.id,
                record.source_ref,
            )
            return str(doc.id)
        return None

    def sections(self, doc_id: str) -> None:
        """Add the record's sections in order; on a resumed delivery, adopt the ones an
        earlier attempt made but could not journal (sections are only ever appended to a
        document this record owns, so the server's count says how far it got). An image
        section is a gallery section, then its picture (step ``image:<i>``)."""
        created = 0  # sections this record has on the server before section i
        existing: list[Any] | None = None
        for i, section in enumerate(self.record.sections):
            step = f"section:{i}"
            value = self.done(step)
            if value:
                created += value != "skipped"
                if section.image is not None and value != "skipped":
                    self.image(doc_id, i, value, section.image)
                continue
            if section.kind == "image":
                content = ""
                if section.image is None:
                    self.journal.record(step, "skipped")
                    continue
            else:
                content = sanitize_html(section.content, allow_images=self.sink.opts.allow_images)
                if not content.strip():
                    self.journal.record(step, "skipped")
                    continue
            if self.resumed:
                if existing is None:
                    self.requests += 1
                    self.doing = f"listing the sections of document {doc_id}"
                    existing = sorted(
                        self.client.list_document_sections(doc_id),
                        key=lambda s: (s.sort or 0, len(s.id), s.id),
                    )
                if len(existing) > created:
                    self.journal.record(step, str(existing[created].id))
                    created += 1
                    if section.image is not None:
                        self.image(doc_id, i, str(existing[created - 1].id), section.image)
                    continue
            attrs: dict[str, Any] = {"content": content} if content else {}
            if section.kind == "heading":
                attrs["level"] = section.level or 2
            try:
                made = self.call(
                    f"adding section {i} to document {doc_id}",
                    self.client.create_document_section,
                    doc_id,
                    section.resource_type,
                    **attrs,
                )
            except itg.AmbiguousOutcomeError:
                raise TransientError(
                    f"adding section {i} to document {doc_id}: the answer was lost; the"
                    " document's sections are checked on the next attempt",
                    retry_after=self.settle(),
                ) from None
            self.journal.record(step, str(made.id))
            created += 1
            if section.image is not None:
                self.image(doc_id, i, str(made.id), section.image)

    def image(self, doc_id: str, i: int, gallery_id: str, image: SectionImage) -> None:
        """Put section ``i``'s picture into its gallery, once. When an earlier attempt
        sent it (its pending mark is journaled) but could not journal the answer, the
        gallery is read first: a picture of this name and size in it is that upload."""
        step = f"image:{i}"
        if self.done(step):
            return
        if self.done(f"{step}.pending"):
            found = self.find_image(doc_id, gallery_id, image)
            if found:
                self.journal.record(step, found)
                return
        try:
            data = image.path.read_bytes()
        except FileNotFoundError:
            raise PermanentError(
                f"the extracted picture {image.file_name!r} of section {i} is gone"
                f" ({image.path}); itglue-ingest retry extracts the file again"
            ) from None
        self.journal.record(f"{step}.pending", "1")
        what = f"adding picture {image.file_name!r} to section {gallery_id} of document {doc_id}"
        try:
            made = self.call(
                what,
                self.client.create_document_image,
                "gallery",
                gallery_id,
                data=data,
                file_name=image.file_name,
            )
        except itg.AmbiguousOutcomeError:
            raise TransientError(
                f"{what}: the answer was lost; the gallery is checked on the next attempt",
                retry_after=self.settle(),
            ) from None
        self.journal.record(step, str(made.id))

    def find_image(self, doc_id: str, gallery_id: str, image: SectionImage) -> str | None:
        """The id of a picture of ``image``'s name and size in the gallery, or None."""
        self.doing = f"reading gallery section {gallery_id} of document {doc_id}"
        self.requests += 1
        gallery = self.client.get_document_section(doc_id, gallery_id)
        for item in gallery.images or []:
            size = item.get("image-file-size", item.get("image_file_size"))
            if item.get("file-name", item.get("file_name")) == image.file_name and (
                size is None or int(size) == image.size
            ):
                return str(item["id"])
        return None

    def attachments(self, resource_type: str, resource_id: str) -> list[str]:
        """Upload the record's files in order, each journaled at once. On a resumed
        delivery the resource's attachments are listed once (not per file) and files
        already there by name and size are adopted instead of uploaded again."""
        ids: list[str] = []
        listed: list[Any] | None = None
        for k, blob in enumerate(self.record.files):
            step = f"attachment:{k}"
            value = self.done(step)
            if value:
                ids.append(value)
                continue
            if self.resumed:
                if listed is None:
                    self.requests += 1
                    self.doing = f"listing the attachments of {resource_type}/{resource_id}"
                    listed = self.not_taken(
                        self.client.list_attachments(resource_type, resource_id)
                    )
                found = match_attachment(listed, blob, ids)
                if found:
                    self.journal.record(step, found)
                    ids.append(found)
                    continue
            what = (
                f"uploading {blob.file_name!r} ({human_size(blob.size)}) to"
                f" {resource_type}/{resource_id}"
            )
            try:
                att = self.call(
                    what,
                    self.client.upload_attachment,
                    resource_type,
                    resource_id,
                    path=blob.path,
                    file_name=blob.file_name,
                )
            except itg.AmbiguousOutcomeError:
                found = self.reconcile_attachment(resource_type, resource_id, blob, ids)
                if not found:
                    raise TransientError(
                        f"{what}: the answer was lost and the file is not there (yet); it is"
                        " looked for again, then uploaded, on the next attempt",
                        retry_after=self.settle(),
                    ) from None
                self.journal.record(step, found)
                ids.append(found)
                continue
            except FileNotFoundError:
                raise PermanentError(
                    f"the spooled copy of {blob.file_name!r} is gone ({blob.path}); the"
                    " original stays with the source: itglue-ingest retry re-reads it"
                ) from None
            self.journal.record(step, str(att.id))
            ids.append(str(att.id))
        return ids

    def reconcile_attachment(
        self, resource_type: str, resource_id: str, blob: Blob, taken: Iterable[str]
    ) -> str | None:
        """An attachment of the resource with this file's name and size not yet claimed."""
        self.doing = f"reconciling {blob.file_name!r} on {resource_type}/{resource_id}"
        self.requests += 1
        found = match_attachment(
            self.not_taken(self.client.list_attachments(resource_type, resource_id)), blob, taken
        )
        if found:
            log.info(
                "reconciled: %s already on %s/%s as attachment %s",
                blob.file_name,
                resource_type,
                resource_id,
                found,
            )
        return found

    def remember(self, doc_id: str, org_id: str, attachment_ids: list[str]) -> None:
        """Record the document in the metadata cache so later copies dedupe against it,
        and make it findable by its content (``cache search``) when it was extracted."""
        try:
            cache = self.sink.context.metadata_cache(self.record.instance)
            cache.record_document(
                doc_id,
                sha256=self.record.content_digest,
                size=self.record.total_size,
                organization_id=org_id,
                name=self.record.name,
                attachment_ids=attachment_ids,
            )
            text = self.record.metadata.get(EXTRACTED_TEXT)
            if isinstance(text, str) and text.strip():
                cache.index_document_text(doc_id, text)
        except Exception:  # the document landed; a cache hiccup must not redeliver it
            log.warning("could not record document %s in the metadata cache", doc_id, exc_info=True)

    # -- target attachment -------------------------------------------------------------

    def attachments_to_resource(self, target: Target) -> DeliveryResult:
        if not (target.resource_type and target.resource_id):
            raise PermanentError(
                "the attachment target has no resource id: add 'route' to [pipeline]"
                " transforms (it resolves resource_name to an id)"
            )
        if self.record.sections:
            log.info(
                "%s: %d section(s) not delivered (an attachment target takes files only)",
                self.record.source_ref,
                len(self.record.sections),
            )
        # The resource existed before: a crash between an upload and its journal entry is
        # only detectable through this marker, written once before the first upload.
        self.resumed = bool(self.done("attachments.started"))
        if not self.resumed:
            self.journal.record("attachments.started", "1")
        ids = self.attachments(target.resource_type, target.resource_id)
        return DeliveryResult(
            organization_id=self.record.organization_id,
            resource_type=target.resource_type,
            resource_id=target.resource_id,
            attachment_ids=ids,
            requests=self.requests,
        )
