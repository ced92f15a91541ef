"""ITGlueClient: typed IT Glue resource methods over the resilient transport.

Usage::

    client = ITGlueClient("production", region="eu")   # key from the keyring
    for org in client.list_organizations(filters={"name": "Acme"}):
        ...
    doc = client.upload_document(org.id, "/scans/invoice.pdf", "Invoice 42")

Every method raises the tree in :mod:`core_client.exceptions`. Lists are lazy
iterators that follow pagination with ``page[size]=1000`` (N records cost
``ceil(N / 1000)`` requests; an empty list costs one). Write methods take snake_case
keyword attributes and send kebab-case. The generic :meth:`ITGlueClient.request`,
:meth:`ITGlueClient.get_json` and :meth:`ITGlueClient.iter_resources` reach any route
the typed methods do not cover.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import platformdirs

from itglue_common import APP_NAME

from .auth import get_api_key
from .circuit_breaker import CircuitBreaker
from .exceptions import (
    APIError,
    AuthenticationError,
    CircuitOpenError,
    ConfigurationError,
    ITGlueError,
)
from .metrics import Metrics
from .models import (
    Attachment,
    Configuration,
    Contact,
    Document,
    DocumentSection,
    FlexibleAsset,
    GenericResource,
    Location,
    Organization,
    RelatedItem,
    Resource,
    to_kebab,
)
from .rate_limiter import RateLimiter
from .redaction import Secret
from .transport import Response, Transport
from .upload_body import Base64JSONBody

if TYPE_CHECKING:
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


def _collection(resource_type: str) -> str:
    """``flexible-assets`` / ``FlexibleAsset`` / ``flexible_assets`` -> ``flexible_assets``."""
    text = resource_type.strip()
    if not text:
        raise ValueError("resource_type is empty")
    if any(c.isupper() for c in text) and "_" not in text and "-" not in text:
        # CamelCase class name ("FlexibleAsset") -> snake plural
        snake = "".join("_" + c.lower() if c.isupper() else c for c in text).lstrip("_")
        text = snake if snake.endswith("s") else snake + "s"
    return text.lower().replace("-", "_")


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _escape(value: str) -> str:
    return value.replace(",", "\\,")


def filter_params(filters: Mapping[str, Any] | None, prefix: str = "filter") -> dict[str, str]:
    r"""``{"name": "Kub, Reynolds", "id": [1, 2], "exclude": {"id": 3}}`` ->
    ``filter[name]=Kub\, Reynolds``, ``filter[id]=1,2``, ``filter[exclude][id]=3``.

    A single value is literal (its commas are escaped as ``\,``); a list/tuple/set is
    a list or range (joined with commas, each element escaped); a nested mapping
    becomes nested brackets. ``None`` values are left out. Keys pass through as
    given (the API uses snake_case, and hyphens for flexible assets).
    """
    out: dict[str, str] = {}
    for key, value in (filters or {}).items():
        name = f"{prefix}[{key}]"
        if value is None:
            continue
        if isinstance(value, Mapping):
            out.update(filter_params(value, name))
        elif isinstance(value, list | tuple | set | frozenset):
            items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
            out[name] = ",".join(_escape(_format_value(v)) for v in items)
        else:
            out[name] = _escape(_format_value(value))
    return out


def _attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """snake_case kwargs -> kebab-case attributes; ``*_id`` digit strings -> ints."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        k = to_kebab(key)
        if (k.endswith("-id") or k == "id") and isinstance(value, str) and value.isdigit():
            value = int(value)
        out[k] = value
    return out


def _id(value: Any) -> int | str:
    text = str(value)
    return int(text) if text.isdigit() else text


class ITGlueClient:
    """The resilient IT Glue API client.

    Endpoint: ``base_url`` (https; ``http://`` only for loopback with
    ``allow_insecure_loopback=True``) or ``region`` us/eu/au (default us).
    Key: ``api_key``, else the variable named by ``api_key_env``, else the keyring
    (service ``itglue-ingest``, username = ``instance``), else ``ITGLUE_API_KEY``.
    ``ca_bundle``: trust this CA (verification is always on). ``state_dir``
    (default: the platform's user state dir of itglue-ingest) holds
    ``<instance>.ratelimit`` (the budget shared by every process using this dir)
    and ``<instance>.db`` (the metadata cache, see :attr:`cache`).
    Budget: ``rate_limit`` requests per ``rate_window`` seconds, of which this client
    uses ``rate_share``. Timeouts: ``connect_timeout``/``read_timeout`` seconds.
    Resilience knobs (tests shorten them): ``max_retries`` (idempotent requests and
    failures before sending; 429s are retried without limit), ``backoff_base`` /
    ``backoff_max`` seconds, ``breaker_threshold`` consecutive failed operations,
    ``breaker_cooldown`` seconds, ``rate_penalty_seconds`` of halved pace after a 429.
    Thread-safe; use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        instance: str = "default",
        *,
        base_url: str | None = None,
        region: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        allow_insecure_loopback: bool = False,
        state_dir: str | os.PathLike[str] | None = None,
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
    ) -> None:
        # from here on the key only exists as a Secret: no local holds the raw string,
        # so not even a traceback rendered with local variables can show it
        supplied = Secret(api_key) if api_key is not None else None
        del api_key
        self.instance = instance
        if base_url and region:
            raise ConfigurationError("give either base_url or region, not both")
        if region is not None and region not in REGIONS:
            raise ConfigurationError(
                f"unknown region {region!r}: expected one of {', '.join(sorted(REGIONS))}"
            )
        if not 1 <= page_size <= PAGE_SIZE:
            raise ConfigurationError(f"page_size must be between 1 and {PAGE_SIZE}")
        if ca_bundle is not None and not Path(ca_bundle).is_file():
            raise ConfigurationError(f"the CA bundle {ca_bundle} does not exist")
        self.region = region if not base_url else None
        url = base_url or REGIONS[region or "us"]
        self.state_dir = Path(
            state_dir if state_dir is not None else platformdirs.user_state_dir(APP_NAME)
        )
        self.page_size = page_size
        key = get_api_key(instance, api_key=supplied, api_key_env=api_key_env)
        self.metrics = Metrics()
        self.circuit_breaker = CircuitBreaker(breaker_threshold, breaker_cooldown)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(PermissionError):  # not ours to change: leave it
            self.state_dir.chmod(0o700)  # also when an installer made it 0755 before
        self.rate_limiter = RateLimiter(
            rate_limit,
            rate_window,
            rate_share,
            state_path=self.state_dir / f"{instance}.ratelimit",
            penalty_seconds=rate_penalty_seconds,
        )
        try:
            self._transport = Transport(
                url,
                key,
                limiter=self.rate_limiter,
                breaker=self.circuit_breaker,
                metrics=self.metrics,
                ca_bundle=str(ca_bundle) if ca_bundle is not None else None,
                allow_insecure_loopback=allow_insecure_loopback,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                max_retries=max_retries,
                backoff_base=backoff_base,
                backoff_max=backoff_max,
            )
        except BaseException:
            self.rate_limiter.close()
            raise
        self.base_url = self._transport.base_url
        self._cache: MetadataCache | None = None
        self._cache_lock = threading.Lock()
        self._closed = False

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
        """Interrupt waits, close the HTTP pool, the limiter file and the cache."""
        if self._closed:
            return
        self._closed = True
        self._transport.close()
        self.rate_limiter.close()
        with self._cache_lock:
            cache, self._cache = self._cache, None
        if cache is not None:
            closer = getattr(cache, "close", None)
            if callable(closer):
                closer()

    @property
    def cache(self) -> MetadataCache:
        """The metadata cache on ``<state_dir>/<instance>.db`` (opened on first use)."""
        with self._cache_lock:
            if self._cache is None:
                from .cache import MetadataCache

                self._cache = MetadataCache(self.state_dir / f"{self.instance}.db")
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
            query["sort"] = sort if isinstance(sort, str) else ",".join(sort)
        if include:
            query["include"] = include if isinstance(include, str) else ",".join(include)
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

    def _one(self, resp: Response, model: type[M]) -> M:
        body = resp.body if isinstance(resp.body, dict) else {}
        data = body.get("data")
        if isinstance(data, list):
            data = data[0] if data else None
        if not isinstance(data, dict):
            raise APIError(
                f"unexpected response without a resource [request {resp.request_id}]",
                status=resp.status,
                request_id=resp.request_id,
            )
        return model.from_jsonapi(data)

    def _many(self, resp: Response, model: type[M]) -> list[M]:
        body = resp.body if isinstance(resp.body, dict) else {}
        data = body.get("data") or []
        if isinstance(data, dict):
            data = [data]
        return [model.from_jsonapi(d) for d in data if isinstance(d, dict)]

    def _get(self, collection: str, record_id: Any, model: type[M], include: Any = None) -> M:
        params = (
            {"include": include if isinstance(include, str) else ",".join(include)}
            if (include)
            else None
        )
        return self._one(self.request("GET", f"/{collection}/{record_id}", params=params), model)

    def _create(self, path: str, json_type: str, attrs: Mapping[str, Any], model: type[M]) -> M:
        body = {"data": {"type": json_type, "attributes": _attributes(attrs)}}
        return self._one(self.request("POST", path, json=body), model)

    def _update(
        self,
        collection: str,
        json_type: str,
        record_id: Any,
        attrs: Mapping[str, Any],
        model: type[M],
    ) -> M:
        body = {"data": {"type": json_type, "attributes": _attributes(attrs)}}
        return self._one(self.request("PATCH", f"/{collection}/{record_id}", json=body), model)

    def _bulk_update(
        self,
        collection: str,
        json_type: str,
        updates: Iterable[Mapping[str, Any]],
        model: type[M],
    ) -> list[M]:
        data = []
        for item in updates:
            attrs = dict(item)
            if "id" not in attrs:
                raise ValueError("each bulk update needs an 'id'")
            attrs["id"] = _id(attrs["id"])
            data.append({"type": json_type, "attributes": _attributes(attrs)})
        if not data:
            return []
        return self._many(self.request("PATCH", f"/{collection}", json={"data": data}), model)

    def _bulk_destroy(self, collection: str, json_type: str, ids: Iterable[Any]) -> None:
        data = [{"type": json_type, "attributes": {"id": _id(i)}} for i in ids]
        if data:
            self.request("DELETE", f"/{collection}", json={"data": data})

    # -- organizations ---------------------------------------------------------------
    def list_organizations(
        self, filters: Mapping[str, Any] | None = None, sort: Any = None, include: Any = None
    ) -> Iterator[Organization]:
        return self.iter_resources(
            "/organizations", Organization, filters=filters, sort=sort, include=include
        )

    def get_organization(self, organization_id: Any, include: Any = None) -> Organization:
        return self._get("organizations", organization_id, Organization, include)

    def create_organization(self, name: str, **attrs: Any) -> Organization:
        return self._create(
            "/organizations", "organizations", {"name": name, **attrs}, Organization
        )

    def update_organization(self, organization_id: Any, **attrs: Any) -> Organization:
        return self._update("organizations", "organizations", organization_id, attrs, Organization)

    def bulk_update_organizations(self, updates: Iterable[Mapping[str, Any]]) -> list[Organization]:
        return self._bulk_update("organizations", "organizations", updates, Organization)

    def bulk_destroy_organizations(self, ids: Iterable[Any]) -> None:
        self._bulk_destroy("organizations", "organizations", ids)

    # -- configurations --------------------------------------------------------------
    def list_configurations(
        self,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
        include: Any = None,
        *,
        organization_id: Any = None,
    ) -> Iterator[Configuration]:
        path = (
            f"/organizations/{organization_id}/relationships/configurations"
            if organization_id is not None
            else "/configurations"
        )
        return self.iter_resources(path, Configuration, filters=filters, sort=sort, include=include)

    def get_configuration(self, configuration_id: Any, include: Any = None) -> Configuration:
        return self._get("configurations", configuration_id, Configuration, include)

    def create_configuration(self, organization_id: Any, name: str, **attrs: Any) -> Configuration:
        return self._create(
            "/configurations",
            "configurations",
            {"organization_id": organization_id, "name": name, **attrs},
            Configuration,
        )

    def update_configuration(self, configuration_id: Any, **attrs: Any) -> Configuration:
        return self._update(
            "configurations", "configurations", configuration_id, attrs, Configuration
        )

    def bulk_update_configurations(
        self, updates: Iterable[Mapping[str, Any]]
    ) -> list[Configuration]:
        return self._bulk_update("configurations", "configurations", updates, Configuration)

    def bulk_destroy_configurations(self, ids: Iterable[Any]) -> None:
        self._bulk_destroy("configurations", "configurations", ids)

    # -- contacts --------------------------------------------------------------------
    def list_contacts(
        self,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
        include: Any = None,
        *,
        organization_id: Any = None,
    ) -> Iterator[Contact]:
        path = (
            f"/organizations/{organization_id}/relationships/contacts"
            if organization_id is not None
            else "/contacts"
        )
        return self.iter_resources(path, Contact, filters=filters, sort=sort, include=include)

    def get_contact(self, contact_id: Any, include: Any = None) -> Contact:
        return self._get("contacts", contact_id, Contact, include)

    def create_contact(self, organization_id: Any, first_name: str, **attrs: Any) -> Contact:
        return self._create(
            "/contacts",
            "contacts",
            {"organization_id": organization_id, "first_name": first_name, **attrs},
            Contact,
        )

    def update_contact(self, contact_id: Any, **attrs: Any) -> Contact:
        return self._update("contacts", "contacts", contact_id, attrs, Contact)

    def bulk_update_contacts(self, updates: Iterable[Mapping[str, Any]]) -> list[Contact]:
        return self._bulk_update("contacts", "contacts", updates, Contact)

    def bulk_destroy_contacts(self, ids: Iterable[Any]) -> None:
        self._bulk_destroy("contacts", "contacts", ids)

    # -- locations -------------------------------------------------------------------
    def list_locations(
        self,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
        include: Any = None,
        *,
        organization_id: Any = None,
    ) -> Iterator[Location]:
        path = (
            f"/organizations/{organization_id}/relationships/locations"
            if organization_id is not None
            else "/locations"
        )
        return self.iter_resources(path, Location, filters=filters, sort=sort, include=include)

    def get_location(self, location_id: Any, include: Any = None) -> Location:
        return self._get("locations", location_id, Location, include)

    def create_location(self, organization_id: Any, name: str, **attrs: Any) -> Location:
        return self._create(
            "/locations",
            "locations",
            {"organization_id": organization_id, "name": name, **attrs},
            Location,
        )

    def update_location(self, location_id: Any, **attrs: Any) -> Location:
        return self._update("locations", "locations", location_id, attrs, Location)

    def bulk_update_locations(self, updates: Iterable[Mapping[str, Any]]) -> list[Location]:
        return self._bulk_update("locations", "locations", updates, Location)

    def bulk_destroy_locations(self, ids: Iterable[Any]) -> None:
        self._bulk_destroy("locations", "locations", ids)

    # -- flexible assets -------------------------------------------------------------
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
        return self.iter_resources(
            "/flexible_assets", FlexibleAsset, filters=merged, sort=sort, include=include
        )

    def get_flexible_asset(self, flexible_asset_id: Any, include: Any = None) -> FlexibleAsset:
        return self._get("flexible_assets", flexible_asset_id, FlexibleAsset, include)

    def create_flexible_asset(
        self,
        organization_id: Any,
        flexible_asset_type_id: Any,
        traits: Mapping[str, Any],
        **attrs: Any,
    ) -> FlexibleAsset:
        return self._create(
            "/flexible_assets",
            "flexible-assets",
            {
                "organization_id": organization_id,
                "flexible_asset_type_id": flexible_asset_type_id,
                "traits": dict(traits),
                **attrs,
            },
            FlexibleAsset,
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
                value = [_id(v["id"]) for v in value["values"] if isinstance(v, dict) and "id" in v]
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
        semantics). Upload-kind traits are sent back as the API returned them.
        """
        payload = dict(attrs)
        if traits is not None:
            if replace_traits:
                payload["traits"] = dict(traits)
            else:
                current = self.get_flexible_asset(flexible_asset_id)
                payload["traits"] = self.merge_traits(current.traits or {}, traits)
        return self._update(
            "flexible_assets", "flexible-assets", flexible_asset_id, payload, FlexibleAsset
        )

    def delete_flexible_asset(self, flexible_asset_id: Any) -> None:
        self.request("DELETE", f"/flexible_assets/{flexible_asset_id}")

    def bulk_update_flexible_assets(
        self, updates: Iterable[Mapping[str, Any]]
    ) -> list[FlexibleAsset]:
        """Bulk PATCH: each item's ``traits`` REPLACE the asset's traits (API semantics)."""
        return self._bulk_update("flexible_assets", "flexible-assets", updates, FlexibleAsset)

    def bulk_destroy_flexible_assets(self, ids: Iterable[Any]) -> None:
        self._bulk_destroy("flexible_assets", "flexible-assets", ids)

    # -- documents and sections ------------------------------------------------------
    def create_document(self, organization_id: Any, name: str, **attrs: Any) -> Document:
        return self._create(
            f"/organizations/{organization_id}/relationships/documents",
            "documents",
            {"name": name, **attrs},
            Document,
        )

    def get_document(self, document_id: Any, include: Any = None) -> Document:
        return self._get("documents", document_id, Document, include)

    def list_documents(
        self,
        organization_id: Any,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
        include: Any = None,
    ) -> Iterator[Document]:
        return self.iter_resources(
            f"/organizations/{organization_id}/relationships/documents",
            Document,
            filters=filters,
            sort=sort,
            include=include,
        )

    def update_document(self, document_id: Any, **attrs: Any) -> Document:
        return self._update("documents", "documents", document_id, attrs, Document)

    def publish_document(self, document_id: Any) -> Document | None:
        """PATCH ``/documents/:id/publish`` (a POST there is a 404 on the real API)."""
        resp = self.request("PATCH", f"/documents/{document_id}/publish")
        if isinstance(resp.body, dict) and isinstance(resp.body.get("data"), dict):
            return self._one(resp, Document)
        return None

    def bulk_destroy_documents(self, ids: Iterable[Any]) -> None:
        self._bulk_destroy("documents", "documents", ids)

    def create_document_section(
        self, document_id: Any, resource_type: str, content: str | None = None, **attrs: Any
    ) -> DocumentSection:
        """``resource_type``: Document::Text, Document::Heading (``level``), ..."""
        payload: dict[str, Any] = {"resource_type": resource_type, **attrs}
        if content is not None:
            payload["content"] = content
        return self._create(
            f"/documents/{document_id}/relationships/sections",
            "document-sections",
            payload,
            DocumentSection,
        )

    def list_document_sections(self, document_id: Any) -> Iterator[DocumentSection]:
        return self.iter_resources(
            f"/documents/{document_id}/relationships/sections", DocumentSection
        )

    # -- attachments -----------------------------------------------------------------
    def _attach_path(self, resource_type: str, resource_id: Any) -> str:
        collection = _collection(resource_type)
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
        return self._one(resp, Attachment)

    def list_attachments(self, resource_type: str, resource_id: Any) -> Iterator[Attachment]:
        return self.iter_resources(self._attach_path(resource_type, resource_id), Attachment)

    def get_attachment(
        self, resource_type: str, resource_id: Any, attachment_id: Any
    ) -> Attachment:
        path = f"{self._attach_path(resource_type, resource_id)}/{attachment_id}"
        return self._one(self.request("GET", path), Attachment)

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
        if isinstance(resp.body, dict) and isinstance(resp.body.get("data"), dict):
            return self._one(resp, Attachment)
        return None

    def delete_attachments(self, resource_type: str, resource_id: Any, ids: Iterable[Any]) -> None:
        data = [{"type": "attachments", "attributes": {"id": _id(i)}} for i in ids]
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
        collection = _collection(resource_type)
        if collection not in RELATABLE:
            raise ValueError(f"{resource_type!r} does not take related items")
        attrs: dict[str, Any] = {
            "destination_id": _id(destination_id),
            "destination_type": destination_type,
        }
        if notes is not None:
            attrs["notes"] = notes
        body = {"data": {"type": "related_items", "attributes": attrs}}
        resp = self.request(
            "POST", f"/{collection}/{resource_id}/relationships/related_items", json=body
        )
        return self._one(resp, RelatedItem)

    # -- other resource types ----------------------------------------------------------
    def list_resources(
        self,
        resource_type: str,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
    ) -> Iterator[GenericResource]:
        """Any list route (organization_types, configuration_types, ...)."""
        return self.iter_resources(
            f"/{_collection(resource_type)}", GenericResource, filters=filters, sort=sort
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
    def health_check(self) -> dict[str, Any]:
        """One cheap authenticated call; never raises.

        ``status``: healthy / unhealthy / degraded (the rate budget is spent, so no
        call was made; nothing is known to be wrong); ``api_key_valid``: True / False
        (401/403) / None (unknown: not reached, breaker open, or rate limited).
        """
        result: dict[str, Any] = {
            "status": "unhealthy",
            "instance": self.instance,
            "base_url": self.base_url,
            "api_key_valid": None,
            "response_time_ms": None,
            "error": None,
        }
        try:
            wait = self.rate_limiter.peek()
        except ITGlueError:
            wait = 0.0
        if wait > 2.0:
            # do not block a health probe behind the rate limiter (a pause after 429s
            # can last a minute): the budget is spent, which says nothing about health
            result.update(
                status="degraded",
                error=f"rate limited: the next request may go in {wait:.1f} s",
            )
            result["circuit_breaker"] = self.circuit_breaker.get_stats()
            result["rate_limiter"] = self.rate_limiter.get_stats()
            return result
        started: float | None = time.monotonic()
        try:
            self.request("GET", "/organizations", params={"page[size]": 1})
        except AuthenticationError as e:
            result.update(api_key_valid=False, error=e.message)
        except CircuitOpenError as e:
            result.update(error=e.message)
            started = None
        except ITGlueError as e:
            result.update(error=e.message)
        else:
            result.update(status="healthy", api_key_valid=True)
        if started is not None:
            result["response_time_ms"] = round((time.monotonic() - started) * 1000, 2)
        result["circuit_breaker"] = self.circuit_breaker.get_stats()
        result["rate_limiter"] = self.rate_limiter.get_stats()
        return result

    def get_metrics(self) -> dict[str, Any]:
        """Requests, errors, durations (ms), error rate, rate-limit waits, 429s, breaker."""
        snap = self.metrics.snapshot()
        limiter = self.rate_limiter.get_stats()
        breaker = self.circuit_breaker.get_stats()
        snap.update(
            instance=self.instance,
            rate_limit_waits=limiter["waits"],
            rate_limit_wait_seconds=limiter["wait_seconds"],
            rate_limiter=limiter,
            circuit_breaker_state=breaker["state"],
            circuit_breaker=breaker,
        )
        return snap


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError, OSError):
        return False


__all__ = ["REGIONS", "ITGlueClient", "filter_params"]
