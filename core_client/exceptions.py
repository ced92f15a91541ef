"""The exceptions of the IT Glue client.

::

    ITGlueError                     base; every instance has ``.transient`` (retry later?)
    ├── ConfigurationError          the client cannot be built as configured
    │   ├── MissingAPIKeyError      no key in the keyring / environment (says how to set one)
    │   └── InsecureURLError        http:// to a non-loopback host (or without the opt-in)
    ├── APIError                    IT Glue answered with an error status
    │   │                           (.status, .errors, .request_id, .method, .path)
    │   ├── AuthenticationError     401 / 403 (bad key, wrong region)
    │   ├── NotFoundError           404
    │   ├── ValidationError         400 / 422; .errors = [(pointer, detail), ...]
    │   ├── PayloadTooLargeError    413
    │   ├── RateLimitError          429 (the client waits and retries; never raised by
    │   │                           the typed methods, kept for callers of the raw API)
    │   └── ServerError             5xx (transient)
    ├── TransportError              no HTTP answer at all: connect failure, TLS, reset
    ├── CircuitOpenError            the breaker is open: the call was not attempted
    ├── AmbiguousOutcomeError       a non-idempotent request was sent but its answer was
    │                               lost (read timeout, reset after send, gateway error):
    │                               it may or may not have taken effect; reconcile first
    ├── ClientClosedError           the client was closed while the call was waiting
    ├── UnknownNameError            no record is called that name (.close_matches)
    ├── AmbiguousNameError          several records are called that name (.ids)
    ├── UnsupportedActionError      the API has no such route for the resource
    └── DownloadError               a download came out the wrong size, or was cut into
                                    a stream that cannot start over (transient)

Why so many: the ingest sink must tell "fix the record" (validation, too large, not
found) from "try again later" (429, 5xx, transport, breaker) from "find out what
happened before retrying" (ambiguous). ``transient`` carries the first distinction;
the types carry the rest. After its retries, :class:`~core_client.retry.RetryPolicy`
decides which one an operation raises: *give up* -> ``ServerError``/``TransportError``,
*ambiguous* -> ``AmbiguousOutcomeError``; 4xx answers are never retried.

Secrets: exceptions only ever hold the status, the parsed error list, the request id,
the method and the path. Never a header, a body or a response object, so no API key
can reach a message, a repr or a traceback through them.
"""

from __future__ import annotations

from typing import Any

from .models import singular

__all__ = [
    "APIError",
    "AmbiguousNameError",
    "AmbiguousOutcomeError",
    "AuthenticationError",
    "CircuitOpenError",
    "ClientClosedError",
    "ConfigurationError",
    "DownloadError",
    "ITGlueError",
    "InsecureURLError",
    "MissingAPIKeyError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "UnknownNameError",
    "UnsupportedActionError",
    "ValidationError",
    "error_for_status",
    "parse_errors",
]

ErrorItem = tuple[str, str]
"""One parsed error: (JSON pointer normalised to start with "/", or "" ; detail text)."""


class ITGlueError(Exception):
    """Base of every error the client raises."""

    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(ITGlueError):
    """The client is misconfigured (region/base URL, CA bundle, key format...)."""


class MissingAPIKeyError(ConfigurationError):
    """No API key was found for the instance."""


class InsecureURLError(ConfigurationError):
    """A plain-http URL was given for a host where that is not allowed."""


class APIError(ITGlueError):
    """IT Glue answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        errors: list[ErrorItem] | None = None,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors: list[ErrorItem] = list(errors or [])
        self.request_id = request_id
        self.method = method
        self.path = path

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, request_id={self.request_id!r}, "
            f"message={self.message!r})"
        )


class AuthenticationError(APIError):
    """401/403: the key is wrong, revoked, or sent to the wrong region."""


class NotFoundError(APIError):
    """404: the record or route does not exist."""


class ValidationError(APIError):
    """400/422: the request was refused; ``errors`` holds (pointer, detail) pairs."""


class PayloadTooLargeError(APIError):
    """413: the body (usually an attachment) is larger than the server accepts."""


class RateLimitError(APIError):
    """429: the account budget is exhausted (``retry_after`` seconds when known)."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: IT Glue (or a gateway in front of it) failed; try again later."""

    transient = True


class TransportError(ITGlueError):
    """No HTTP answer: connection refused, DNS, TLS failure, reset, timeout."""

    def __init__(self, message: str, *, request_id: str | None = None, transient: bool = True):
        super().__init__(message)
        self.request_id = request_id
        self.transient = transient


class DownloadError(ITGlueError):
    """A download came out wrong: fewer or more bytes than the attachment's size, or it
    was cut short into a file object that cannot start over. Nothing was kept under
    the target's name; trying again may succeed."""

    transient = True


class CircuitOpenError(ITGlueError):
    """The circuit breaker is open; nothing was sent. ``retry_after``: seconds to the probe."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AmbiguousOutcomeError(ITGlueError):
    """A non-idempotent request was sent and its answer was lost.

    The server may have applied it. Do not resend blindly: list what exists and
    reconcile (the sink matches by name and size), then create only if nothing matches.
    """

    transient = True

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.method = method
        self.path = path
        self.status = status


class UnknownNameError(ITGlueError, LookupError):
    """No record of a kind is called the given name (checked after one refresh).

    ``close_matches``: the most similar names there are (difflib), best first.
    """

    def __init__(self, kind: str, name: str, close_matches: list[str]) -> None:
        hint = (
            "did you mean " + ", ".join(repr(m) for m in close_matches) + "?"
            if close_matches
            else "no similar name exists"
        )
        label = singular(kind).replace("_", " ")
        super().__init__(f"no {label} is called {name!r}: {hint}")
        self.kind = kind
        self.name = name
        self.close_matches = close_matches


class AmbiguousNameError(ITGlueError, LookupError):
    """Several records of a kind are called the name: pass the id instead."""

    def __init__(self, kind: str, name: str, ids: list[str]) -> None:
        super().__init__(
            f"{len(ids)} {kind.replace('_', ' ')} are called {name!r} (ids {', '.join(ids)}):"
            " pass the id"
        )
        self.kind = kind
        self.name = name
        self.ids = ids


class UnsupportedActionError(ITGlueError):
    """The API has no such route for this resource (e.g. creating a checklist);
    raised before any request is sent."""


class ClientClosedError(ITGlueError):
    """The client was closed while a call waited (for the rate limiter or a backoff)."""

    transient = True


# --- lenient parsing of IT Glue error bodies ------------------------------------------

_WORD_STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "payload_too_large": 413,
    "request_entity_too_large": 413,
    "unprocessable_entity": 422,
    "too_many_requests": 429,
    "internal_server_error": 500,
    "bad_gateway": 502,
    "service_unavailable": 503,
    "gateway_timeout": 504,
}


def parse_status(value: Any) -> int | None:
    """An error member's ``status``: 422, "422" or "unprocessable_entity" -> 422."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        return _WORD_STATUS.get(text.lower().replace(" ", "_").replace("-", "_"))
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "; ".join(_text(v) for v in value if v is not None and _text(v))
    return str(value).strip()


def _pointer(item: dict[str, Any]) -> str:
    source = item.get("source")
    raw: Any = None
    if isinstance(source, dict):
        raw = source.get("pointer") or source.get("parameter")
    elif isinstance(source, str):
        raw = source
    if not raw:
        return ""
    text = str(raw).strip()
    return text if text.startswith("/") else "/" + text


def parse_errors(body: Any) -> list[ErrorItem]:
    """(pointer, detail) pairs from any IT Glue error body, never raising.

    Handles every variant in the reference: ``status`` as int, digit string or word;
    ``detail`` as a string, a list of strings or absent (then ``title`` is used);
    pointers with or without the leading slash (normalised to have one); ``errors``
    as a list, a single object or a plain string; and non-JSON bodies (-> []).
    """
    if not isinstance(body, dict):
        return []
    errors = body.get("errors")
    if errors is None:
        return []
    if isinstance(errors, str):
        return [("", errors.strip())]
    if isinstance(errors, dict):
        errors = [errors]
    if not isinstance(errors, list):
        return []
    out: list[ErrorItem] = []
    for item in errors:
        if isinstance(item, str):
            out.append(("", item.strip()))
            continue
        if not isinstance(item, dict):
            continue
        detail = (
            _text(item.get("detail"))
            or _text(item.get("title"))
            or _text(item.get("code"))
            or _text(item.get("status"))
        )
        out.append((_pointer(item), detail))
    return out


def _summary(errors: list[ErrorItem]) -> str:
    parts = [f"{p}: {d}" if p and d else (p or d) for p, d in errors[:3]]
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(x for x in parts if x) + more


def error_for_status(
    status: int,
    body: Any,
    *,
    request_id: str | None = None,
    method: str | None = None,
    path: str | None = None,
    retry_after: float | None = None,
) -> APIError:
    """The exception for an error response (``body`` = the parsed JSON, or None)."""
    errors = parse_errors(body)
    summary = _summary(errors)
    where = f"{method} {path}" if method and path else "request"
    message = f"{where} failed with HTTP {status}" + (f": {summary}" if summary else "")
    if request_id:
        message += f" [request {request_id}]"
    kw: dict[str, Any] = {
        "status": status,
        "errors": errors,
        "request_id": request_id,
        "method": method,
        "path": path,
    }
    cls: type[APIError]
    if status in (401, 403):
        cls = AuthenticationError
    elif status == 404:
        cls = NotFoundError
    elif status in (400, 422):
        cls = ValidationError
    elif status == 413:
        cls = PayloadTooLargeError
    elif status == 429:
        return RateLimitError(message, retry_after=retry_after, **kw)
    elif status >= 500:
        cls = ServerError
    else:
        cls = APIError
    return cls(message, **kw)
