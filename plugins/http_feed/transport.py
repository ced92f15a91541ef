"""HTTP for the feed: GET with retries and checked redirects, JSON pages, streamed downloads.

Hand-written rather than urllib3's ``Retry`` or stamina, because:

* every wait must end as soon as the engine is stopping (``stopping.wait``: the daemon
  must exit within seconds; a ``Retry-After: 120`` must not hold it), and Retry-After
  values are capped (``retry_after_max``);
* a streamed download is retried only before its body is handed to the spool: after
  that, a dropped connection is a :class:`TransientError` out of ``emit`` and the item
  comes back on the next poll;
* redirects are followed by hand (at most 5) so that every hop is checked against the
  HTTPS rule and the credentials go only to the feed's own origin (requests keeps custom
  headers such as ``X-API-Key`` on a cross-host redirect);
* a loopback URL never goes through an environment proxy (``itglue_common.proxies_for``);
* every request has a total deadline (:mod:`.deadline`) and goes only where the feed
  may send the source (:mod:`.guard`), which the connections themselves enforce.

The HTTPS rule is the IT Glue client's: ``https://`` only; ``http://`` only to a
loopback host with ``allow_insecure_loopback = true``. ``verify`` is passed on every
request because a session-level value loses to ``$REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import email.message
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urljoin

import requests

from itglue_common import APP_NAME, backoff_delay, parse_retry_after, proxies_for
from pipeline import TransientError

from .deadline import Deadline
from .guard import AddressRefused, HostPolicy, guarded_session
from .options import HttpFeedOptions
from .parsing import parse_page
from .values import display_url, origin, url_problem

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

MAX_REDIRECTS = 5

CHUNK = 64 * 1024


class FeedProblem(Exception):
    """A request or an answer went wrong; ``transient`` ones may work on the next poll."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class Stopping(Exception):
    """The engine is shutting down: leave the poll now."""


class PageAnswer(NamedTuple):
    response: requests.Response  # closed; its headers and URL are what pagination needs
    doc: Any
    too_deep: bool  # values nested too deeply were cut (``parsing.TOO_DEEP``)


@dataclass
class Download:
    """An open download: its response (body unread) under its deadline."""

    response: requests.Response
    deadline: Deadline

    def close(self) -> None:
        self.response.close()
        self.deadline.close()


def cut_short(deadline: Deadline, what: str, url: str) -> Exception:
    """What to raise for a request its deadline or the engine's stop cut short."""
    if deadline.over() == "stop":
        return Stopping()
    return FeedProblem(f"{what} {display_url(url)}: {deadline.reason()}", transient=True)


class DownloadStream(io.RawIOBase):
    """The body of an open download, read in chunks as the spool asks for them.

    A connection lost mid-body, or cut by the download's deadline, becomes a
    :class:`TransientError`, which the engine lets through ``emit`` (nothing is recorded)
    so the item is tried again on the next poll; the engine's stop is :class:`Stopping`.
    The size limit is the spool's (it stops copying at ``max_file_size`` and records the
    item as failed); the Content-Length was checked before ``emit``.
    """

    def __init__(self, download: Download, url: str) -> None:
        super().__init__()
        self._download = download
        self._url = url
        self.interrupted: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        deadline = self._download.deadline
        if deadline.over():
            self._cut()
        try:
            data = self._download.response.raw.read(min(len(view), CHUNK), decode_content=True)
        except Exception as e:  # urllib3 ProtocolError / ReadTimeoutError / OSError
            if deadline.fired:
                self._cut()
            self.interrupted = (
                f"download of {display_url(self._url)} was interrupted ({type(e).__name__})"
            )
            raise TransientError(self.interrupted) from None
        if deadline.fired:  # what was read may be cut short (an end without Content-Length)
            self._cut()
        n = len(data)
        view[:n] = data
        return n

    def _cut(self) -> None:
        problem = cut_short(self._download.deadline, "download", self._url)
        if isinstance(problem, FeedProblem):
            self.interrupted = problem.reason
            raise TransientError(problem.reason)
        raise problem

    def close(self) -> None:
        if not self.closed:
            self._download.close()
        super().close()


def content_length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def disposition_name(resp: requests.Response) -> str | None:
    value = resp.headers.get("Content-Disposition")
    if not value:
        return None
    msg = email.message.Message()
    msg["Content-Disposition"] = value
    name = msg.get_filename()
    return name or None


class AuthHeaders:
    """The auth headers of the feed, cached for one poll; ``repr`` shows only their names.

    The value holds the secret, so it must not print itself: ``vars()`` of the client, a
    debugger or an error reporter that renders objects would show a plain dict.
    """

    __slots__ = ("_headers",)

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = dict(headers)

    def merged(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {**self._headers, **(extra or {})}

    def __repr__(self) -> str:
        return f"AuthHeaders({', '.join(self._headers) or 'none'}: ***)"

    __str__ = __repr__

    def __reduce__(self) -> str:  # never pickled into some state file
        raise TypeError("AuthHeaders cannot be pickled")


class FeedClient:
    """The feed's HTTP session: retries, redirects, credentials for the feed's origin.

    :param credentials: returns the auth headers (asked once per :meth:`reset_auth`, so a
        rotated secret is picked up on the next poll).
    """

    def __init__(
        self,
        opts: HttpFeedOptions,
        stopping: threading.Event,
        credentials: Callable[[], dict[str, str]],
    ) -> None:
        self.opts = opts
        self.stopping = stopping
        self._credentials = credentials
        self.policy = HostPolicy(opts.url, opts.download_hosts, opts.allow_insecure_loopback)
        self._session = guarded_session(self.policy)
        self._session.headers["User-Agent"] = f"{APP_NAME} http_feed"
        self._verify: str | bool = str(opts.ca_bundle) if opts.ca_bundle else True
        self._feed_origin = origin(opts.url)
        self._auth_headers: AuthHeaders | None = None

    def reset_auth(self) -> None:
        self._auth_headers = None

    def close(self) -> None:
        self._session.close()

    def headers_for(self, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The request headers for ``url``: ``extra``, plus the credentials when ``url``
        is on the feed's own origin. The caller passes the result straight on (no local
        variable holds it, so a traceback rendered with its locals cannot show it)."""
        if origin(url) != self._feed_origin:
            return dict(extra or {})  # never send our credentials to another host
        if self._auth_headers is None:
            self._auth_headers = AuthHeaders(self._credentials())
        return self._auth_headers.merged(extra)

    def wait(self, seconds: float) -> None:
        if self.stopping.wait(max(0.0, seconds)):
            raise Stopping

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (from 0): backoff_base, doubling."""
        return backoff_delay(attempt + 1, base=self.opts.backoff_base, cap=self.opts.backoff_max)

    def get(
        self,
        url: str,
        params: dict[str, Any] | None,
        what: str,
        deadline: Deadline,
        extra_headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """GET with retries on 408/429/5xx and transport errors, redirects checked by hand,
        every hop within ``deadline`` and where the feed may send the source.

        Returns the (streamed, unread) response of the final hop, whatever its status;
        raises :class:`FeedProblem` when retries are exhausted, the deadline passed or a
        URL is refused, :class:`Stopping` when the engine stops.
        """
        attempt = 0
        hops = 0
        while True:
            if self.stopping.is_set():
                raise Stopping
            if deadline.over():
                raise cut_short(deadline, what, url)
            problem = url_problem(url, self.opts.allow_insecure_loopback)
            if problem:
                raise FeedProblem(f"{what}: {problem}", transient=False)
            problem = self.policy.host_problem(url) or self.policy.resolve_problem(url)
            if problem:
                raise FeedProblem(f"{what} {display_url(url)}: {problem}", transient=False)
            try:
                with deadline.active():
                    resp = self._session.get(
                        url,
                        params=params,
                        headers=self.headers_for(url, extra_headers),
                        timeout=(self.opts.connect_timeout, self.opts.read_timeout),
                        stream=True,
                        allow_redirects=False,
                        verify=self._verify,
                        proxies=proxies_for(url),
                    )
            except AddressRefused as e:
                raise FeedProblem(
                    f"{what} {display_url(url)}: {e.reason}", transient=False
                ) from None
            except requests.RequestException as e:
                if deadline.over():
                    raise cut_short(deadline, what, url) from None
                reason = f"{what} {display_url(url)}: {type(e).__name__}"
                if isinstance(e, requests.exceptions.SSLError):
                    raise FeedProblem(
                        f"{reason} (TLS verification failed)", transient=True
                    ) from None
                delay = self.backoff(attempt)
                if attempt >= self.opts.max_retries or delay >= deadline.remaining():
                    raise FeedProblem(
                        f"{reason} after {attempt + 1} attempts", transient=True
                    ) from None
                self.wait(delay)
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
                delay = self.backoff(attempt) if retry_after is None else retry_after
                delay = min(delay, self.opts.retry_after_max)
                if attempt >= self.opts.max_retries or delay >= deadline.remaining():
                    raise FeedProblem(
                        f"{what} {display_url(url)} answered {status} "
                        f"{resp.reason or ''} after {attempt + 1} attempts".replace("  ", " "),
                        transient=True,
                    )
                self.wait(delay)
                attempt += 1
                continue
            return resp

    def fetch_json(self, url: str, params: dict[str, Any]) -> PageAnswer:
        """A feed page within ``page_timeout``: its (closed) response and the parsed JSON;
        any problem raises :class:`FeedProblem` with the reason."""
        what = "feed page"
        deadline = Deadline(self.opts.page_timeout, self.stopping, "page_timeout")
        try:
            resp = self.get(url, params, what, deadline, {"Accept": "application/json"})
            try:
                return self._read_page(resp, url, what, deadline)
            finally:
                resp.close()
        finally:
            deadline.close()

    def _read_page(
        self, resp: requests.Response, url: str, what: str, deadline: Deadline
    ) -> PageAnswer:
        shown = display_url(resp.url or url)
        if not 200 <= resp.status_code < 300:
            hint = " (check the auth settings)" if resp.status_code in (401, 403) else ""
            raise FeedProblem(
                f"{what} {shown} answered {resp.status_code} {resp.reason or ''}".rstrip() + hint,
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
                if self.stopping.is_set():
                    raise Stopping
        except requests.RequestException as e:
            if deadline.fired:
                raise cut_short(deadline, what, resp.url or url) from None
            raise FeedProblem(
                f"{what} {shown}: {type(e).__name__} while reading", transient=True
            ) from None
        if deadline.fired:  # the body may have been cut short (an end without Content-Length)
            raise cut_short(deadline, what, resp.url or url)
        try:
            doc, too_deep = parse_page(bytes(body))
        except ValueError:
            ctype = resp.headers.get("Content-Type", "no Content-Type")
            start = bytes(body[:40]).decode("utf-8", "replace")
            raise FeedProblem(
                f"{what} {shown} is not JSON ({ctype}; starts with {start!r})",
                transient=False,
            ) from None
        return PageAnswer(resp, doc, too_deep)

    def open_download(self, url: str, limit: int) -> Download:
        """Open a download within ``download_timeout`` (status checked, Content-Length
        checked); the body is unread, and the deadline runs on until it is closed."""
        deadline = Deadline(self.opts.download_timeout, self.stopping, "download_timeout")
        try:
            resp = self.get(url, None, "download", deadline, {"Accept-Encoding": "identity"})
        except BaseException:
            deadline.close()
            raise
        download = Download(resp, deadline)
        shown = display_url(resp.url or url)
        if not 200 <= resp.status_code < 300:
            download.close()
            raise FeedProblem(
                f"download {shown} answered {resp.status_code} {resp.reason or ''}".rstrip(),
                transient=False,
            )
        size = content_length(resp)
        if size is not None and size > limit:
            download.close()
            raise FeedProblem(
                f"download {shown} is {size} bytes (Content-Length), over the limit of {limit}",
                transient=False,
            )
        return download
