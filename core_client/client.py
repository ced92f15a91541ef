"""ITGlueClient: IT Glue's resources over the resilient transport.

Usage::

    client = ITGlueClient("https://api.eu.itglue.com", api_key)   # creates no files
    client = ITGlueClient.from_instance("production", region="eu")  # keyring, shared state
    for org in client.organizations.list(filter={"name": "Acme"}):
        ...
    doc = client.upload_document(org.id, "/scans/invoice.pdf", "Invoice 42")

Every method raises the tree in :mod:`core_client.exceptions`. Lists are lazy
iterators that follow pagination with ``page[size]=1000`` (N records cost
``ceil(N / 1000)`` requests; an empty list costs one). Write methods take snake_case
keyword attributes and send kebab-case. The resource collections come from one
generic class (:mod:`core_client.resources`); :meth:`ITGlueClient.request`,
:meth:`ITGlueClient.get_json` and :meth:`ITGlueClient.iter_resources` reach any other route.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import platformdirs

from itglue_common import APP_NAME

from .auth import get_api_key, validate_key
from .circuit_breaker import CircuitBreaker
from .exceptions import (
    APIError,
    AuthenticationError,
    CircuitOpenError,
    ConfigurationError,
    ITGlueError,
)
from .jsonapi import collection_name, filter_params, joined, one, one_or_none, to_id
from .metrics import Metrics
from .models import (
    Attachment,
    Configuration,
    Contact,
    Document,
    DocumentSection,
    FlexibleAsset,
    GenericResource,
    Organization,
    RelatedItem,
    Resource,
    to_kebab,
)
from .rate_limiter import RateLimiter
from .redaction import Secret
from .reports import ClientMetrics, HealthReport, HealthStatus
from .resources import ResourceTable
from .retry import RetryPolicy
from .transport import Response, Timeouts, Transport, check_url
from .upload_body import Base64JSONBody

if TYPE_CHECKING:
    import requests.adapters

    from .cache import MetadataCache

log = logging.getLogger("itglue_ingest.client")

PAGE_SIZE = 1000
REGIONS = {
    "us": "https://api.itglue.com",
    "eu": "https://api.eu.itglue.com",
    "au": "https://api.au.itglue.com",
}
# resource types that take attachments / related items (itglue-api.md section 5)
ATTACHABLE = frozenset(
    {
        "checklists",
        "checklist_templates",
        "configurations",
        "contacts",
        "documents",
        "domains",
        "locations",
        "passwords",
        "ssl_certificates",
        "flexible_assets",
        "tickets",
    }
)
RELATABLE = ATTACHABLE | {"folders"}

M = TypeVar("M", bound=Resource)


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(PermissionError):  # not ours to change: leave it
        path.chmod(0o700)  # also when an installer made it 0755 before


def _check_options(page_size: int, ca_bundle: str | os.PathLike[str] | None) -> None:
    if not 1 <= page_size <= PAGE_SIZE:
        raise ConfigurationError(f"page_size must be between 1 and {PAGE_SIZE}")
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise ConfigurationError(f"the CA bundle {ca_bundle} does not exist")


class ITGlueClient(ResourceTable):
    """The resilient IT Glue API client, built from its parts.

    ``base_url``: the API (https; ``http://`` only for a loopback host with
    ``allow_insecure_loopback=True``); :data:`REGIONS` has the three hosts.
    ``api_key``: the key (kept as a :class:`~core_client.redaction.Secret`).
    ``ca_bundle``: trust this CA (verification is always on). The parts, each with a
    default that creates no file:

    * ``transport``: the ``requests`` adapter that moves the bytes (like
      ``httpx.Client(transport=...)``; default: a pool of 10, no urllib3 retries);
    * ``limiter``: :class:`RateLimiter` (default: IT Glue's 3000 requests / 5 min,
      in this process only; give it a ``state_path`` to share it between processes);
    * ``breaker``: :class:`CircuitBreaker` (default: open after 5 failed operations,
      probe after 60 s);
    * ``retry``: :class:`RetryPolicy` (default: 5 retries, 0.5 s .. 30 s backoff);
    * ``timeouts``: :class:`Timeouts` (default: connect 10 s, read 60 s);
    * ``cache``: a :class:`~core_client.cache.MetadataCache`, or a function that
      opens one on first use of :attr:`cache`; default none (:attr:`cache` then
      raises): the client stores nothing unless asked;
    * ``metrics``: :class:`Metrics` (default: fresh counters).

    ``instance`` names the client in reports and logs. The client owns the parts it
    is given: :meth:`close` closes them. Thread-safe; use as a context manager.
    :meth:`from_instance` builds one the way the pipeline does (keyring key, state
    shared by every process of the machine).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | Secret,
        *,
        instance: str = "default",
        ca_bundle: str | os.PathLike[str] | None = None,
        allow_insecure_loopback: bool = False,
        transport: requests.adapters.BaseAdapter | None = None,
        limiter: RateLimiter | None = None,
        breaker: CircuitBreaker | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        cache: MetadataCache | Callable[[], MetadataCache] | None = None,
        metrics: Metrics | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        # from here on the key only exists as a Secret: no local holds the raw string,
        # so not even a traceback rendered with local variables can show it
        secret = api_key if isinstance(api_key, Secret) else Secret(api_key)
        del api_key
        self.instance = instance
        self.state_dir: Path | None = None  # where its state files live (from_instance)
        _check_options(page_size, ca_bundle)
        key = validate_key(secret)
        self.page_size = page_size
        self.metrics = metrics if metrics is not None else Metrics()
        self.circuit_breaker = breaker if breaker is not None else CircuitBreaker()
        self.rate_limiter = limiter if limiter is not None else RateLimiter()
        self.retry = retry if retry is not None else RetryPolicy()
        self.timeouts = timeouts if timeouts is not None else Timeouts()
        self._transport = Transport(
            base_url,
            key,
            limiter=self.rate_limiter,
            breaker=self.circuit_breaker,
            metrics=self.metrics,
            retry=self.retry,
            timeouts=self.timeouts,
            ca_bundle=str(ca_bundle) if ca_bundle is not None else None,
            allow_insecure_loopback=allow_insecure_loopback,
            adapter=transport,
        )
        self.base_url = self._transport.base_url
        self._cache: MetadataCache | None = None
        self._cache_factory: Callable[[], MetadataCache] | None = None
        if callable(cache):
            self._cache_factory = cache
        else:
            self._cache = cache
        self._cache_lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_instance(
        cls,
        name: str = "default",
        state_dir: str | os.PathLike[str] | None = None,
        *,
        base_url: str | None = None,
        region: str | None = None,
        api_key: str | Secret | None = None,
        api_key_env: str | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        allow_insecure_loopback: bool = False,
        rate_limit: int = 3000,
        rate_window: float = 300.0,
        rate_share: float = 1.0,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 60.0,
        rate_penalty_seconds: float | None = None,
        page_size: int = PAGE_SIZE,
    ) -> ITGlueClient:
        """The client of instance ``name``, as the pipeline builds it.

        Endpoint: ``base_url`` or ``region`` us/eu/au (default us). Key: ``api_key``,
        else the variable named by ``api_key_env``, else the keyring (service
        ``itglue-ingest``, username = ``name``), else ``ITGLUE_API_KEY``.
        ``state_dir`` (default: the platform's user state dir of itglue-ingest, made
        0700) holds ``<name>.ratelimit`` (the budget shared by every process using this
        dir: ``rate_limit`` requests per ``rate_window`` seconds, of which this client
        uses ``rate_share``; ``rate_penalty_seconds`` of halved pace after a 429) and
        ``<name>.db`` (the metadata cache, opened on first use of :attr:`cache`).
        The other knobs build the :class:`Timeouts`, :class:`RetryPolicy` and
        :class:`CircuitBreaker`. Nothing is created before the configuration and the
        key are known to be valid.
        """
        supplied = api_key if isinstance(api_key, Secret) or api_key is None else Secret(api_key)
        del api_key
        if base_url and region:
            raise ConfigurationError("give either base_url or region, not both")
        if region is not None and region not in REGIONS:
            raise ConfigurationError(
                f"unknown region {region!r}: expected one of {', '.join(sorted(REGIONS))}"
            )
        url = check_url(
            base_url or REGIONS[region or "us"], allow_insecure_loopback=allow_insecure_loopback
        )
        _check_options(page_size, ca_bundle)
        retry = RetryPolicy(max_retries, backoff_base, backoff_max)
        timeouts = Timeouts(connect_timeout, read_timeout)
        breaker = CircuitBreaker(breaker_threshold, breaker_cooldown)
        key = get_api_key(name, api_key=supplied, api_key_env=api_key_env)
        directory = Path(
            state_dir if state_dir is not None else platformdirs.user_state_dir(APP_NAME)
        )
        _private_dir(directory)
        limiter = RateLimiter(
            rate_limit,
            rate_window,
            rate_share,
            state_path=directory / f"{name}.ratelimit",
            penalty_seconds=rate_penalty_seconds,
        )
        database = directory / f"{name}.db"

        def open_cache() -> MetadataCache:
            from .cache import MetadataCache

            return MetadataCache(database)

        try:
            client = cls(
                url,
                key,
                instance=name,
                ca_bundle=ca_bundle,
                allow_insecure_loopback=allow_insecure_loopback,
                limiter=limiter,
                breaker=breaker,
                retry=retry,
                timeouts=timeouts,
                cache=open_cache,
                page_size=page_size,
            )
        except BaseException:
            limiter.close()
            raise
        client.state_dir = directory
        return client

    def __repr__(self) -> str:
        # getattr: also while half-constructed (a traceback may render the frame's self)
        base_url = getattr(self, "base_url", None)
        return f"ITGlueClient(instance={getattr(self, 'instance', None)!r}, base_url={base_url!r})"

    __str__ = __repr__

    def __enter__(self) -> ITGlueClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Interrupt waits, close the HTTP pool, the limiter and the cache."""
        if self._closed:
            return
        self._closed = True
        self._transport.close()
        self.rate_limiter.close()
        with self._cache_lock:
            cache, self._cache = self._cache, None
        if cache is not None:
            cache.close()

    @property
    def cache(self) -> MetadataCache:
        """The metadata cache (opened on first use when given as a function)."""
        with self._cache_lock:
            if self._cache is None:
                if self._cache_factory is None:
                    raise ConfigurationError(
                        "this client has no metadata cache: pass cache= to ITGlueClient, "
                        "or build it with ITGlueClient.from_instance"
                    )
                self._cache = self._cache_factory()
            return self._cache

    # -- generic JSON:API -------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Response:
        """One API call (retries, limiter and breaker included)."""
        return self._transport.request(
            method,
            path,
            params={k: str(v) for k, v in (params or {}).items()} or None,
            json_body=json,
        )

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).body

    def iter_resources(
        self,
        path: str,
        model: type[M],
        *,
        filters: Mapping[str, Any] | None = None,
        sort: str | Sequence[str] | None = None,
        include: str | Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[M]:
        """All records of a list route, page by page (``page[size]`` = 1000)."""
        query: dict[str, str] = {k: str(v) for k, v in (params or {}).items()}
        query.update(filter_params(filters))
        if sort:
            query["sort"] = joined(sort)
        if include:
            query["include"] = joined(include)
        query["page[size]"] = str(self.page_size)
        query["page[number]"] = "1"
        return self._pages(path, query, model)

    def _pages(self, path: str, query: dict[str, str], model: type[M]) -> Iterator[M]:
        target: str = path
        params: dict[str, str] | None = query
        while True:
            resp = self._transport.request("GET", target, params=params)
            body = resp.body if isinstance(resp.body, dict) else {}
            data = body.get("data") or []
            if isinstance(data, dict):
                data = [data]
            for obj in data:
                if isinstance(obj, dict):
                    yield model.from_jsonapi(obj)
            if not data:
                return
            nxt = self._next_page(body, path, query)
            if nxt is None:
                return
            target, params = nxt

    def _next_page(
        self, body: Mapping[str, Any], path: str, query: dict[str, str]
    ) -> tuple[str, dict[str, str] | None] | None:
        """Where the next page is, or None: meta ``next-page`` first, then ``links.next``."""
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        links = body.get("links") if isinstance(body.get("links"), dict) else {}
        assert isinstance(meta, dict) and isinstance(links, dict)
        if "next-page" in meta:
            nxt = meta.get("next-page")
            if nxt is None:
                return None
            current = meta.get("current-page")
            total = meta.get("total-pages")
            if isinstance(current, int) and isinstance(total, int) and current >= total:
                return None
            return path, {**query, "page[number]": str(nxt)}
        link = links.get("next")
        if not isinstance(link, str) or not link:
            return None
        if not link.startswith(("https://", "http://")):
            link = self.base_url + "/" + link.lstrip("/")
        if not self._transport.same_origin(link):
            log.warning("ignoring a pagination link to another origin")
            return None
        parts = urlsplit(link)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if not any(k == "page[size]" for k, _ in pairs):
            pairs.append(("page[size]", str(self.page_size)))
        return urlunsplit(parts._replace(query=urlencode(pairs))), None

    # -- shortcuts over the resource collections (kept for their callers) --------------
    def list_organizations(
        self, filters: Mapping[str, Any] | None = None, sort: Any = None, include: Any = None
    ) -> Iterator[Organization]:
        return self.organizations.list(filter=filters, sort=sort, include=include)

    def get_organization(self, organization_id: Any, include: Any = None) -> Organization:
        return self.organizations.get(organization_id, include=include)

    def create_organization(self, name: str, **attrs: Any) -> Organization:
        return self.organizations.create(name=name, **attrs)

    def update_organization(self, organization_id: Any, **attrs: Any) -> Organization:
        return self.organizations.update(organization_id, **attrs)

    def list_configurations(
        self,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
        include: Any = None,
        *,
        organization_id: Any = None,
    ) -> Iterator[Configuration]:
        scope = self.configurations
        if organization_id is not None:
            scope = scope.within(organization_id)
        return scope.list(filter=filters, sort=sort, include=include)

    def get_configuration(self, configuration_id: Any, include: Any = None) -> Configuration:
        return self.configurations.get(configuration_id, include=include)

    def create_configuration(self, organization_id: Any, name: str, **attrs: Any) -> Configuration:
        return self.configurations.create(organization_id=organization_id, name=name, **attrs)

    def list_contacts(
        self,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
        include: Any = None,
        *,
        organization_id: Any = None,
    ) -> Iterator[Contact]:
        scope = self.contacts
        if organization_id is not None:
            scope = scope.within(organization_id)
        return scope.list(filter=filters, sort=sort, include=include)

    def get_contact(self, contact_id: Any, include: Any = None) -> Contact:
        return self.contacts.get(contact_id, include=include)

    def create_contact(self, organization_id: Any, first_name: str, **attrs: Any) -> Contact:
        return self.contacts.create(organization_id=organization_id, first_name=first_name, **attrs)

    def create_document(self, organization_id: Any, name: str, **attrs: Any) -> Document:
        return self.documents.within(organization_id).create(name=name, **attrs)

    def get_document(self, document_id: Any, include: Any = None) -> Document:
        return self.documents.get(document_id, include=include)

    def list_documents(
        self,
        organization_id: Any,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
        include: Any = None,
    ) -> Iterator[Document]:
        scope = self.documents.within(organization_id)
        return scope.list(filter=filters, sort=sort, include=include)

    def create_document_section(
        self, document_id: Any, resource_type: str, content: str | None = None, **attrs: Any
    ) -> DocumentSection:
        """``resource_type``: Document::Text, Document::Heading (``level``), ..."""
        if content is not None:
            attrs["content"] = content
        scope = self.document_sections.within(document_id)
        return scope.create(resource_type=resource_type, **attrs)

    def list_document_sections(self, document_id: Any) -> Iterator[DocumentSection]:
        return self.document_sections.within(document_id).list()

    # -- what a table line cannot express ------------------------------------------------
    def publish_document(self, document_id: Any) -> Document | None:
        """PATCH ``/documents/:id/publish`` (a POST there is a 404 on the real API)."""
        return one_or_none(self.request("PATCH", f"/documents/{document_id}/publish"), Document)

    def list_flexible_assets(
        self,
        flexible_asset_type_id: Any,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
        include: Any = None,
    ) -> Iterator[FlexibleAsset]:
        """The API requires the type filter (``filter[flexible-asset-type-id]``)."""
        merged = {"flexible-asset-type-id": flexible_asset_type_id}
        for key, value in (filters or {}).items():
            merged[to_kebab(key)] = value
        return self.flexible_assets.list(filter=merged, sort=sort, include=include)

    def get_flexible_asset(self, flexible_asset_id: Any, include: Any = None) -> FlexibleAsset:
        return self.flexible_assets.get(flexible_asset_id, include=include)

    def create_flexible_asset(
        self,
        organization_id: Any,
        flexible_asset_type_id: Any,
        traits: Mapping[str, Any],
        **attrs: Any,
    ) -> FlexibleAsset:
        return self.flexible_assets.create(
            organization_id=organization_id,
            flexible_asset_type_id=flexible_asset_type_id,
            traits=dict(traits),
            **attrs,
        )

    @staticmethod
    def merge_traits(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        """The trait set to PATCH: current traits (tag traits back to id lists) + changes.

        The API's PATCH replaces all traits (left-out ones are deleted), and returns
        tag traits as ``{"type": ..., "values": [{"id": ...}, ...]}`` while writes take
        a list of ids; a value of None in ``changes`` deletes that trait.
        """
        merged: dict[str, Any] = {}
        for key, value in current.items():
            if isinstance(value, dict) and isinstance(value.get("values"), list):
                value = [
                    to_id(v["id"]) for v in value["values"] if isinstance(v, dict) and "id" in v
                ]
            merged[key] = value
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged

    def update_flexible_asset(
        self,
        flexible_asset_id: Any,
        traits: Mapping[str, Any] | None = None,
        *,
        replace_traits: bool = False,
        **attrs: Any,
    ) -> FlexibleAsset:
        """Update, MERGING ``traits`` into the current ones (GET, merge, PATCH).

        ``replace_traits=True`` sends ``traits`` as the complete set (the API's own
        semantics, also that of ``client.flexible_assets.update``). Upload-kind traits
        are sent back as the API returned them.
        """
        if traits is not None:
            if replace_traits:
                attrs["traits"] = dict(traits)
            else:
                current = self.get_flexible_asset(flexible_asset_id)
                attrs["traits"] = self.merge_traits(current.traits or {}, traits)
        return self.flexible_assets.update(flexible_asset_id, **attrs)

    # -- attachments -----------------------------------------------------------------
    def _attach_path(self, resource_type: str, resource_id: Any) -> str:
        collection = collection_name(resource_type)
        if collection not in ATTACHABLE:
            raise ValueError(f"{resource_type!r} does not take attachments")
        return f"/{collection}/{resource_id}/relationships/attachments"

    def upload_attachment(
        self,
        resource_type: str,
        resource_id: Any,
        *,
        path: str | os.PathLike[str] | None = None,
        stream: IO[bytes] | None = None,
        file_name: str | None = None,
        size: int | None = None,
    ) -> Attachment:
        """Attach a file (from ``path``) or a binary ``stream`` to a resource.

        The base64 JSON body is streamed with a precomputed Content-Length, so memory
        does not grow with the file. A seekable stream is read from its current
        position to the end; a non-seekable one is spooled to a temporary file first
        (its size must be known before sending). An answer lost after sending raises
        :class:`AmbiguousOutcomeError` (list the attachments and match name and size).
        """
        if (path is None) == (stream is None):
            raise ValueError("give exactly one of path= or stream=")
        target = self._attach_path(resource_type, resource_id)
        if path is not None:
            name = file_name or Path(path).name
            with open(path, "rb") as fh:
                return self._upload(target, fh, name, os.fstat(fh.fileno()).st_size)
        assert stream is not None
        if not file_name:
            raise ValueError("file_name= is required with stream=")
        if _seekable(stream):
            start = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            stream.seek(start)
            length = end - start if size is None else size
            return self._upload(target, stream, file_name, length)
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            while chunk := stream.read(1024 * 1024):
                spool.write(chunk)
            length = spool.tell()
            spool.seek(0)
            return self._upload(target, spool, file_name, length)

    def _upload(self, target: str, fh: BinaryIO | IO[bytes], name: str, size: int) -> Attachment:
        start = fh.tell()

        def body() -> Base64JSONBody:
            fh.seek(start)  # each attempt (after a 429 or a connect failure) starts over
            return Base64JSONBody(fh, size, name)  # type: ignore[arg-type]

        resp = self._transport.request("POST", target, body_factory=body)  # type: ignore[arg-type]
        return one(resp, Attachment)

    def list_attachments(self, resource_type: str, resource_id: Any) -> Iterator[Attachment]:
        return self.iter_resources(self._attach_path(resource_type, resource_id), Attachment)

    def get_attachment(
        self, resource_type: str, resource_id: Any, attachment_id: Any
    ) -> Attachment:
        path = f"{self._attach_path(resource_type, resource_id)}/{attachment_id}"
        return one(self.request("GET", path), Attachment)

    def download_attachment(
        self, resource_type: str, resource_id: Any, attachment: Attachment | Any
    ) -> bytes:
        """The attachment's bytes, from its ``download-url`` (same origin only)."""
        att = (
            attachment
            if isinstance(attachment, Attachment)
            else self.get_attachment(resource_type, resource_id, attachment)
        )
        url = att.download_url
        if not url:
            raise APIError(f"attachment {att.id} has no download URL", status=200)
        if not url.startswith(("https://", "http://")):
            url = self.base_url + "/" + url.lstrip("/")
        # the download path carries an access token: keep it out of logs and errors
        masked = f"<download of attachment {att.id}>"
        if self._transport.same_origin(url):
            return self._transport.request("GET", url, log_path=masked).content
        # a pre-signed storage URL on another host: never send it the API key
        return self._transport.request("GET", url, send_key=False, log_path=masked).content

    def rename_attachment(
        self, resource_type: str, resource_id: Any, attachment_id: Any, name: str
    ) -> Attachment | None:
        """PATCH the display name (the original file name cannot change)."""
        path = f"{self._attach_path(resource_type, resource_id)}/{attachment_id}"
        resp = self.request(
            "PATCH", path, json={"data": {"type": "attachments", "attributes": {"name": name}}}
        )
        return one_or_none(resp, Attachment)

    def delete_attachments(self, resource_type: str, resource_id: Any, ids: Iterable[Any]) -> None:
        data = [{"type": "attachments", "attributes": {"id": to_id(i)}} for i in ids]
        if data:
            self.request(
                "DELETE", self._attach_path(resource_type, resource_id), json={"data": data}
            )

    # -- related items ---------------------------------------------------------------
    def create_related_item(
        self,
        resource_type: str,
        resource_id: Any,
        destination_type: str,
        destination_id: Any,
        notes: str | None = None,
    ) -> RelatedItem:
        collection = collection_name(resource_type)
        if collection not in RELATABLE:
            raise ValueError(f"{resource_type!r} does not take related items")
        attrs: dict[str, Any] = {
            "destination_id": to_id(destination_id),
            "destination_type": destination_type,
        }
        if notes is not None:
            attrs["notes"] = notes
        body = {"data": {"type": "related_items", "attributes": attrs}}
        resp = self.request(
            "POST", f"/{collection}/{resource_id}/relationships/related_items", json=body
        )
        return one(resp, RelatedItem)

    # -- other resource types ----------------------------------------------------------
    def list_resources(
        self,
        resource_type: str,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
    ) -> Iterator[GenericResource]:
        """Any list route (organization_types, configuration_types, ...)."""
        return self.iter_resources(
            f"/{collection_name(resource_type)}", GenericResource, filters=filters, sort=sort
        )

    # -- the seed's convenience API ------------------------------------------------------
    def upload_document(
        self,
        organization_id: Any,
        file_path: str | os.PathLike[str],
        name: str | None = None,
        *,
        publish: bool = False,
    ) -> Document:
        """Create a document named ``name`` in the organization and attach the file.

        Two requests (three with ``publish``); an ambiguous create raises
        :class:`AmbiguousOutcomeError` before anything is attached.
        """
        path = Path(file_path)
        doc = self.create_document(organization_id, name or path.name)
        self.upload_attachment("documents", doc.id, path=path)
        if publish:
            self.publish_document(doc.id)
        return doc

    # -- operations -------------------------------------------------------------------
    def health_check(self) -> HealthReport:
        """One cheap authenticated call; never raises (see :class:`HealthReport`)."""
        try:
            wait = self.rate_limiter.peek()
        except ITGlueError:
            wait = 0.0
        if wait > 2.0:
            # do not block a health probe behind the rate limiter (a pause after 429s
            # can last a minute): the budget is spent, which says nothing about health
            return self._health(
                "degraded", None, None, f"rate limited: the next request may go in {wait:.1f} s"
            )
        started: float | None = time.monotonic()
        key_valid: bool | None = None
        error: str | None = None
        try:
            self.request("GET", "/organizations", params={"page[size]": 1})
        except AuthenticationError as e:
            key_valid, error = False, e.message
        except CircuitOpenError as e:
            error, started = e.message, None
        except ITGlueError as e:
            error = e.message
        else:
            key_valid = True
        elapsed = round((time.monotonic() - started) * 1000, 2) if started is not None else None
        return self._health("healthy" if key_valid else "unhealthy", key_valid, elapsed, error)

    def _health(
        self,
        status: HealthStatus,
        key_valid: bool | None,
        elapsed_ms: float | None,
        error: str | None,
    ) -> HealthReport:
        return HealthReport(
            status=status,
            instance=self.instance,
            base_url=self.base_url,
            api_key_valid=key_valid,
            response_time_ms=elapsed_ms,
            error=error,
            circuit_breaker=self.circuit_breaker.get_stats(),
            rate_limiter=self.rate_limiter.get_stats(),
        )

    def get_metrics(self) -> ClientMetrics:
        """Requests, errors, durations (ms), error rate, rate-limit waits, 429s, breaker."""
        snap = self.metrics.snapshot()
        limiter = self.rate_limiter.get_stats()
        breaker = self.circuit_breaker.get_stats()
        return ClientMetrics(
            **vars(snap),
            instance=self.instance,
            rate_limit_waits=limiter["waits"],
            rate_limit_wait_seconds=limiter["wait_seconds"],
            circuit_breaker_state=breaker["state"],
            rate_limiter=limiter,
            circuit_breaker=breaker,
        )


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError, OSError):
        return False


__all__ = ["PAGE_SIZE", "REGIONS", "ITGlueClient", "filter_params"]
