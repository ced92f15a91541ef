"""The ``itglue`` sink: land a routed record in IT Glue, resumably and exactly once.

One request per step (the document, each section, each attachment, the publish flag),
each journaled in the ledger right after it succeeded, so a redelivery after a crash
skips what is done. A create whose answer was lost is reconciled (what exists is listed
and matched) before anything is created again: a second create would duplicate the
document. Section HTML is sanitized with a small nh3 allowlist, because mail bodies and
feed texts are untrusted. 401/403 retry later, loudly: a rotated key should pause
delivery, not fail every record it touches.

The steps, the reconciliation rules, what a document costs in requests and how client
errors map onto the pipeline's: docs/internals.md, "The IT Glue sink".
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import nh3
from pydantic import Field

from core_client import exceptions as itg
from core_client.client import ITGlueClient
from itglue_common import human_size
from pipeline import (
    Blob,
    DeliveryResult,
    DocumentRecord,
    EngineContext,
    PermanentError,
    Sink,
    SinkOptions,
    StepJournal,
    Target,
    TransientError,
    hookimpl,
)

log = logging.getLogger("itglue_ingest.sink")

# --------------------------------------------------------------------------- sanitizing

SAFE_TAGS: frozenset[str] = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd",
        "del", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
        "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span",
        "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
        "tr", "u", "ul",
    }
)  # fmt: skip
SAFE_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start"},
}
IMAGE_ATTRIBUTES = {"src", "alt", "title", "width", "height"}
URL_SCHEMES = {"http", "https", "mailto"}


def sanitize_html(html: str, *, allow_images: bool = False) -> str:
    """``html`` reduced to the allowlist (scripts, styles, svg, handlers removed)."""
    tags = set(SAFE_TAGS)
    attributes = {k: set(v) for k, v in SAFE_ATTRIBUTES.items()}
    if allow_images:
        tags.add("img")
        attributes["img"] = set(IMAGE_ATTRIBUTES)
    return nh3.clean(
        html,
        tags=tags,
        attributes=attributes,
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        clean_content_tags={"script", "style", "svg", "math", "noscript", "template", "title"},
    )


# --------------------------------------------------------------------------- options


class ItglueSinkOptions(SinkOptions):
    """``[sinks.itglue]``."""

    publish: bool = False  # publish every document (a route's target.publish also does)
    max_file_size: int | None = Field(default=None, gt=0)  # bytes; default [pipeline]'s
    allow_images: bool = False  # keep <img> (http/https) in section HTML
    reconcile_clock_skew: float = Field(default=900.0, ge=0)  # seconds, see _reconcile_document


def _name_key(name: str | None) -> str:
    return unicodedata.normalize("NFKC", name or "").casefold().strip()


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _attachment_name(att: Any) -> str:
    return str(getattr(att, "attachment_file_name", None) or getattr(att, "name", None) or "")


def _match_attachment(listed: Iterable[Any], blob: Blob, taken: Iterable[str]) -> str | None:
    """The id of an attachment in ``listed`` that is ``blob`` (name and, when IT Glue
    says it, size) and not one of ``taken``."""
    claimed = set(taken)
    for att in listed:
        if str(att.id) in claimed or _attachment_name(att) != blob.file_name:
            continue
        size = getattr(att, "attachment_file_size", None)
        if size is not None and int(size) != blob.size:
            continue
        return str(att.id)
    return None


def _is_one_of(att: Any, files: set[tuple[str, int]]) -> bool:
    """Whether attachment ``att`` is one of ``files`` (name, size); size when IT Glue says it."""
    name, size = _attachment_name(att), getattr(att, "attachment_file_size", None)
    if size is None:
        return any(name == n for n, _ in files)
    return (name, int(size)) in files


# --------------------------------------------------------------------------- the sink


class ItglueSink(Sink):
    """Deliver records through the engine's IT Glue client (see the module docstring)."""

    options_model = ItglueSinkOptions

    def __init__(self, name: str, options: Any, context: EngineContext) -> None:
        super().__init__(name, options, context)
        self.opts: ItglueSinkOptions = (
            options
            if isinstance(options, ItglueSinkOptions)
            else ItglueSinkOptions.model_validate(options or {})
        )
        self._auth_logged = 0.0
        self._auth_logged_lock = threading.Lock()
        # document id -> the record (source, source_ref, version) that made it, for this
        # process: reconciliation must not adopt a same-named document that another
        # record is still filling (two "Scan" records in one organization at once).
        self._claims: dict[str, tuple[str, str, str]] = {}
        self._claims_lock = threading.Lock()
        # Held from a create's request until its id is claimed, and around a
        # reconciliation, per (organization, name) stripe: otherwise a lost create's
        # reconciliation can list a same-named document whose create has committed but
        # whose answer (and claim) has not arrived yet, and adopt it.
        self._create_locks = [threading.Lock() for _ in range(64)]

    def claim(self, document_id: str, record: DocumentRecord) -> bool:
        """Mark ``document_id`` as ``record``'s; False if another record claimed it."""
        me = (record.source, record.source_ref, record.version)
        with self._claims_lock:
            return self._claims.setdefault(document_id, me) == me

    def create_lock(self, organization_id: str, name: str) -> threading.Lock:
        """The lock serialising creates and reconciliations of ``name`` in an organization."""
        key = hash((organization_id, _name_key(name)))
        return self._create_locks[key % len(self._create_locks)]

    def release(self, document_id: str) -> None:
        """The document is complete (and in the cache with its hash): no claim needed."""
        with self._claims_lock:
            self._claims.pop(document_id, None)

    # -- limits ------------------------------------------------------------------------

    @property
    def max_file_size(self) -> int:
        if self.opts.max_file_size is not None:
            return self.opts.max_file_size
        return self.context.limits.max_file_size

    def _check_sizes(self, record: DocumentRecord) -> None:
        limit = self.max_file_size
        for blob in record.files:
            if blob.size > limit:
                raise PermanentError(
                    f"file {blob.file_name!r} is {human_size(blob.size)}, over the upload limit"
                    f" of {human_size(limit)} ([sinks.{self.name}] max_file_size /"
                    " [pipeline] max_file_size); nothing was sent -- raise the limit or"
                    " split the file"
                )

    # -- dedupe ------------------------------------------------------------------------

    def find_existing(self, record: DocumentRecord) -> str | None:
        """A document recorded in the metadata cache with this content (and organization,
        when ``[pipeline] dedupe_scope = "organization"``), as ``documents/<id>``."""
        target = record.target or Target()
        if target.kind != "document" or not (record.files or record.sections):
            return None
        scope = self.context.limits.dedupe_scope
        org = record.organization_id if scope == "organization" else None
        if scope == "organization" and org is None:
            return None
        found = self.context.metadata_cache().find_documents_by_hash(record.content_hash, org)
        return f"documents/{found[0].id}" if found else None

    # -- delivery ----------------------------------------------------------------------

    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        self._check_sizes(record)  # before any request, however far an earlier try got
        target = record.target or Target()
        delivery = _Delivery(self, record, journal)
        try:
            if target.kind == "attachment":
                return delivery.attachments_to_resource(target)
            return delivery.document(publish=target.publish or self.opts.publish)
        except itg.NotFoundError as e:
            doc = journal.get("document")
            if target.kind == "document" and doc and not delivery.doing.startswith("creating"):
                # someone deleted the half-made document: start over with a new one
                for step, value in journal.steps().items():
                    if value:
                        journal.record(step, "")
                raise TransientError(
                    f"document {doc} vanished from IT Glue while {delivery.doing}; it is"
                    " created again on the next attempt"
                ) from e
            raise self.map_error(e, delivery.doing, record) from e
        except itg.ITGlueError as e:
            raise self.map_error(e, delivery.doing, record) from e

    def map_error(
        self, e: itg.ITGlueError, what: str, record: DocumentRecord
    ) -> PermanentError | TransientError:
        """The pipeline error for a client error met while doing ``what``."""
        if isinstance(e, itg.AuthenticationError):
            self._log_auth(e)
            return TransientError(
                f"IT Glue refused the API key (HTTP {e.status}) while {what}; check the key"
                " (itglue-ingest auth ...) and the region/base_url -- records wait and are"
                " retried, none is failed for this",
                retry_after=300.0,
            )
        if isinstance(e, itg.ConfigurationError):
            return PermanentError(f"the IT Glue client is not usable: {e}")
        if isinstance(e, itg.PayloadTooLargeError):
            return PermanentError(
                f"IT Glue refused {what} as too large (HTTP 413); set [sinks.{self.name}]"
                " max_file_size below this size so such files fail before upload, or split"
                " the file"
            )
        if isinstance(e, itg.ValidationError):
            details = "; ".join(f"{p}: {d}" if p else d for p, d in e.errors) or e.message
            return PermanentError(f"IT Glue refused {what} (HTTP {e.status}): {details}")
        if isinstance(e, itg.NotFoundError):
            return PermanentError(
                f"IT Glue answered 404 while {what}: the organization"
                f" {record.organization!r} (id {record.organization_id}) or the target no"
                " longer exists; fix the routing (itglue-ingest cache refresh updates the"
                " organization list), then itglue-ingest retry"
            )
        if e.transient:
            retry_after = getattr(e, "retry_after", None)
            return TransientError(
                f"{what}: {type(e).__name__}: {e}",
                retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
            )
        return PermanentError(f"IT Glue error while {what}: {e}")

    def _log_auth(self, e: itg.AuthenticationError) -> None:
        with self._auth_logged_lock:
            if time.monotonic() - self._auth_logged < 60:
                return
            self._auth_logged = time.monotonic()
        log.error(
            "IT Glue refused the API key (HTTP %s): deliveries are paused until the key"
            " works again; check it with `itglue-ingest health`",
            e.status,
        )


class _Delivery:
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
        return self.sink.context.itglue()

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
        self.sink.release(doc_id)
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
        with self.sink.create_lock(org_id, self.record.name):
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
            if _name_key(getattr(d, "name", None)) == _name_key(record.name)
        ]
        not_before = _parse_time(since)
        if not_before is not None:
            not_before -= timedelta(seconds=self.sink.opts.reconcile_clock_skew)
        cache = self.sink.context.metadata_cache()
        ours = {(b.file_name, b.size) for b in record.files}
        for doc in sorted(docs, key=lambda d: (len(str(d.id)), str(d.id)), reverse=True):
            created = _parse_time(getattr(doc, "created_at", None))
            if not_before is not None and created is not None and created < not_before:
                continue
            if self.taken_by_another("document", str(doc.id)):
                continue  # another record created it (and resumes into it)
            cached = cache.get_cached_document(doc.id)
            if cached is not None and cached.sha256 and cached.sha256 != record.content_hash:
                continue
            if record.files:
                self.requests += 1
                atts = list(self.client.list_attachments("documents", str(doc.id)))
                if not all(_is_one_of(a, ours) for a in atts):
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
        document this record owns, so the server's count says how far it got)."""
        created = 0  # sections this record has on the server before section i
        existing: list[Any] | None = None
        for i, section in enumerate(self.record.sections):
            step = f"section:{i}"
            value = self.done(step)
            if value:
                created += value != "skipped"
                continue
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
                    continue
            attrs: dict[str, Any] = {"content": content}
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
                found = _match_attachment(listed, blob, ids)
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
        found = _match_attachment(
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
        """Record the document in the metadata cache so later copies dedupe against it."""
        try:
            self.sink.context.metadata_cache().record_document(
                doc_id,
                sha256=self.record.content_hash,
                size=self.record.total_size,
                organization_id=org_id,
                name=self.record.name,
                attachment_ids=attachment_ids,
            )
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


@hookimpl
def ingest_register_sinks(register: Callable[[str, type[Sink]], None]) -> None:
    register("itglue", ItglueSink)
