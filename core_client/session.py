"""The ``requests`` session of the IT Glue transport, and its security policy.

HTTPS only (``http://`` only for loopback hosts with an explicit opt-in, see
:func:`check_url`), redirects not followed (the ``x-api-key`` header would follow
them to another host), the key set at send time by an auth hook from a
:class:`~core_client.redaction.Secret`, no urllib3 retries underneath the retry
policy; and what a ``requests`` exception means for a retry (:func:`classify_exception`).

The session does not read the environment itself (``trust_env`` off): ``requests`` would
walk ``os.environ`` twice per request for proxies, a sixth of the engine's CPU per
delivered file; :class:`EnvironmentSettings` reads it once per origin instead.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3.exceptions

from itglue_common import APP_NAME, is_loopback_host

from .exceptions import ConfigurationError, InsecureURLError
from .redaction import Secret
from .retry import Failure

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


def default_adapter(pool_size: int = 10) -> requests.adapters.HTTPAdapter:
    """A pooled adapter that never retries by itself (the retry policy decides)."""
    return requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)


def new_session(api_key: Secret, adapter: requests.adapters.BaseAdapter | None) -> requests.Session:
    """A session that sends the key by the auth hook and follows no redirect."""
    session = requests.Session()
    adapter = adapter if adapter is not None else default_adapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.auth = APIKeyAuth(api_key)
    session.headers.update({"Accept": JSONAPI, "User-Agent": USER_AGENT})
    session.max_redirects = 0
    session.trust_env = False  # proxies and CA bundle: EnvironmentSettings, once per origin
    return session


class EnvironmentSettings:
    """What ``requests`` takes from the environment for a URL, read once per origin.

    The same as a session with ``trust_env`` would use: the proxies of
    ``$HTTPS_PROXY``/``$HTTP_PROXY``/``$ALL_PROXY`` unless ``$NO_PROXY`` lists the host
    (none at all for a loopback host: its requests never leave the machine), and
    ``$REQUESTS_CA_BUNDLE``/``$CURL_CA_BUNDLE`` when no CA bundle was configured. The
    environment is read when an origin is first asked for, so a client made after a
    change sees it.
    """

    def __init__(self, verify: str | bool) -> None:
        self._verify = verify
        # no lock: two threads meeting a new origin both read the same answer
        self._by_origin: dict[tuple[str, str], tuple[dict[str, str], str | bool]] = {}

    def for_url(self, url: str) -> tuple[dict[str, str], str | bool]:
        """``(proxies, verify)`` for ``url``'s origin."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc.lower())
        found = self._by_origin.get(origin)
        if found is None:
            proxies: dict[str, str] = {}
            if not is_loopback_host(parts.hostname or ""):  # the environment decides
                proxies = requests.utils.get_environ_proxies(url)
            verify = self._verify
            if verify is True:
                environ = os.environ
                verify = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or True
            found = self._by_origin[origin] = (proxies, verify)
        return found


class APIKeyAuth(requests.auth.AuthBase):
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


NO_AUTH = _no_auth


def classify_exception(exc: requests.exceptions.RequestException) -> Failure:
    """Whether the server may have seen the request when ``exc`` happened."""
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "hostname" in text.lower():
            return Failure.FATAL
        return Failure.NOT_SENT
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.ProxyError):
        return Failure.NOT_SENT
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return Failure.ANSWER_LOST
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.InvalidHeader
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema,
    ):
        return Failure.FATAL
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
            return Failure.NOT_SENT
        return Failure.ANSWER_LOST
    return Failure.ANSWER_LOST  # ChunkedEncodingError, ContentDecodingError, anything unknown


__all__ = [
    "JSONAPI",
    "NO_AUTH",
    "APIKeyAuth",
    "check_url",
    "classify_exception",
    "default_adapter",
    "new_session",
]
