"""The sink object: options, limits, dedupe through the metadata cache, the delivery of
one record, and client errors mapped onto the pipeline's."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pydantic import Field

from core_client import exceptions as itg
from itglue_common import human_size
from pipeline import (
    AccessRefused,
    DeliveryResult,
    DocumentRecord,
    EngineContext,
    PermanentError,
    Sink,
    SinkOptions,
    StepJournal,
    Target,
    TransientError,
)

from .delivery import Delivery
from .matching import name_key

log = logging.getLogger("itglue_ingest.sink")


class ItglueSinkOptions(SinkOptions):
    """``[sinks.itglue]``."""

    publish: bool = False  # publish every document (a route's target.publish also does)
    max_file_size: int | None = Field(default=None, gt=0)  # bytes; default [pipeline]'s
    allow_images: bool = False  # keep <img> (http/https) in section HTML
    reconcile_clock_skew: float = Field(default=900.0, ge=0)  # seconds, see reconcile_document


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
        self._auth_logged: dict[str | None, float] = {}  # instance -> last logged
        self._auth_logged_lock = threading.Lock()
        # (instance, document id) -> the record (source, source_ref, version) that made
        # it, for this process: reconciliation must not adopt a same-named document that
        # another record is still filling (two "Scan" records in one organization at once).
        self._claims: dict[tuple[str | None, str], tuple[str, str, str]] = {}
        self._claims_lock = threading.Lock()
        # Held from a create's request until its id is claimed, and around a
        # reconciliation, per (instance, organization, name) stripe: otherwise a lost create's
        # reconciliation can list a same-named document whose create has committed but
        # whose answer (and claim) has not arrived yet, and adopt it.
        self._create_locks = [threading.Lock() for _ in range(64)]

    def claim(self, document_id: str, record: DocumentRecord) -> bool:
        """Mark ``document_id`` (of the record's instance) as ``record``'s; False if
        another record claimed it."""
        me = (record.source, record.source_ref, record.version)
        with self._claims_lock:
            return self._claims.setdefault((record.instance, document_id), me) == me

    def create_lock(self, instance: str | None, organization_id: str, name: str) -> threading.Lock:
        """The lock serialising creates and reconciliations of ``name`` in an organization."""
        key = hash((instance, organization_id, name_key(name)))
        return self._create_locks[key % len(self._create_locks)]

    def release(self, document_id: str, instance: str | None = None) -> None:
        """The document is complete (and in the cache with its hash): no claim needed."""
        with self._claims_lock:
            self._claims.pop((instance, document_id), None)

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
        cache = self.context.metadata_cache(record.instance)  # each instance has its own
        found = cache.find_documents_by_hash(record.content_digest, org)
        return f"documents/{found[0].id}" if found else None

    # -- delivery ----------------------------------------------------------------------

    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        self._check_sizes(record)  # before any request, however far an earlier try got
        target = record.target or Target()
        delivery = Delivery(self, record, journal)
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
            self._log_auth(e, record.instance)
            where = f"IT Glue instance {record.instance!r}" if record.instance else "IT Glue"
            return AccessRefused(
                f"{where} refused the API key (HTTP {e.status}) while {what}; check the key"
                " (itglue-ingest auth ...) and the region/base_url -- records wait and are"
                " retried, none is failed for this",
                retry_after=300.0,
                reported=True,
                instance=record.instance,
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
                reported=not isinstance(e, itg.AmbiguousOutcomeError),  # the client told it
            )
        return PermanentError(f"IT Glue error while {what}: {e}")

    def _log_auth(self, e: itg.AuthenticationError, instance: str | None) -> None:
        with self._auth_logged_lock:  # once a minute per instance
            if time.monotonic() - self._auth_logged.get(instance, float("-inf")) < 60:
                return
            self._auth_logged[instance] = time.monotonic()
        where = f"IT Glue instance {instance!r}" if instance else "IT Glue"
        log.error(
            "%s refused the API key (HTTP %s): deliveries are paused until the key"
            " works again; check it with `itglue-ingest health`",
            where,
            e.status,
        )
