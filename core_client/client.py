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
generic class (:mod:`core_client.resources`), the named methods over them from
:mod:`core_client.shortcuts`, the attachment routes from :mod:`core_client.attachments`;
:meth:`ITGlueClient.request`, :meth:`ITGlueClient.get_json` and
:meth:`ITGlueClient.iter_resources` reach any other route.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import platformdirs

from itglue_common import APP_NAME
from itglue_common.episode import REPORT_EVERY

from .attachments import Attachments
from .auth import get_api_key, validate_key
from .circuit_breaker import CircuitBreaker
from .download import Downloaded, DownloadTarget
from .exceptions import ConfigurationError
from .jsonapi import filter_params, joined
from .metrics import Metrics
from .models import Attachment, Document, Resource
from .names import NameResolver
from .rate_limiter import RateLimiter
from .redaction import Secret
from .reports import ClientMetrics, HealthReport, collect_metrics, probe_health
from .retry import RetryPolicy
from .shortcuts import ResourceShortcuts
from .transport import Response, Timeouts, Transport, check_url

if TYPE_CHECKING:
    import requests.adapters

    from .cache import MetadataCache
    from .database import Database

log = logging.getLogger("itglue_ingest.client")

PAGE_SIZE = 1000
REGIONS = {
    "us": "https://api.itglue.com",
    "eu": "https://api.eu.itglue.com",
    "au": "https://api.au.itglue.com",
}
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


class ITGlueClient(ResourceShortcuts):
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
    * ``breaker``: :class:`CircuitBreaker` (default: open after 5 consecutive failed attempts,
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
        report_every: float = REPORT_EVERY,
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
            report_every=report_every,
        )
        self.base_url = self._transport.base_url
        self._attachments = Attachments(self, self._transport)
        self._cache: MetadataCache | None = None
        self._cache_factory: Callable[[], MetadataCache] | None = None
        if callable(cache):
            self._cache_factory = cache
        else:
            self._cache = cache
        self._cache_lock = threading.Lock()
        self._names = NameResolver(self)
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
        api_key_file: str | os.PathLike[str] | None = None,
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
        rate_database: Database | None = None,
        page_size: int = PAGE_SIZE,
        report_every: float = REPORT_EVERY,
        cache_database: Database | Callable[[], Database] | None = None,
    ) -> ITGlueClient:
        """The client of instance ``name``, as the pipeline builds it.

        Endpoint: ``base_url`` or ``region`` us/eu/au (default us). Key: ``api_key``,
        else the file ``api_key_file`` (owner-only; ``${NAME}`` expanded from the
        environment) or the variable named by ``api_key_env``, else the keyring (service
        ``itglue-ingest``, username = ``name``), else ``ITGLUE_API_KEY``.
        ``state_dir`` (default: the platform's user state dir of itglue-ingest, made
        0700) holds ``<name>.ratelimit`` (the budget shared by every process using this
        dir: ``rate_limit`` requests per ``rate_window`` seconds, of which this client
        uses ``rate_share``, an upper bound: the limiter learns what the account leaves it;
        ``rate_penalty_seconds``: its longest own pause after a 429 without Retry-After) and
        ``<name>.db`` (the metadata cache, opened on first use of :attr:`cache`, unless
        ``cache_database`` names its database: a :class:`~core_client.database.Database`
        or a function opening one on first use, the pipeline's ``[state]`` backend). With
        ``rate_database`` (a PostgreSQL state database shared by several collectors,
        which the client then owns) the budget is its row ``name`` instead of the file.
        The other knobs build the :class:`Timeouts`, :class:`RetryPolicy` and
        :class:`CircuitBreaker`; ``report_every``: seconds between the "still failing"
        lines of an outage. Nothing is created before the configuration and the
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
        key = get_api_key(
            name, api_key=supplied, api_key_env=api_key_env, api_key_file=api_key_file
        )
        directory = Path(
            state_dir if state_dir is not None else platformdirs.user_state_dir(APP_NAME)
        )
        _private_dir(directory)
        try:
            limiter = RateLimiter(
                rate_limit,
                rate_window,
                rate_share,
                state_path=None if rate_database else directory / f"{name}.ratelimit",
                state_database=rate_database,
                state_name=name,
                penalty_seconds=rate_penalty_seconds,
            )
        except BaseException:
            if rate_database is not None:
                rate_database.close()
            raise
        database = directory / f"{name}.db"

        def open_cache() -> MetadataCache:
            from .cache import MetadataCache

            if cache_database is None:
                return MetadataCache(database)
            return MetadataCache(cache_database() if callable(cache_database) else cache_database)

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
                report_every=report_every,
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

    def _cache_if_any(self) -> MetadataCache | None:
        """The cache, or None for a client without one (or closed, or failing to open)."""
        if self._closed:
            return None
        try:
            return self.cache
        except ConfigurationError:
            return None
        except Exception as e:  # a cache that cannot open must not fail an API call
            log.warning("metadata cache unavailable: %s", e)
            return None

    def write_through(
        self, kind: str, records: Sequence[Resource], organization_id: Any = None
    ) -> None:
        """Write what the API answered into the metadata cache (the kinds it keeps).

        The seed's data flow: every response updates the cache, so lookups see what
        this client last read. A cache problem is logged, never raised: the call
        itself succeeded.
        """
        from .cache.records import KINDS

        if kind not in KINDS or not records:
            return
        cache = self._cache_if_any()
        if cache is None:
            return
        try:
            cache.put_many(kind, records, organization_id=organization_id, written=True)
        except Exception as e:
            log.warning("metadata cache not updated with %d %s: %s", len(records), kind, e)

    def forget(self, kind: str, record_ids: Iterable[Any]) -> None:
        """Drop records this client deleted in IT Glue from the metadata cache."""
        from .cache.records import KINDS

        if kind not in KINDS:
            return
        cache = self._cache_if_any()
        if cache is None:
            return
        try:
            for record_id in record_ids:
                cache.invalidate(
                    kind, record_id.id if isinstance(record_id, Resource) else record_id
                )
        except Exception as e:
            log.warning("metadata cache not updated after deleting %s: %s", kind, e)

    @property
    def names(self) -> NameResolver:
        """Turns names into ids (``configuration_type="Server"``): :mod:`core_client.names`."""
        return self._names

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

    # -- attachments (see core_client.attachments) --------------------------------------
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
        """Attach a file (``path``) or a binary ``stream``: :meth:`Attachments.upload`."""
        return self._attachments.upload(
            resource_type, resource_id, path=path, stream=stream, file_name=file_name, size=size
        )

    def list_attachments(self, resource_type: str, resource_id: Any) -> Iterator[Attachment]:
        return self._attachments.list(resource_type, resource_id)

    def get_attachment(
        self, resource_type: str, resource_id: Any, attachment_id: Any
    ) -> Attachment:
        return self._attachments.get(resource_type, resource_id, attachment_id)

    def download_attachment(
        self, resource_type: str, resource_id: Any, attachment: Attachment | Any
    ) -> bytes:
        """The attachment's bytes in memory (small files): :meth:`Attachments.download`."""
        return self._attachments.download(resource_type, resource_id, attachment)

    def download_attachment_to(
        self,
        resource_type: str,
        resource_id: Any,
        attachment: Attachment | Any,
        target: DownloadTarget,
    ) -> Downloaded:
        """Stream it into a path (atomically) or a binary file object, bounded memory,
        size checked: :meth:`Attachments.download_to`."""
        return self._attachments.download_to(resource_type, resource_id, attachment, target)

    def rename_attachment(
        self, resource_type: str, resource_id: Any, attachment_id: Any, name: str
    ) -> Attachment | None:
        """PATCH the display name (the original file name cannot change)."""
        return self._attachments.rename(resource_type, resource_id, attachment_id, name)

    def delete_attachments(self, resource_type: str, resource_id: Any, ids: Iterable[Any]) -> None:
        self._attachments.delete(resource_type, resource_id, ids)

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
        return probe_health(
            self.instance,
            self.base_url,
            self.rate_limiter,
            self.circuit_breaker,
            lambda: self.request("GET", "/organizations", params={"page[size]": 1}),
        )

    def get_metrics(self) -> ClientMetrics:
        """Requests, errors, durations (ms), error rate, rate-limit waits, 429s, breaker."""
        return collect_metrics(self.instance, self.metrics, self.rate_limiter, self.circuit_breaker)


__all__ = ["PAGE_SIZE", "REGIONS", "ITGlueClient", "filter_params"]
