"""HTTP/JSON feed source (type ``http_feed``): documents pulled from paginated JSON APIs.

Each poll walks the feed page by page (next link in the body, RFC 8288 ``Link`` header,
page number, offset/limit or opaque cursor), maps every item to a :class:`RecordDraft`
(id, name, file URL / inline base64 / text or HTML body, organization, updated-at) and
emits it. Downloads are streamed straight into the engine's spool: the HTTP response is
opened before ``emit`` (so a 404 or a 5xx is known before anything is recorded) and its
body is handed over as a file object that never holds the whole file.

Exactly-once, from the source's side:

* An item's identity is ``(id, version)``: the version is the updated-at value when the
  feed has one, else a hash of the item. The ledger is asked first (``context.known``),
  so an unchanged item costs no download on later polls; new content is a new version.
* The checkpoint (the highest updated-at, or the cursor / next link of the next page)
  is saved only after ``emit`` returned for every item before it. An item that could not
  be spooled for a temporary reason (429/5xx after retries, a dropped connection) holds
  the checkpoint back, so the next poll sees it again. Items that can never succeed
  (missing or mistyped fields, a 404 download, too large) are recorded as failed with
  the reason (``context.fail``) and do not hold anything back.
* A poll that cannot go on (not JSON, a page that answers 4xx, pagination that loops,
  an unreachable feed) fails with a clear reason in the log; what was spooled before
  stays checkpointed and the next poll starts from there.

Hand-written parts, and why:

* Retries: the loop is ours rather than urllib3's ``Retry`` or stamina because every
  wait must end as soon as the engine is stopping (``context.stopping.wait``: the daemon
  must exit within seconds, a ``Retry-After: 120`` must not hold it), Retry-After values
  are capped, and a streamed download is retried only before any byte reached the
  spool. The HTTP-date form of Retry-After is parsed by the standard library.
* Redirects are followed by hand (at most 5): every hop is checked against the HTTPS
  rule, and the auth header is sent only to the feed's own origin (requests keeps custom
  headers such as ``X-API-Key`` on a cross-host redirect).
* HTTPS rule, same as the IT Glue client: ``https://`` only; ``http://`` only for a
  loopback host with ``allow_insecure_loopback = true``; credentials in a URL are refused.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.utils
import hashlib
import html
import io
import ipaddress
import json
import posixpath
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any, Literal
from urllib.parse import unquote, urljoin, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline import (
    FileInput,
    PermanentError,
    PipelineError,
    RecordDraft,
    Section,
    Source,
    SourceOptions,
    TransientError,
    hookimpl,
)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
CHUNK = 64 * 1024


# -------------------------------------------------------------------------
# Configuration
# -------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthOptions(_Strict):
    """How to authenticate. The secret itself is never in the configuration file: it comes
    from the environment variable ``env`` when set, else from the keyring (service
    ``itglue-ingest``, user ``source:<source name>:<secret>``)."""

    type: Literal["none", "header", "bearer", "basic"] = "none"
    header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    username: str | None = None  # basic auth only (the user name is not a secret)
    secret: str = Field(default="token", pattern=r"^[A-Za-z0-9_.-]+$")  # keyring key name
    env: str | None = None  # environment variable holding the secret

    @model_validator(mode="after")
    def _complete(self) -> AuthOptions:
        if self.type == "header" and not self.header:
            raise ValueError('auth.type "header" needs auth.header (e.g. "X-API-Key")')
        if self.type == "basic" and not self.username:
            raise ValueError('auth.type "basic" needs auth.username')
        return self


class NoPagination(_Strict):
    """The first answer is the whole feed."""

    style: Literal["none"] = "none"


class NextLinkPagination(_Strict):
    """The body holds the URL of the next page at ``next_path`` (absolute or relative)."""

    style: Literal["next_link"]
    next_path: str


class LinkHeaderPagination(_Strict):
    """RFC 8288: ``Link: <https://...>; rel="next"``."""

    style: Literal["link_header"]


class PagePagination(_Strict):
    """``?page=1, 2, ...`` until a page is empty (or shorter than ``page_size``)."""

    style: Literal["page"]
    page_param: str = "page"
    first_page: int = 1
    size_param: str | None = None
    page_size: int | None = Field(default=None, gt=0)


class OffsetPagination(_Strict):
    """``?offset=0&limit=100``, then offset 100, ... until a page is shorter than ``limit``."""

    style: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(default=100, gt=0)


class CursorPagination(_Strict):
    """The body holds an opaque cursor at ``cursor_path``; sent back as ``cursor_param``."""

    style: Literal["cursor"]
    cursor_path: str
    cursor_param: str = "cursor"
    has_more_path: str | None = None  # a boolean; false ends the feed even with a cursor


Pagination = Annotated[
    NoPagination
    | NextLinkPagination
    | LinkHeaderPagination
    | PagePagination
    | OffsetPagination
    | CursorPagination,
    Field(discriminator="style"),
]


class FieldMap(_Strict):
    """Dotted paths (``attributes.title``, ``files.0.url``) of each item's fields."""

    id: str = "id"
    name: str | None = None
    file_url: str | None = None
    file_base64: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    organization: str | None = None
    updated_at: str | None = None
    file_name: str | None = None
    mime: str | None = None

    @model_validator(mode="after")
    def _some_content(self) -> FieldMap:
        if not (self.file_url or self.file_base64 or self.body_text or self.body_html):
            raise ValueError(
                "map at least one of fields.file_url, fields.file_base64, "
                "fields.body_text, fields.body_html"
            )
        return self


class HttpFeedOptions(SourceOptions):
    """The ``[[sources]]`` keys of an ``http_feed`` source (see config/example.toml)."""

    url: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    auth: AuthOptions = Field(default_factory=AuthOptions)
    pagination: Pagination = Field(default_factory=NoPagination)
    items_path: str = ""  # "" = the body itself is the list
    fields: FieldMap
    checkpoint: Literal["auto", "updated_at", "cursor", "none"] = "auto"
    since_param: str | None = None  # query parameter that takes the saved updated-at
    poll_interval: float = Field(default=300.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    max_pages: int = Field(default=100, ge=1)
    max_page_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    backoff_base: float = Field(default=1.0, ge=0)
    backoff_max: float = Field(default=60.0, ge=0)
    retry_after_max: float = Field(default=120.0, ge=0)
    allow_insecure_loopback: bool = False
    ca_bundle: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> HttpFeedOptions:
        problem = url_problem(self.url, self.allow_insecure_loopback)
        if problem:
            raise ValueError(f"url: {problem}")
        mode = self.checkpoint_mode
        if mode == "updated_at" and not self.fields.updated_at:
            raise ValueError('checkpoint "updated_at" needs fields.updated_at')
        if mode == "cursor" and self.pagination.style not in ("cursor", "next_link", "link_header"):
            raise ValueError(
                'checkpoint "cursor" needs pagination.style "cursor", "next_link" or "link_header"'
            )
        if self.since_param and mode != "updated_at":
            raise ValueError('since_param needs checkpoint "updated_at" (and fields.updated_at)')
        if self.ca_bundle is not None and not self.ca_bundle.is_file():
            raise ValueError(f"ca_bundle: no such file: {self.ca_bundle}")
        return self

    @property
    def checkpoint_mode(self) -> Literal["updated_at", "cursor", "none"]:
        """``auto`` is ``updated_at`` when the feed maps one, else ``none``."""
        if self.checkpoint == "auto":
            return "updated_at" if self.fields.updated_at else "none"
        return self.checkpoint


# -------------------------------------------------------------------------
# Small pure helpers
# -------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str, allow_insecure_loopback: bool) -> str | None:
    """Why ``url`` may not be fetched (HTTPS rule), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as e:
        return f"not a valid URL ({e})"
    if parts.username or parts.password:
        return "credentials in the URL are refused; use the auth settings"
    if not host:
        return f"not an absolute URL: {display_url(url)!r}"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if _is_loopback(host):
            if allow_insecure_loopback:
                return None
            return (
                f"refusing http:// to {host}: HTTPS only (plain http:// is allowed for "
                "loopback hosts with allow_insecure_loopback = true)"
            )
        return f"refusing http:// to {host}: HTTPS only"
    return f"unsupported URL scheme {parts.scheme!r}: HTTPS only"


def display_url(url: str) -> str:
    """A URL without its query string and credentials, for messages (signed URLs and
    cursors can carry tokens)."""
    try:
        p = urlsplit(url)
        host = p.hostname or ""
        port = f":{p.port}" if p.port else ""
    except ValueError:
        return "<invalid URL>"
    return f"{p.scheme}://{host}{port}{p.path}"


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urlsplit(url)
    default = {"https": 443, "http": 80}.get(p.scheme)
    return (p.scheme, (p.hostname or "").lower(), p.port or default)


_MISSING = object()


def lookup(doc: Any, path: str) -> Any:
    """The value at a dotted path (``a.b.0.c``; list elements by index), or ``_MISSING``.
    An empty path is the document itself."""
    if path == "":
        return doc
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            if part not in cur:
                return _MISSING
            cur = cur[part]
        elif isinstance(cur, list) and re.fullmatch(r"-?\d+", part):
            i = int(part)
            if not -len(cur) <= i < len(cur):
                return _MISSING
            cur = cur[i]
        else:
            return _MISSING
    return cur


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", bool: "a boolean", str: "a string"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def parse_timestamp(value: Any) -> float | None:
    """An updated-at value as seconds since the epoch (ISO 8601 or a number), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def safe_file_name(name: str, fallback: str) -> str:
    """The last path segment, without control characters; ``fallback`` when empty."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip().strip(".")
    return name[:200] or fallback


def text_to_html(text: str) -> str:
    """Plain text as HTML paragraphs (blank lines split paragraphs; newlines are <br>)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    return "".join(
        "<p>" + html.escape(p.strip()).replace("\n", "<br>") + "</p>" for p in paragraphs
    )


def _canonical_hash(item: Any) -> str:
    data = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(data.encode()).hexdigest()


# -------------------------------------------------------------------------
# Errors inside a poll
# -------------------------------------------------------------------------


class FeedProblem(Exception):
    """A request or an answer went wrong; ``transient`` ones may work on the next poll."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class _Stopping(Exception):
    """The engine is shutting down: leave the poll now."""


class _ItemInvalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -------------------------------------------------------------------------
# Streaming download handed to the spool
# -------------------------------------------------------------------------


class _DownloadStream(io.RawIOBase):
    """The body of an open download, read in chunks as the spool asks for them.

    A connection lost mid-body becomes a :class:`TransientError`, which the engine lets
    through ``emit`` (nothing is recorded) so the item is tried again on the next poll.
    The size limit is the spool's (it stops copying at ``max_file_size`` and records the
    item as failed); the Content-Length was checked before ``emit``.
    """

    def __init__(self, response: requests.Response, url: str) -> None:
        super().__init__()
        self._response = response
        self._url = url
        self.interrupted: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._response.raw.read(min(len(view), CHUNK), decode_content=True)
        except Exception as e:  # urllib3 ProtocolError / ReadTimeoutError / OSError
            self.interrupted = (
                f"download of {display_url(self._url)} was interrupted ({type(e).__name__})"
            )
            raise TransientError(self.interrupted) from None
        n = len(data)
        view[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


# -------------------------------------------------------------------------
# Watermark of the updated-at checkpoint
# -------------------------------------------------------------------------


@dataclass
class _Watermark:
    """Tracks what the ``updated_at`` checkpoint may advance to during one poll.

    ``done`` items are in the ledger (spooled, known or failed for good); ``deferred``
    ones were not spooled for a temporary reason. The checkpoint may move to the highest
    done value, but never past the lowest deferred one (the since-filter is inclusive,
    so that item comes back). Before the feed was walked to its end this is only safe
    while the items came in ascending updated-at order (later pages are newer).
    """

    saved: float | None
    best: tuple[float, str] | None = None
    lowest_deferred: tuple[float, str] | None = None
    ascending: bool = True
    _last: float | None = None

    def _see(self, key: float) -> None:
        if self._last is not None and key < self._last:
            self.ascending = False
        self._last = key

    def done(self, key: float, raw: str) -> None:
        self._see(key)
        if self.best is None or key > self.best[0]:
            self.best = (key, raw)

    def deferred(self, key: float, raw: str) -> None:
        self._see(key)
        if self.lowest_deferred is None or key < self.lowest_deferred[0]:
            self.lowest_deferred = (key, raw)

    def candidate(self, complete: bool) -> str | None:
        if not (complete or self.ascending) or self.best is None:
            return None
        cand = self.best
        if self.lowest_deferred is not None and self.lowest_deferred[0] < cand[0]:
            cand = self.lowest_deferred
        if self.saved is not None and cand[0] <= self.saved:
            return None
        self.saved = cand[0]
        return cand[1]


# -------------------------------------------------------------------------
# The source
# -------------------------------------------------------------------------


@dataclass
class PollReport:
    """What one poll did (logged at the end of each poll; kept as ``last_poll``)."""

    pages: int = 0
    items: int = 0
    emitted: int = 0
    known: int = 0
    failed: int = 0
    deferred: int = 0
    downloads: int = 0
    complete: bool = False
    error: str | None = None
    checkpoints: list[str] = field(default_factory=list)


@dataclass
class _Page:
    url: str
    params: dict[str, Any]
    token: str | None  # what the cursor checkpoint would save to resume at this page
    number: int = 0  # page style: the page number; offset style: the offset

    def key(self) -> str:
        return json.dumps([self.url, sorted((k, str(v)) for k, v in self.params.items())])


class HttpFeedSource(Source):
    """Polls a paginated JSON feed; see the module docstring."""

    options_model = HttpFeedOptions

    def __init__(self, name: str, options: Any, context: Any) -> None:
        if not isinstance(options, HttpFeedOptions):
            options = HttpFeedOptions.model_validate(options)
        super().__init__(name, options, context)
        self.opts: HttpFeedOptions = options
        self.poll_interval = options.poll_interval
        self._session = requests.Session()
        # passed on every request: a session-level ``verify`` loses to $REQUESTS_CA_BUNDLE
        self._verify: str | bool = str(options.ca_bundle) if options.ca_bundle else True
        self._session.headers["User-Agent"] = "itglue-ingest http_feed"
        self._auth_headers: dict[str, str] | None = None
        self._feed_origin = _origin(options.url)
        self.last_poll: PollReport | None = None

    def __repr__(self) -> str:
        return f"<HttpFeedSource {self.name!r} {display_url(self.opts.url)}>"

    # ----- lifecycle ---------------------------------------------------------

    def scan(self) -> None:
        """One poll of the feed; failures are logged with their reason, never raised."""
        report = PollReport()
        self.last_poll = report
        try:
            self._poll(report)
        except _Stopping:
            report.error = "stopped"
        except FeedProblem as e:
            report.error = e.reason
        except PipelineError as e:  # a missing secret
            report.error = e.reason
        except Exception as e:  # a bug must not end the daemon's watch loop
            report.error = f"unexpected {type(e).__name__}: {e}"
            self.context.log.exception("source %s: poll crashed", self.name)
        log = self.context.log
        if report.error and report.error != "stopped":
            log.error(
                "source %s: poll failed: %s (pages=%d, emitted=%d)",
                self.name,
                report.error,
                report.pages,
                report.emitted,
            )
        log.info(
            "source %s: poll: pages=%d items=%d emitted=%d known=%d failed=%d deferred=%d",
            self.name,
            report.pages,
            report.items,
            report.emitted,
            report.known,
            report.failed,
            report.deferred,
        )

    def watch(self) -> None:
        """Poll every ``poll_interval`` seconds until the engine stops. The engine scans
        once when the daemon starts, so the first wait comes before the first poll."""
        while not self.context.stopping.wait(self.poll_interval):
            self.scan()

    def close(self) -> None:
        self._session.close()

    # ----- HTTP ------------------------------------------------------------

    def _headers_for(self, url: str) -> dict[str, str]:
        if _origin(url) != self._feed_origin:
            return {}  # never send our credentials to another host
        if self._auth_headers is None:
            self._auth_headers = self._build_auth()
        return dict(self._auth_headers)

    def _build_auth(self) -> dict[str, str]:
        auth = self.opts.auth
        if auth.type == "none":
            return {}
        secret = self.context.secret(auth.secret, env=auth.env)
        if auth.type == "bearer":
            return {"Authorization": f"Bearer {secret}"}
        if auth.type == "basic":
            token = base64.b64encode(f"{auth.username}:{secret}".encode()).decode()
            return {"Authorization": f"Basic {token}"}
        assert auth.header is not None
        return {auth.header: secret}

    def _wait(self, seconds: float) -> None:
        if self.context.stopping.wait(max(0.0, seconds)):
            raise _Stopping

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.opts.backoff_max, self.opts.backoff_base * (2.0**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _get(
        self,
        url: str,
        params: dict[str, Any] | None,
        what: str,
        extra_headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """GET with retries on 408/429/5xx and transport errors, redirects checked by hand.

        Returns the (streamed, unread) response of the final hop, whatever its status;
        raises :class:`FeedProblem` when retries are exhausted or a URL is refused.
        """
        attempt = 0
        hops = 0
        while True:
            if self.context.stopping.is_set():
                raise _Stopping
            problem = url_problem(url, self.opts.allow_insecure_loopback)
            if problem:
                raise FeedProblem(f"{what}: {problem}", transient=False)
            headers = self._headers_for(url)
            headers.update(extra_headers or {})
            try:
                resp = self._session.get(
                    url,
                    params=params,
                    headers=headers,
                    timeout=(self.opts.connect_timeout, self.opts.read_timeout),
                    stream=True,
                    allow_redirects=False,
                    verify=self._verify,
                )
            except requests.RequestException as e:
                reason = f"{what} {display_url(url)}: {type(e).__name__}"
                if isinstance(e, requests.exceptions.SSLError):
                    raise FeedProblem(
                        f"{reason} (TLS verification failed)", transient=True
                    ) from None
                if attempt >= self.opts.max_retries:
                    raise FeedProblem(
                        f"{reason} after {attempt + 1} attempts", transient=True
                    ) from None
                self._wait(self._backoff(attempt))
                attempt += 1
                continue
            status = resp.status_code
            if status in REDIRECT_STATUSES and resp.headers.get("Location"):
                resp.close()
                hops += 1
                if hops > MAX_REDIRECTS:
                    raise FeedProblem(
                        f"{what} {display_url(url)}: too many redirects", transient=False
                    )
                url = urljoin(resp.url, resp.headers["Location"])
                params = None
                continue
            if status in RETRY_STATUSES:
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                resp.close()
                if attempt >= self.opts.max_retries:
                    raise FeedProblem(
                        f"{what} {display_url(url)} answered {status} "
                        f"{resp.reason or ''} after {attempt + 1} attempts".replace("  ", " "),
                        transient=True,
                    )
                delay = self._backoff(attempt) if retry_after is None else retry_after
                self._wait(min(delay, self.opts.retry_after_max))
                attempt += 1
                continue
            return resp

    def _fetch_page(self, page: _Page) -> tuple[requests.Response, Any]:
        what = "feed page"
        resp = self._get(page.url, page.params, what, {"Accept": "application/json"})
        try:
            shown = display_url(resp.url or page.url)
            if not 200 <= resp.status_code < 300:
                hint = " (check the auth settings)" if resp.status_code in (401, 403) else ""
                raise FeedProblem(
                    f"{what} {shown} answered {resp.status_code} {resp.reason or ''}".rstrip()
                    + hint,
                    transient=False,
                )
            body = bytearray()
            try:
                for chunk in resp.iter_content(CHUNK):
                    body += chunk
                    if len(body) > self.opts.max_page_bytes:
                        raise FeedProblem(
                            f"{what} {shown} is larger than max_page_bytes "
                            f"({self.opts.max_page_bytes})",
                            transient=False,
                        )
            except requests.RequestException as e:
                raise FeedProblem(
                    f"{what} {shown}: {type(e).__name__} while reading", transient=True
                ) from None
            try:
                doc = json.loads(bytes(body))
            except ValueError:
                ctype = resp.headers.get("Content-Type", "no Content-Type")
                start = bytes(body[:40]).decode("utf-8", "replace")
                raise FeedProblem(
                    f"{what} {shown} is not JSON ({ctype}; starts with {start!r})",
                    transient=False,
                ) from None
            return resp, doc
        finally:
            resp.close()

    # ----- pagination --------------------------------------------------------

    def _first_page(self, since: str | None) -> _Page:
        params: dict[str, Any] = dict(self.opts.params)
        if since is not None and self.opts.since_param:
            params[self.opts.since_param] = since
        pg = self.opts.pagination
        url = self.opts.url
        saved = (
            self.context.get_checkpoint("cursor") if self.opts.checkpoint_mode == "cursor" else None
        )
        if isinstance(pg, CursorPagination):
            if saved:
                params[pg.cursor_param] = saved
            return _Page(url, params, saved)
        if isinstance(pg, NextLinkPagination | LinkHeaderPagination) and saved:
            return _Page(saved, {}, saved)
        if isinstance(pg, PagePagination):
            if pg.size_param and pg.page_size:
                params[pg.size_param] = pg.page_size
            params[pg.page_param] = pg.first_page
            return _Page(url, params, None, pg.first_page)
        if isinstance(pg, OffsetPagination):
            params[pg.offset_param] = 0
            params[pg.limit_param] = pg.limit
            return _Page(url, params, None, 0)
        return _Page(url, params, None)

    def _next_page(
        self, page: _Page, resp: requests.Response, doc: Any, items: list[Any]
    ) -> _Page | None:
        pg = self.opts.pagination
        base_url = resp.url or page.url
        if isinstance(pg, NextLinkPagination):
            nxt = lookup(doc, pg.next_path)
            if nxt is _MISSING or nxt is None or nxt == "":
                return None
            if not isinstance(nxt, str):
                raise FeedProblem(
                    f"next link at {pg.next_path!r} is {_type_name(nxt)}, expected a URL string",
                    transient=False,
                )
            url = urljoin(base_url, nxt)
            return _Page(url, {}, url)
        if isinstance(pg, LinkHeaderPagination):
            link = resp.links.get("next", {}).get("url")
            if not link:
                return None
            url = urljoin(base_url, link)
            return _Page(url, {}, url)
        if isinstance(pg, PagePagination):
            if not items or (pg.page_size and len(items) < pg.page_size):
                return None
            params = dict(page.params)
            params[pg.page_param] = page.number + 1
            return _Page(page.url, params, None, page.number + 1)
        if isinstance(pg, OffsetPagination):
            if len(items) < pg.limit:
                return None
            params = dict(page.params)
            params[pg.offset_param] = page.number + len(items)
            return _Page(page.url, params, None, page.number + len(items))
        if isinstance(pg, CursorPagination):
            cursor = lookup(doc, pg.cursor_path)
            if cursor is _MISSING or cursor is None or cursor == "":
                return None
            if not isinstance(cursor, str | int) or isinstance(cursor, bool):
                raise FeedProblem(
                    f"cursor at {pg.cursor_path!r} is {_type_name(cursor)}, expected a string",
                    transient=False,
                )
            if pg.has_more_path is not None:
                more = lookup(doc, pg.has_more_path)
                if more is not _MISSING and not isinstance(more, bool):
                    raise FeedProblem(
                        f"{pg.has_more_path!r} is {_type_name(more)}, expected true/false",
                        transient=False,
                    )
                if more is False:
                    # the end of a change feed: keep its latest cursor for the next poll
                    return _Page(page.url, {}, str(cursor), number=-1)
            if not items and str(cursor) == page.token:
                # an empty page that hands back its own cursor: nothing new yet
                return _Page(page.url, {}, str(cursor), number=-1)
            params = dict(page.params)
            params[pg.cursor_param] = str(cursor)
            return _Page(page.url, params, str(cursor))
        return None

    # ----- the poll ----------------------------------------------------------

    def _poll(self, report: PollReport) -> None:
        mode = self.opts.checkpoint_mode
        since = self.context.get_checkpoint("updated_at") if mode == "updated_at" else None
        mark = _Watermark(saved=parse_timestamp(since) if since is not None else None)
        page: _Page | None = self._first_page(since)
        seen_requests: set[str] = set()
        seen_bodies: set[str] = set()
        try:
            while page is not None:
                if self.context.stopping.is_set():
                    raise _Stopping
                if report.pages >= self.opts.max_pages:
                    self.context.log.info(
                        "source %s: stopped after max_pages=%d; the next poll goes on",
                        self.name,
                        self.opts.max_pages,
                    )
                    return
                key = page.key()
                if key in seen_requests:
                    raise FeedProblem(
                        f"pagination loops: {display_url(page.url)} with the same parameters "
                        "was already fetched in this poll",
                        transient=False,
                    )
                seen_requests.add(key)
                resp, doc = self._fetch_page(page)
                report.pages += 1
                items = lookup(doc, self.opts.items_path)
                where = repr(self.opts.items_path) if self.opts.items_path else "the body"
                if items is _MISSING:
                    raise FeedProblem(f"no items at {where} in the answer", transient=False)
                if not isinstance(items, list):
                    raise FeedProblem(
                        f"items at {where} are {_type_name(items)}, expected a list",
                        transient=False,
                    )
                if items:
                    digest = _canonical_hash(items)
                    if digest in seen_bodies:
                        raise FeedProblem(
                            f"pagination loops: page {report.pages} repeats the items of an "
                            "earlier page",
                            transient=False,
                        )
                    seen_bodies.add(digest)
                nxt = self._next_page(page, resp, doc, items)
                page_deferred = False
                for item in items:
                    if self.context.stopping.is_set():
                        raise _Stopping
                    if not self._handle_item(item, page.url, report, mark):
                        page_deferred = True
                if mode == "cursor":
                    if page_deferred:
                        self.context.log.warning(
                            "source %s: an item could not be spooled; the next poll resumes "
                            "at this page",
                            self.name,
                        )
                        return
                    token = nxt.token if nxt is not None else page.token
                    self._save("cursor", token, report)
                elif mode == "updated_at":
                    self._save("updated_at", mark.candidate(complete=False), report)
                if nxt is not None and nxt.number == -1:
                    nxt = None
                page = nxt
            report.complete = True
            if mode == "updated_at":
                self._save("updated_at", mark.candidate(complete=True), report)
        finally:
            self.last_poll = report

    def _save(self, key: str, value: str | None, report: PollReport) -> None:
        if value is None or value == self.context.get_checkpoint(key):
            return
        self.context.set_checkpoint(key, value)
        report.checkpoints.append(value)

    # ----- items -------------------------------------------------------------

    def _handle_item(self, item: Any, page_url: str, report: PollReport, mark: _Watermark) -> bool:
        """Emit one item; False when it was not safely recorded (holds the checkpoint)."""
        report.items += 1
        f = self.opts.fields
        ref, version, stamp = self._identity(item)
        if self.context.known(ref, version) is not None:
            report.known += 1
            if stamp is not None:
                mark.done(*stamp)
            return True
        draft = RecordDraft(
            source_ref=ref,
            name=ref,
            version=version,
            metadata={"feed": display_url(self.opts.url), "item_id": ref},
        )
        try:
            if not isinstance(item, dict):
                raise _ItemInvalid(f"item is {_type_name(item)}, expected an object")
            self._fill_draft(draft, item, f)
            if f.updated_at and stamp is None:
                raise _ItemInvalid(self._field_problem(item, "updated_at", f.updated_at))
        except _ItemInvalid as e:
            self._fail(draft, e.reason, report, stamp, mark)
            return True
        return self._emit_with_download(draft, item, page_url, report, mark, stamp)

    def _identity(self, item: Any) -> tuple[str, str, tuple[float, str] | None]:
        f = self.opts.fields
        raw_id = lookup(item, f.id) if isinstance(item, dict) else _MISSING
        digest = _canonical_hash(item)
        valid_id = isinstance(raw_id, str | int) and not isinstance(raw_id, bool) and raw_id != ""
        ref = str(raw_id) if valid_id else f"invalid-item:{digest[:24]}"
        stamp: tuple[float, str] | None = None
        if f.updated_at and isinstance(item, dict):
            raw = lookup(item, f.updated_at)
            key = parse_timestamp(raw)
            if key is not None:
                stamp = (key, str(raw))
        version = stamp[1] if stamp is not None else digest
        return ref, version, stamp

    def _field_problem(self, item: Any, name: str, path: str) -> str:
        value = lookup(item, path)
        if value is _MISSING:
            return f"field {name} ({path!r}) is missing"
        if name == "updated_at":
            return f"field {name} ({path!r}) is not a date-time or a number: {str(value)[:40]!r}"
        return f"field {name} ({path!r}) is {_type_name(value)}"

    def _string(self, item: dict[str, Any], name: str, required: bool) -> str | None:
        path: str | None = getattr(self.opts.fields, name)
        if path is None:
            return None
        value = lookup(item, path)
        if value is _MISSING or value is None:
            if required:
                raise _ItemInvalid(f"field {name} ({path!r}) is missing")
            return None
        if name == "id" and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise _ItemInvalid(f"field {name} ({path!r}) is {_type_name(value)}, expected a string")
        return value

    def _fill_draft(self, draft: RecordDraft, item: dict[str, Any], f: FieldMap) -> None:
        if not self._string(item, "id", required=True):
            raise _ItemInvalid(f"field id ({f.id!r}) is empty")
        name = self._string(item, "name", required=True)
        draft.organization = self._string(item, "organization", required=False)
        text = self._string(item, "body_text", required=False)
        body = self._string(item, "body_html", required=False)
        file_url = self._string(item, "file_url", required=False)
        b64 = self._string(item, "file_base64", required=False)
        file_name = self._string(item, "file_name", required=False)
        mime = self._string(item, "mime", required=False)
        if not (text or body or file_url or b64):
            mapped = [p for p in (f.file_url, f.file_base64, f.body_text, f.body_html) if p]
            raise _ItemInvalid(f"item has no content (none of {', '.join(map(repr, mapped))})")
        if body:
            draft.sections.append(Section(content=body))
        if text:
            draft.sections.append(Section(content=text_to_html(text)))
        draft.metadata.update(
            {"file_name": file_name, "mime": mime, "file_url": file_url, "base64": b64}
        )
        fallback = safe_file_name(name or "", draft.source_ref) if name else draft.source_ref
        draft.name = name or (safe_file_name(file_name, fallback) if file_name else fallback)

    def _fail(
        self,
        draft: RecordDraft,
        reason: str,
        report: PollReport,
        stamp: tuple[float, str] | None,
        mark: _Watermark,
    ) -> None:
        self._strip_private(draft)
        self.context.fail(draft, reason)
        report.failed += 1
        self.context.log.warning(
            "source %s: item %s failed: %s", self.name, draft.source_ref, reason
        )
        if stamp is not None:
            mark.done(*stamp)

    @staticmethod
    def _strip_private(draft: RecordDraft) -> dict[str, Any]:
        taken = {
            k: draft.metadata.pop(k, None) for k in ("file_name", "mime", "file_url", "base64")
        }
        if taken.get("file_url"):
            draft.metadata["url"] = display_url(str(taken["file_url"]))
        return taken

    def _emit_with_download(
        self,
        draft: RecordDraft,
        item: dict[str, Any],
        page_url: str,
        report: PollReport,
        mark: _Watermark,
        stamp: tuple[float, str] | None,
    ) -> bool:
        meta = self._strip_private(draft)
        file_name: str | None = meta["file_name"]
        mime: str | None = meta["mime"]
        limit = self.context.max_file_size
        response: requests.Response | None = None
        if meta["base64"]:
            try:
                data = base64.b64decode(re.sub(r"\s+", "", meta["base64"]), validate=True)
            except (binascii.Error, ValueError):
                self._fail(
                    draft,
                    f"field file_base64 ({self.opts.fields.file_base64!r}) is not valid base64",
                    report,
                    stamp,
                    mark,
                )
                return True
            if len(data) > limit:
                self._fail(
                    draft,
                    f"inline file is {len(data)} bytes, over the limit of {limit}",
                    report,
                    stamp,
                    mark,
                )
                return True
            payload = data
            draft.files.append(
                FileInput(
                    file_name=safe_file_name(file_name or draft.name, draft.source_ref),
                    open=lambda: io.BytesIO(payload),
                    claimed_mime=mime,
                )
            )
        if meta["file_url"]:
            url = urljoin(page_url, meta["file_url"])
            try:
                response = self._open_download(url, limit)
            except FeedProblem as e:
                if e.transient:
                    report.deferred += 1
                    self.context.log.warning(
                        "source %s: item %s deferred to the next poll: %s",
                        self.name,
                        draft.source_ref,
                        e.reason,
                    )
                    if stamp is not None:
                        mark.deferred(*stamp)
                    return False
                self._fail(draft, e.reason, report, stamp, mark)
                return True
            report.downloads += 1
            name = (
                file_name
                or _disposition_name(response)
                or posixpath.basename(unquote(urlsplit(response.url or url).path))
            )
            claimed = mime or (response.headers.get("Content-Type") or "").split(";")[0].strip()
            first: list[requests.Response] = [response]

            def opener() -> IO[bytes]:
                # the response opened above; a second call (a retry inside the engine)
                # opens the download again
                resp = first.pop() if first else self._open_download(url, limit)
                return io.BufferedReader(_DownloadStream(resp, url), CHUNK)

            draft.files.append(
                FileInput(
                    file_name=safe_file_name(name, f"{draft.source_ref}.bin"),
                    open=opener,
                    claimed_mime=claimed or None,
                    metadata={"url": display_url(url), "content_length": _content_length(response)},
                )
            )
        try:
            result = self.context.emit(draft)
        except TransientError as e:
            return self._deferred(draft, e.reason, report, mark, stamp)
        except FeedProblem as e:  # a re-opened download failed
            if e.transient:
                return self._deferred(draft, e.reason, report, mark, stamp)
            self._fail(draft, e.reason, report, stamp, mark)
            return True
        except PermanentError as e:
            self._fail(draft, e.reason, report, stamp, mark)
            return True
        finally:
            if response is not None:
                response.close()
        if result.status == "accepted":
            report.emitted += 1
        elif result.status == "known":
            report.known += 1
        else:
            report.failed += 1
        if stamp is not None:
            mark.done(*stamp)
        return True

    def _deferred(
        self,
        draft: RecordDraft,
        reason: str,
        report: PollReport,
        mark: _Watermark,
        stamp: tuple[float, str] | None,
    ) -> bool:
        report.deferred += 1
        self.context.log.warning(
            "source %s: item %s deferred to the next poll: %s", self.name, draft.source_ref, reason
        )
        if stamp is not None:
            mark.deferred(*stamp)
        return False

    def _open_download(self, url: str, limit: int) -> requests.Response:
        """Open a download (status checked, Content-Length checked); the body is unread."""
        resp = self._get(url, None, "download", {"Accept-Encoding": "identity"})
        shown = display_url(resp.url or url)
        if not 200 <= resp.status_code < 300:
            resp.close()
            raise FeedProblem(
                f"download {shown} answered {resp.status_code} {resp.reason or ''}".rstrip(),
                transient=False,
            )
        size = _content_length(resp)
        if size is not None and size > limit:
            resp.close()
            raise FeedProblem(
                f"download {shown} is {size} bytes (Content-Length), over the limit of {limit}",
                transient=False,
            )
        return resp


def _content_length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _disposition_name(resp: requests.Response) -> str | None:
    value = resp.headers.get("Content-Disposition")
    if not value:
        return None
    msg = email.message.Message()
    msg["Content-Disposition"] = value
    name = msg.get_filename()
    return name or None


@hookimpl
def ingest_register_sources(register: Any) -> None:
    """The ``http_feed`` source type."""
    register("http_feed", HttpFeedSource)
