"""HTTP for the IT Glue client: one ``requests.Session`` plus the resilience policy.

Every request goes: circuit breaker (fail fast when open) -> for each attempt: rate
limiter (wait for budget) -> HTTPS request with connect/read timeouts -> classify.

Retry policy (why each rule):

* **429** is retried without limit after the limiter's pause (``Retry-After`` or its
  own estimate): the budget comes back by itself, so a 429 must never fail an
  operation. Only :meth:`Transport.close` interrupts the wait.
* **Failures before the request was sent** (connect refused/timeout, DNS, TLS
  handshake interrupted) are retried for any method: the server never saw it.
* **Idempotent methods** (GET, HEAD, PUT, PATCH, DELETE) are also retried after a
  5xx, a read timeout or a connection lost after sending. PATCH is treated as
  idempotent because every PATCH this client sends sets absolute values (attributes,
  the full merged trait set, a publish flag, a name); resending one yields the same
  state. A DELETE retried after a lost answer that then gets 404 counts as done.
* **POST** (creates, uploads, related items) is never resent once it may have
  reached the server: a read timeout, a connection reset/closed after sending, or a
  5xx other than 503 (a gateway may have passed it on) raises
  :class:`AmbiguousOutcomeError`, so the caller reconciles (lists what exists) before
  trying again. 503 means "not handled" and raises :class:`ServerError`.
* Retries use exponential backoff with jitter ("equal jitter": half fixed, half
  random), ``max_retries`` times; the whole retried operation counts once for the
  circuit breaker; 4xx answers never count against it.

Hand-written instead of urllib3 ``Retry`` or stamina: the loop needs the shared rate
limiter between attempts, must treat 429 as unlimited and interruptible, must turn a
lost POST answer into a distinct exception instead of retrying or raising a generic
error, and must count one breaker failure per operation; urllib3's ``Retry`` does
none of these and would hide the attempts from metrics and logs. The adapter keeps
``max_retries=0`` so that urllib3 does not retry underneath.

Security: HTTPS only (``http://`` only for loopback hosts with an explicit opt-in,
see :func:`check_url`; a loopback request never goes through an environment proxy,
see :func:`proxies_for`), certificate verification always on (custom CA allowed),
redirects are not followed (the ``x-api-key`` header would follow them to another
host), the key is set by an auth hook from a :class:`~core_client.redaction.Secret`
and never logged; logs carry method, path (without query), status, duration, request
id; never headers or bodies.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3.exceptions

from itglue_common import APP_NAME, backoff_delay, is_loopback_host, parse_retry_after, proxies_for

from .circuit_breaker import CircuitBreaker, Outcome
from .exceptions import (
    AmbiguousOutcomeError,
    APIError,
    CircuitOpenError,
    ClientClosedError,
    ConfigurationError,
    InsecureURLError,
    ITGlueError,
    ServerError,
    TransportError,
    error_for_status,
)
from .metrics import Metrics
from .rate_limiter import RateLimiter
from .redaction import Secret, scrub

log = logging.getLogger("itglue_ingest.client")

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
JSONAPI = "application/vnd.api+json"
USER_AGENT = f"{APP_NAME}/0.1 (+core_client)"


def check_url(url: str, *, allow_insecure_loopback: bool = False) -> str:
    """The normalised base URL, or :class:`InsecureURLError`/:class:`ConfigurationError`."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in ("https", "http") or not host:
        raise ConfigurationError(f"invalid IT Glue base URL {url!r}: expected https://host[/path]")
    if parts.username or parts.password:
        raise ConfigurationError("the base URL must not contain credentials")
    if parts.query or parts.fragment:
        raise ConfigurationError("the base URL must not contain a query or fragment")
    if scheme == "http":
        if not is_loopback_host(host):
            raise InsecureURLError(
                f"refusing plain http:// for {host}: the API key would travel unencrypted; "
                "use https:// (http:// is only possible for a loopback emulator, with "
                "allow_insecure_loopback=True)"
            )
        if not allow_insecure_loopback:
            raise InsecureURLError(
                f"refusing plain http:// for {host}: pass allow_insecure_loopback=True "
                "(config: itglue.allow_insecure_loopback = true) to talk to a local "
                "emulator without TLS"
            )
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Response:
    """What callers get: never the ``requests`` objects (they hold the request headers)."""

    status: int
    body: Any  # parsed JSON, or None
    content: bytes
    request_id: str
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # response headers (no secrets)


class _APIKeyAuth(requests.auth.AuthBase):
    """Adds ``x-api-key`` at send time; its repr does not show the key."""

    def __init__(self, key: Secret) -> None:
        self._key = key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["x-api-key"] = self._key.reveal()
        return r

    def __repr__(self) -> str:
        return "<APIKeyAuth ***>"


def _no_auth(r: requests.PreparedRequest) -> requests.PreparedRequest:
    """Overrides the session's key auth for requests to other origins."""
    return r


_NO_AUTH = _no_auth

BodyFactory = Callable[[], BinaryIO | bytes]

# send-state of a failed attempt
_BEFORE_SEND = "before_send"
_AFTER_SEND = "after_send"
_FATAL = "fatal"


def _classify_exception(exc: requests.exceptions.RequestException) -> str:
    """Whether the server may have seen the request when ``exc`` happened."""
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "hostname" in text.lower():
            return _FATAL
        return _BEFORE_SEND
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.ProxyError):
        return _BEFORE_SEND
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return _AFTER_SEND
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.InvalidHeader
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema,
    ):
        return _FATAL
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason: Any = exc.args[0] if exc.args else None
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        if isinstance(
            reason,
            urllib3.exceptions.NewConnectionError
            | urllib3.exceptions.ConnectTimeoutError
            | urllib3.exceptions.NameResolutionError,
        ):
            return _BEFORE_SEND
        return _AFTER_SEND
    return _AFTER_SEND  # ChunkedEncodingError, ContentDecodingError, anything unknown


def _breaker_outcome(exc: BaseException) -> Outcome:
    if isinstance(exc, ServerError | TransportError | AmbiguousOutcomeError):
        return "failure"
    if isinstance(exc, APIError):
        return "neutral"  # 4xx: the server is up and answering
    return "ignore"  # closed, cancelled, programming errors


class Transport:
    """Sends requests to one IT Glue base URL with the resilience policy above."""

    def __init__(
        self,
        base_url: str,
        api_key: Secret,
        *,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        metrics: Metrics,
        ca_bundle: str | None = None,
        allow_insecure_loopback: bool = False,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        pool_size: int = 10,
    ) -> None:
        self.base_url = check_url(base_url, allow_insecure_loopback=allow_insecure_loopback)
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc.lower())
        self._secrets = [api_key]
        self.limiter = limiter
        self.breaker = breaker
        self.metrics = metrics
        self.timeout = (connect_timeout, read_timeout)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._verify: str | bool = str(ca_bundle) if ca_bundle else True
        self._closed = threading.Event()
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=1, pool_maxsize=pool_size, max_retries=0
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.auth = _APIKeyAuth(api_key)
        session.headers.update({"Accept": JSONAPI, "User-Agent": USER_AGENT})
        session.max_redirects = 0
        self.session = session

    def __repr__(self) -> str:
        return f"<Transport {getattr(self, 'base_url', '(unconfigured)')}>"

    # -- URLs --------------------------------------------------------------------
    def url_for(self, path_or_url: str) -> str:
        """Absolute URL for an API path, or a same-origin absolute URL (pagination links)."""
        if path_or_url.startswith(("https://", "http://")):
            parts = urlsplit(path_or_url)
            if (parts.scheme, parts.netloc.lower()) != self._origin:
                raise ConfigurationError(
                    "refusing to send the API key to another origin "
                    f"({parts.scheme}://{parts.hostname})"
                )
            return path_or_url
        return self.base_url + "/" + path_or_url.lstrip("/")

    def same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc.lower()) == self._origin

    # -- the request loop ----------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        body_factory: BodyFactory | None = None,
        request_id: str | None = None,
        send_key: bool = True,
        log_path: str | None = None,
    ) -> Response:
        """One operation (with retries) under the breaker; raises the exception tree.

        ``send_key=False`` is for download URLs on another origin (pre-signed storage
        links): the key is not sent, and the URL must still be https. ``log_path``
        replaces the path in logs and errors (download paths carry access tokens).
        """
        method = method.upper()
        rid = request_id or new_request_id()
        if send_key:
            url = self.url_for(path)
        else:
            url = path
            if urlsplit(url).scheme != "https" and not self.same_origin(url):
                raise InsecureURLError("refusing a download over plain http from another host")
        log_path = log_path or urlsplit(url).path
        auth = None if send_key else _NO_AUTH
        self.metrics.incr("operation_count")
        try:
            return self.breaker.call(  # type: ignore[no-any-return]
                lambda: self._attempts(
                    method, url, log_path, params, json_body, body_factory, rid, auth
                ),
                _breaker_outcome,
            )
        except CircuitOpenError:
            self.metrics.incr("circuit_rejections")
            self.metrics.incr("failed_operations")
            raise
        except ITGlueError:
            self.metrics.incr("failed_operations")
            raise

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, base=self.backoff_base, cap=self.backoff_max)

    def _sleep(self, seconds: float) -> None:
        if self._closed.wait(seconds):
            raise ClientClosedError("the client was closed during a retry backoff")

    def _attempts(
        self,
        method: str,
        url: str,
        log_path: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        body_factory: BodyFactory | None,
        rid: str,
        auth: Any = None,
    ) -> Response:
        idempotent = method in IDEMPOTENT
        failures = 0  # attempts that failed in a retryable way (429s excluded)
        answer_lost = False  # an earlier attempt may have reached the server
        headers = {"X-Request-Id": rid}
        data: Any = None
        if json_body is not None or body_factory is not None:
            headers["Content-Type"] = JSONAPI
        while True:
            if self._closed.is_set():
                raise ClientClosedError("the client is closed")
            self.limiter.acquire()
            if body_factory is not None:
                data = body_factory()
            elif json_body is not None:
                data = _dumps(json_body)
            extra: dict[str, Any] = {"request_id": rid, "method": method, "path": log_path}
            started = time.monotonic()
            try:
                resp = self.session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=self.timeout,
                    verify=self._verify,
                    allow_redirects=False,
                    auth=auth,
                    proxies=proxies_for(url),
                )
                content = resp.content
            except requests.exceptions.RequestException as exc:
                duration = (time.monotonic() - started) * 1000
                self.metrics.record_attempt(None, duration)
                stage = _classify_exception(exc)
                detail = scrub(f"{type(exc).__name__}: {exc}", self._secrets)[:300]
                extra.update(status=None, duration_ms=round(duration, 1), error=type(exc).__name__)
                if stage == _FATAL:
                    log.error("%s %s failed: %s", method, log_path, detail, extra=extra)
                    raise TransportError(
                        f"{method} {log_path} failed: {detail} [request {rid}]",
                        request_id=rid,
                        transient=False,
                    ) from None
                if stage == _AFTER_SEND and not idempotent:
                    self.metrics.incr("ambiguous")
                    log.error(
                        "%s %s: sent, but the answer was lost (%s); not retrying",
                        method,
                        log_path,
                        type(exc).__name__,
                        extra=extra,
                    )
                    raise AmbiguousOutcomeError(
                        f"{method} {log_path} was sent but its answer was lost ({detail}); "
                        f"it may have been applied: reconcile before retrying [request {rid}]",
                        request_id=rid,
                        method=method,
                        path=log_path,
                    ) from None
                answer_lost = answer_lost or stage == _AFTER_SEND
                failures += 1
                if failures > self.max_retries:
                    log.error(
                        "%s %s failed after %d attempts: %s",
                        method,
                        log_path,
                        failures,
                        detail,
                        extra=extra,
                    )
                    raise TransportError(
                        f"{method} {log_path} failed after {failures} attempts: {detail} "
                        f"[request {rid}]",
                        request_id=rid,
                    ) from None
                delay = self._backoff(failures)
                log.warning(
                    "%s %s: %s; retry %d/%d in %.2f s",
                    method,
                    log_path,
                    detail,
                    failures,
                    self.max_retries,
                    delay,
                    extra=extra,
                )
                self.metrics.incr("retries")
                self._sleep(delay)
                continue

            duration = (time.monotonic() - started) * 1000
            status = resp.status_code
            self.metrics.record_attempt(status, duration)
            extra.update(status=status, duration_ms=round(duration, 1))
            resp_headers = {k: v for k, v in resp.headers.items() if k.lower() != "set-cookie"}
            content_type = resp.headers.get("Content-Type", "")
            resp.close()

            if status == 429:
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                log.info("%s %s -> 429", method, log_path, extra=extra)
                self.limiter.on_429(retry_after)
                continue  # unlimited: the limiter's pause is the backoff
            self.limiter.on_success()

            if status >= 500:
                body = _parse_json(content)
                err = error_for_status(status, body, request_id=rid, method=method, path=log_path)
                if not idempotent and status != 503:
                    self.metrics.incr("ambiguous")
                    log.error(
                        "%s %s -> %d: outcome unknown; not retrying",
                        method,
                        log_path,
                        status,
                        extra=extra,
                    )
                    raise AmbiguousOutcomeError(
                        f"{method} {log_path} got HTTP {status}: the server (or a gateway) may "
                        f"have applied it; reconcile before retrying [request {rid}]",
                        request_id=rid,
                        method=method,
                        path=log_path,
                        status=status,
                    )
                failures += 1
                if not idempotent or failures > self.max_retries:
                    log.error(
                        "%s %s -> %d (giving up after %d attempts)",
                        method,
                        log_path,
                        status,
                        failures,
                        extra=extra,
                    )
                    raise err
                delay = self._backoff(failures)
                log.warning(
                    "%s %s -> %d; retry %d/%d in %.2f s",
                    method,
                    log_path,
                    status,
                    failures,
                    self.max_retries,
                    delay,
                    extra=extra,
                )
                self.metrics.incr("retries")
                self._sleep(delay)
                continue

            if status == 404 and method == "DELETE" and answer_lost:
                log.info(
                    "%s %s -> 404 after a lost answer: already deleted",
                    method,
                    log_path,
                    extra=extra,
                )
                return Response(204, None, b"", rid, content_type, resp_headers)

            if status >= 300:
                body = _parse_json(content)
                level = logging.WARNING if status != 404 else logging.INFO
                log.log(level, "%s %s -> %d", method, log_path, status, extra=extra)
                if status < 400:
                    raise APIError(
                        f"{method} {log_path} answered a redirect (HTTP {status}); redirects "
                        f"are not followed (the key would follow them) [request {rid}]",
                        status=status,
                        request_id=rid,
                        method=method,
                        path=log_path,
                    )
                raise error_for_status(status, body, request_id=rid, method=method, path=log_path)

            log.debug("%s %s -> %d", method, log_path, status, extra=extra)
            body = _parse_json(content) if "json" in content_type or not content_type else None
            return Response(status, body, content, rid, content_type, resp_headers)

    def close(self) -> None:
        """Interrupt waits and backoffs, close the connection pool."""
        self._closed.set()
        self.session.close()


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _parse_json(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


__all__ = ["IDEMPOTENT", "Response", "Transport", "check_url", "new_request_id"]
