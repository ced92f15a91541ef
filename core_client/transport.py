"""HTTP for the IT Glue client: the loop that sends an operation and acts on retries.

Every attempt goes: circuit breaker (fail fast when open) -> rate limiter (wait for
budget) -> HTTPS request with connect/read timeouts -> on failure,
:class:`~core_client.retry.RetryPolicy` decides and the loop acts. Each failed attempt
(5xx, transport error) counts for the breaker, as a breaker inside the retry loop does
(resilience4j, Polly): counting whole operations let one record retry through an outage
without ever opening it. 4xx and 429 answers never count against it.

The session's security policy (HTTPS only, no redirects, the key set by an auth hook,
no urllib3 retries) is in :mod:`core_client.session`; a loopback request never goes
through an environment proxy (:class:`EnvironmentSettings`). Logs carry method, path (without
query), status, duration, request id; never headers or bodies. Failed attempts and 429s
are logged one by one at DEBUG only; at INFO an outage or a 429 storm is an
:class:`~itglue_common.episode.Episode`: a line when it starts, at most one a minute
while it lasts, one when it ends.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, Literal
from urllib.parse import urlsplit

import requests
import requests.adapters

from itglue_common import parse_retry_after
from itglue_common.episode import REPORT_EVERY, Episode, Note

from .circuit_breaker import CircuitBreaker, Outcome
from .exceptions import (
    AmbiguousOutcomeError,
    APIError,
    CircuitOpenError,
    ClientClosedError,
    ConfigurationError,
    InsecureURLError,
    ITGlueError,
    TransportError,
    error_for_status,
)
from .metrics import Metrics
from .rate_limiter import RateLimiter
from .redaction import Secret, scrub
from .retry import IDEMPOTENT, Action, Failure, RetryPolicy
from .session import (
    JSONAPI,
    NO_AUTH,
    EnvironmentSettings,
    check_url,
    classify_exception,
    default_adapter,
    new_session,
)

log = logging.getLogger("itglue_ingest.client")


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


BodyFactory = Callable[[], BinaryIO | bytes]
# where a streamed answer goes: called before each attempt's body is read, so that a
# retried download starts over in a file object it gets back empty
SinkFactory = Callable[[], IO[bytes]]
STREAM_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a connection, and for each read of the answer."""

    connect: float = 10.0
    read: float = 60.0

    def __post_init__(self) -> None:
        if self.connect <= 0 or self.read <= 0:
            raise ConfigurationError("timeouts must be positive")


def _breaker_outcome(outcome: _Answer | _Failed | None) -> Outcome | Literal["success"]:
    """What one attempt says about IT Glue's health."""
    if outcome is None:
        return "ignore"  # nothing was sent, or it was cancelled: nothing learned
    if isinstance(outcome, _Failed) or outcome.status >= 500:
        return "failure"  # no answer, or a server error
    if outcome.status >= 300:
        return "neutral"  # 4xx (429 included): the server is up and answering
    return "success"


@dataclass
class _Answer:
    status: int
    content: bytes
    headers: dict[str, str]
    content_type: str
    retry_after: str | None


@dataclass
class _Failed:
    failure: Failure
    detail: str  # exception type and message, scrubbed of secrets


class Transport:
    """Sends requests to one IT Glue base URL under the limiter, breaker and retry policy.

    ``adapter``: the ``requests`` adapter that moves the bytes (default:
    :func:`default_adapter`), the equivalent of ``httpx.Client(transport=...)``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: Secret,
        *,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        metrics: Metrics,
        retry: RetryPolicy,
        timeouts: Timeouts,
        ca_bundle: str | None = None,
        allow_insecure_loopback: bool = False,
        adapter: requests.adapters.BaseAdapter | None = None,
        report_every: float = REPORT_EVERY,
    ) -> None:
        self.base_url = check_url(base_url, allow_insecure_loopback=allow_insecure_loopback)
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc.lower())
        self._secrets = [api_key]
        self.limiter = limiter
        self.breaker = breaker
        self.metrics = metrics
        self.retry = retry
        self.timeouts = timeouts
        self._environment = EnvironmentSettings(str(ca_bundle) if ca_bundle else True)
        self._closed = threading.Event()
        self.session = new_session(api_key, adapter)
        # "seconds between 'still failing' lines" of both episodes (tests shorten it)
        self.outage = Episode(every=report_every)
        self.rate_storm = Episode(every=report_every)

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

    # -- one operation -------------------------------------------------------------
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
        sink: SinkFactory | None = None,
    ) -> Response:
        """One operation (with retries) under the breaker; raises the exception tree.

        ``send_key=False`` is for download URLs on another origin (pre-signed storage
        links): the key is not sent, and the URL must still be https. ``log_path``
        replaces the path in logs and errors (download paths carry access tokens).
        ``sink``: a 2xx answer's body is streamed (1 MiB at a time) into the file object
        it returns instead of being held in memory (``Response.content`` is then empty);
        a body cut short is a failed attempt, retried like any other.
        """
        method = method.upper()
        rid = request_id or new_request_id()
        if send_key:
            url = self.url_for(path)
        else:
            url = path
            if urlsplit(url).scheme != "https" and not self.same_origin(url):
                raise InsecureURLError("refusing a download over plain http from another host")
        call = _Call(
            method, url, log_path or urlsplit(url).path, rid, None if send_key else NO_AUTH, sink
        )
        self.metrics.incr("operation_count")
        try:
            return self._attempts(call, params, json_body, body_factory)
        except CircuitOpenError:
            self.metrics.incr("circuit_rejections")
            self.metrics.incr("failed_operations")
            raise
        except ITGlueError:
            self.metrics.incr("failed_operations")
            raise

    def _attempts(
        self,
        call: _Call,
        params: Mapping[str, str] | None,
        json_body: Any,
        body_factory: BodyFactory | None,
    ) -> Response:
        """The retry loop: send, ask the policy what a failure means, act on it."""
        retries = 0
        answer_lost = False  # an earlier attempt may have reached the server
        while True:
            if self._closed.is_set():
                raise ClientClosedError("the client is closed")
            extra: dict[str, Any] = {
                "request_id": call.rid,
                "method": call.method,
                "path": call.log_path,
            }
            outcome = self._attempt(call, params, json_body, body_factory, extra)
            status: int | None = None
            retry_after: float | None = None
            if isinstance(outcome, _Failed):
                failure = outcome.failure
            elif outcome.status == 429:
                failure = Failure.RATE_LIMITED
                retry_after = parse_retry_after(outcome.retry_after)
                log.debug("%s %s -> 429", call.method, call.log_path, extra=extra)
            else:
                self.limiter.on_success()
                if outcome.status < 500:
                    return self._answer(call, outcome, extra, answer_lost=answer_lost)
                failure, status = Failure.SERVER_ERROR, outcome.status

            decision = self.retry.decide(
                call.method, failure, retries=retries, status=status, retry_after=retry_after
            )
            if decision.action is Action.WAIT_FOR_BUDGET:
                pause = self.limiter.on_429(decision.delay)  # the limiter's pause is the backoff
                what = f"{call.method} {call.log_path}, paused {pause:.1f} s"
                self._tell(self.rate_storm.failure(what), "IT Glue rate limit (429)", "429 answers")
                continue
            if decision.action is Action.RETRY:
                retries += 1
                answer_lost = answer_lost or failure is Failure.ANSWER_LOST
                if self.breaker.state == "open":
                    continue  # this failure opened it: the next attempt fails fast, no wait
                delay = decision.delay or 0.0
                log.debug(
                    "%s %s%s; retry %d/%d in %.2f s",
                    call.method,
                    call.log_path,
                    f": {outcome.detail}" if isinstance(outcome, _Failed) else f" -> {status}",
                    retries,
                    self.retry.max_retries,
                    delay,
                    extra=extra,
                )
                self.metrics.incr("retries")
                if self._closed.wait(delay):
                    raise ClientClosedError("the client was closed during a retry backoff")
                continue
            if decision.action is Action.AMBIGUOUS:
                self.metrics.incr("ambiguous")
                raise self._ambiguous(call, outcome, extra)
            raise self._give_up(call, outcome, retries, extra)

    def _attempt(
        self,
        call: _Call,
        params: Mapping[str, str] | None,
        json_body: Any,
        body_factory: BodyFactory | None,
        extra: dict[str, Any],
    ) -> _Answer | _Failed:
        """One attempt under the breaker (raises :class:`CircuitOpenError` when it is open)
        and the rate limiter; the breaker learns what the answer says about IT Glue."""
        probe = self.breaker.before_call()
        outcome: _Answer | _Failed | None = None
        try:
            self.limiter.acquire()
            data: Any = body_factory() if body_factory is not None else None
            if data is None and json_body is not None:
                data = _dumps(json_body)
            outcome = self._send(call, params, data, extra)
        finally:
            verdict = _breaker_outcome(outcome)
            if verdict == "failure":
                self.breaker.record_failure(probe)
            elif verdict == "neutral":
                self.breaker.record_neutral(probe)
            elif verdict == "success":
                self.breaker.record_success(probe)
            elif probe:
                self.breaker.release_probe()
        if verdict == "failure" and not _fatal(outcome):
            self._tell(self.outage.failure(_short(call, outcome)), "IT Glue unavailable")
        elif verdict in ("success", "neutral"):
            self._tell(self.outage.success(), "IT Glue unavailable")
            if isinstance(outcome, _Answer) and outcome.status != 429:
                self._tell(self.rate_storm.success(), "IT Glue rate limit (429)", "429 answers")
        return outcome

    def _tell(self, note: Note | None, subject: str, unit: str = "failed attempts") -> None:
        """Log an outage's (or 429 storm's) note: start and still as warnings, end as info."""
        if note is None:
            return
        level = logging.INFO if note.kind == "end" else logging.WARNING
        if note.kind == "start" and subject == "IT Glue unavailable":
            text = f"{subject}: {note.last}; retrying (every attempt at DEBUG)"
        else:
            text = note.text(subject, unit)
        log.log(
            level,
            "%s",
            text,
            extra={"episode": note.kind, "failures": note.failures, "seconds": round(note.seconds)},
        )

    def _send(
        self, call: _Call, params: Mapping[str, str] | None, data: Any, extra: dict[str, Any]
    ) -> _Answer | _Failed:
        """One HTTP attempt; metrics and ``extra`` (the log fields) are updated."""
        headers = {"X-Request-Id": call.rid}
        if data is not None:
            headers["Content-Type"] = JSONAPI
        proxies, verify = self._environment.for_url(call.url)
        started = time.monotonic()
        try:
            resp = self.session.request(
                call.method,
                call.url,
                params=params,
                data=data,
                headers=headers,
                timeout=(self.timeouts.connect, self.timeouts.read),
                verify=verify,
                allow_redirects=False,
                auth=call.auth,
                proxies=proxies,
                stream=call.sink is not None,
            )
            try:
                if call.sink is not None and 200 <= resp.status_code < 300:
                    _stream_into(resp, call.sink())
                    content = b""
                else:
                    content = resp.content
            finally:
                resp.close()
        except requests.exceptions.RequestException as exc:
            duration = (time.monotonic() - started) * 1000
            self.metrics.record_attempt(None, duration, call.log_path)
            extra.update(status=None, duration_ms=round(duration, 1), error=type(exc).__name__)
            detail = scrub(f"{type(exc).__name__}: {exc}", self._secrets)[:300]
            return _Failed(classify_exception(exc), detail)
        duration = (time.monotonic() - started) * 1000
        self.metrics.record_attempt(resp.status_code, duration, call.log_path)
        extra.update(status=resp.status_code, duration_ms=round(duration, 1))
        answer = _Answer(
            resp.status_code,
            content,
            {k: v for k, v in resp.headers.items() if k.lower() != "set-cookie"},
            resp.headers.get("Content-Type", ""),
            resp.headers.get("Retry-After"),
        )
        return answer

    def _answer(
        self, call: _Call, answer: _Answer, extra: dict[str, Any], *, answer_lost: bool
    ) -> Response:
        """A non-429 answer below 500: the response, or its error."""
        method, path, rid, status = call.method, call.log_path, call.rid, answer.status
        if self.retry.already_done(method, status, answer_lost=answer_lost):
            log.info("%s %s -> 404 after a lost answer: already deleted", method, path, extra=extra)
            return Response(204, None, b"", rid, answer.content_type, answer.headers)
        if status >= 300:
            level = logging.WARNING if status != 404 else logging.INFO
            log.log(level, "%s %s -> %d", method, path, status, extra=extra)
            if status < 400:
                raise APIError(
                    f"{method} {path} answered a redirect (HTTP {status}); redirects "
                    f"are not followed (the key would follow them) [request {rid}]",
                    status=status,
                    request_id=rid,
                    method=method,
                    path=path,
                )
            body = _parse_json(answer.content)
            raise error_for_status(status, body, request_id=rid, method=method, path=path)
        log.debug("%s %s -> %d", method, path, status, extra=extra)
        ctype = answer.content_type
        body = _parse_json(answer.content) if "json" in ctype or not ctype else None
        return Response(status, body, answer.content, rid, ctype, answer.headers)

    def _ambiguous(
        self, call: _Call, outcome: _Answer | _Failed, extra: dict[str, Any]
    ) -> AmbiguousOutcomeError:
        method, path, rid = call.method, call.log_path, call.rid
        if isinstance(outcome, _Failed):
            log.error(
                "%s %s: sent, but the answer was lost (%s); not retrying",
                method,
                path,
                extra["error"],
                extra=extra,
            )
            message = (
                f"{method} {path} was sent but its answer was lost ({outcome.detail}); "
                f"it may have been applied: reconcile before retrying [request {rid}]"
            )
            status = None
        else:
            status = outcome.status
            log.error(
                "%s %s -> %d: outcome unknown; not retrying", method, path, status, extra=extra
            )
            message = (
                f"{method} {path} got HTTP {status}: the server (or a gateway) may "
                f"have applied it; reconcile before retrying [request {rid}]"
            )
        return AmbiguousOutcomeError(
            message, request_id=rid, method=method, path=path, status=status
        )

    def _give_up(
        self, call: _Call, outcome: _Answer | _Failed, retries: int, extra: dict[str, Any]
    ) -> ITGlueError:
        method, path, rid = call.method, call.log_path, call.rid
        attempts = retries + 1  # the failed attempts of this operation (429s not counted)
        if isinstance(outcome, _Answer):
            log.debug(
                "%s %s -> %d (giving up after %d attempts)",
                method,
                path,
                outcome.status,
                attempts,
                extra=extra,
            )
            body = _parse_json(outcome.content)
            return error_for_status(outcome.status, body, request_id=rid, method=method, path=path)
        if outcome.failure is Failure.FATAL:
            log.error("%s %s failed: %s", method, path, outcome.detail, extra=extra)
            return TransportError(
                f"{method} {path} failed: {outcome.detail} [request {rid}]",
                request_id=rid,
                transient=False,
            )
        log.debug(
            "%s %s failed after %d attempts: %s",
            method,
            path,
            attempts,
            outcome.detail,
            extra=extra,
        )
        return TransportError(
            f"{method} {path} failed after {attempts} attempts: {outcome.detail} [request {rid}]",
            request_id=rid,
        )

    def close(self) -> None:
        """Interrupt waits and backoffs, close the connection pool."""
        self._closed.set()
        self.session.close()


@dataclass(frozen=True)
class _Call:
    """What stays the same across the attempts of one operation."""

    method: str
    url: str
    log_path: str
    rid: str
    auth: Any  # None: the session's key auth; NO_AUTH: no key (another origin)
    sink: SinkFactory | None = None


def _stream_into(resp: requests.Response, out: IO[bytes]) -> None:
    """The body into ``out``; urllib3 raises when fewer bytes than Content-Length come."""
    for chunk in resp.iter_content(STREAM_CHUNK):
        out.write(chunk)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _parse_json(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


__all__ = [
    "IDEMPOTENT",
    "Response",
    "SinkFactory",
    "Timeouts",
    "Transport",
    "check_url",
    "default_adapter",
    "new_request_id",
]


def _fatal(outcome: _Answer | _Failed | None) -> bool:
    """A failure retrying cannot help (a refused certificate): logged as an error, not an
    outage."""
    return isinstance(outcome, _Failed) and outcome.failure is Failure.FATAL


def _short(call: _Call, outcome: _Answer | _Failed | None) -> str:
    """A failed attempt in a few words (the full detail is in the DEBUG line)."""
    if isinstance(outcome, _Answer):
        return f"{call.method} {call.log_path} -> {outcome.status}"
    if isinstance(outcome, _Failed):
        return f"{call.method} {call.log_path}: {outcome.detail.split(':', 1)[0]}"
    return f"{call.method} {call.log_path}"
