"""A real HTTP(S) JSON feed server on 127.0.0.1 for the http_feed tests.

Hand-written on ``http.server`` rather than pytest-httpserver: the tests need faults at
the socket level (a body cut after its headers, a connection closed mid-download, a
request held until the test kills the client), per-path request counting and the same
feed served in every pagination style; a few dozen lines of handler do all that without
a new dependency.

Feeds (all sorted by ``updated_at`` then ``id``; ``?since=`` keeps items with
``updated_at >= since``):

``/feed/next_link?page=N``   ``{"data": [...], "links": {"next": "/feed/next_link?page=N+1"}}``
``/feed/link_header?page=N`` a JSON list; ``Link: <...>; rel="next"``
``/feed/page?page=N&per_page=K``  ``{"items": [...]}``
``/feed/offset?offset=O&limit=L`` ``{"items": [...]}``
``/feed/cursor?cursor=C``    ``{"items": [...], "meta": {"next_cursor": C2, "has_more": b}}``
                             (a change feed: ``C`` is the last change sequence seen)
``/files/<name>``            the bytes of ``files[name]``

Hostile answers: ``drips`` send a response one byte at a time (a server that never
times out a per-read limit); :class:`Raw` values are served as given (JSON nested too
deeply for the server's own ``json.dumps``).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme


@dataclass
class Fault:
    """Answer the next ``times`` requests whose path starts with ``prefix`` like this."""

    prefix: str
    status: int = 503
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    skip: int = 0  # let this many matching requests through first


@dataclass
class Drip:
    """Send the answers to paths starting with a prefix one byte every ``interval`` s:
    the body only, or the status line and headers too (``headers``). ``pad`` spaces are
    added to a JSON body so that the whole answer would take minutes."""

    interval: float = 0.05
    headers: bool = False
    pad: int = 20_000


@dataclass(frozen=True)
class Raw:
    """JSON text served exactly as given, in place of an item's value."""

    text: str


def dumps(doc: Any) -> str:
    """``json.dumps``, with :class:`Raw` values spliced in as they are."""
    raws: list[str] = []

    def placeholder(value: Any) -> str:
        if not isinstance(value, Raw):
            raise TypeError(f"not JSON: {type(value).__name__}")
        raws.append(value.text)
        return f"\x00raw-{len(raws) - 1}\x00"

    out = json.dumps(doc, default=placeholder)
    for i, text in enumerate(raws):
        out = out.replace(json.dumps(f"\x00raw-{i}\x00"), text, 1)
    return out


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FeedState:
    """What the server serves and what it saw; tests change it while it runs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, dict[str, Any]] = {}
        self.seq: dict[str, int] = {}  # item id -> change sequence number
        self._next_seq = 0
        self.files: dict[str, tuple[bytes, str]] = {}
        self.page_size = 2
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.require_header: tuple[str, str] | None = None
        self.loop = False  # pagination points back at the same page
        self.cursor_null_at_end = False
        self.cut_downloads: dict[str, int] = {}  # name -> bytes sent before the drop
        self.no_length: set[str] = set()  # downloads sent without Content-Length
        self.hold: dict[str, threading.Event] = {}  # "path?query" substring -> wait for it
        self.held = threading.Event()  # set when a request is being held
        self.drips: dict[str, Drip] = {}  # path prefix -> answered one byte at a time
        self.dripping = threading.Event()  # set when a drip has begun
        self.closing = threading.Event()  # the server is shutting down: drips end
        self.connections = 0  # TCP connections accepted

    # ----- content

    def put(self, item: dict[str, Any]) -> None:
        """Add or replace an item (a new change sequence number)."""
        with self.lock:
            self._next_seq += 1
            self.items[str(item["id"])] = item
            self.seq[str(item["id"])] = self._next_seq

    def add_file(self, name: str, data: bytes, ctype: str = "application/pdf") -> str:
        with self.lock:
            self.files[name] = (data, ctype)
        return f"/files/{name}"

    def fail_next(
        self,
        prefix: str,
        status: int = 503,
        *,
        times: int = 1,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        skip: int = 0,
    ) -> None:
        with self.lock:
            self.faults.append(Fault(prefix, status, body, dict(headers or {}), times, skip))

    # ----- inspection

    def count(self, prefix: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.path.startswith(prefix))

    def downloads(self, name: str | None = None) -> int:
        return self.count(f"/files/{name}" if name else "/files/")

    # ----- feed views

    def sorted_items(self, since: str | None) -> list[dict[str, Any]]:
        with self.lock:
            items = list(self.items.values())

        def key(i: Any) -> tuple[str, str]:
            if not isinstance(i, dict):  # malformed items are served too (tests)
                return ("", "")
            return (str(i.get("updated_at", "")), str(i.get("id", "")))

        if since is not None:
            items = [i for i in items if key(i)[0] >= since]
        return sorted(items, key=key)

    def changes_after(self, seq: int) -> list[tuple[int, dict[str, Any]]]:
        with self.lock:
            out = [(self.seq[k], v) for k, v in self.items.items() if self.seq[k] > seq]
        return sorted(out, key=lambda p: p[0])


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode()


def _uncursor(value: str) -> int:
    return int(base64.urlsafe_b64decode(value.encode()).decode().split(":")[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    _drip: Drip | None = None

    def flush_headers(self) -> None:
        if self._drip is not None and self._drip.headers:
            data = b"".join(getattr(self, "_headers_buffer", []))
            self._headers_buffer = []
            self._write(data)
        else:
            super().flush_headers()

    def _write(self, data: bytes) -> None:
        """The body (or the headers): at once, or a byte at a time while dripping."""
        drip = self._drip
        if drip is None:
            self.wfile.write(data)
            return
        st = self.server.state
        st.dripping.set()
        for i in range(len(data)):
            if st.closing.wait(drip.interval):
                return
            self.wfile.write(data[i : i + 1])  # a client that hung up ends the handler
            self.wfile.flush()

    def do_GET(self) -> None:
        st = self.server.state
        parts = urlsplit(self.path)
        with st.lock:
            self._drip = next(
                (d for prefix, d in st.drips.items() if parts.path.startswith(prefix)), None
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with st.lock:
            st.requests.append(Request(parts.path, query, dict(self.headers.items())))
            holds = [ev for key, ev in st.hold.items() if key in self.path]
        for ev in holds:
            st.held.set()
            ev.wait(60)
        if st.require_header and parts.path.startswith("/feed"):
            name, value = st.require_header
            if self.headers.get(name) != value:
                return self._send(401, b'{"error": "unauthorized"}')
        with st.lock:
            fault = next((f for f in st.faults if parts.path.startswith(f.prefix)), None)
            if fault is not None and fault.skip > 0:
                fault.skip -= 1
                fault = None
            elif fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    st.faults.remove(fault)
        if fault is not None:
            ctype = fault.headers.pop("Content-Type", "application/json")
            return self._send(fault.status, fault.body, ctype, fault.headers)
        if parts.path.startswith("/files/"):
            return self._file(parts.path.removeprefix("/files/"))
        if parts.path.startswith("/redirect/"):
            target = parts.path.removeprefix("/redirect")
            return self._send(302, b"", headers={"Location": target})
        style = parts.path.removeprefix("/feed/")
        handler = getattr(self, f"_feed_{style}", None)
        if handler is None:
            return self._send(404, b'{"error": "not found"}')
        handler(query)

    # ----- answers

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self._write(body)

    def _json(self, doc: Any, headers: dict[str, str] | None = None) -> None:
        pad = b" " * self._drip.pad if self._drip is not None else b""
        self._send(200, dumps(doc).encode() + pad, headers=headers)

    def _file(self, name: str) -> None:
        st = self.server.state
        with st.lock:
            entry = st.files.get(name)
            cut = st.cut_downloads.get(name)
            no_length = name in st.no_length
        if entry is None:
            return self._send(404, b'{"error": "no such file"}')
        data, ctype = entry
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if cut is not None:
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        for i in range(0, len(data), 65536):
            self._write(data[i : i + 65536])

    def _window(self, query: dict[str, str], start: int, size: int) -> list[dict[str, Any]]:
        items = self.server.state.sorted_items(query.get("since"))
        return items[start : start + size]

    def _link(self, style: str, query: dict[str, str], page: int) -> str:
        q = {k: v for k, v in query.items() if k != "page"}
        q["page"] = str(page)
        return f"/feed/{style}?" + "&".join(f"{k}={v}" for k, v in sorted(q.items()))

    def _paged(self, style: str, query: dict[str, str]) -> tuple[list[dict[str, Any]], str | None]:
        st = self.server.state
        page = int(query.get("page", "1"))
        items = self._window(query, (page - 1) * st.page_size, st.page_size)
        total = len(st.sorted_items(query.get("since")))
        more = page * st.page_size < total
        nxt = self._link(style, query, page if st.loop else page + 1) if more else None
        return items, nxt

    def _feed_next_link(self, query: dict[str, str]) -> None:
        items, nxt = self._paged("next_link", query)
        self._json({"data": items, "links": {"next": nxt}})

    def _feed_link_header(self, query: dict[str, str]) -> None:
        items, nxt = self._paged("link_header", query)
        host, port = self.server.server_address[:2]
        scheme = "https" if self.server.tls else "http"
        headers = {"Link": f'<{scheme}://{host}:{port}{nxt}>; rel="next"'} if nxt else {}
        self._json(items, headers)

    def _feed_page(self, query: dict[str, str]) -> None:
        st = self.server.state
        size = int(query.get("per_page", st.page_size))
        page = 1 if st.loop else int(query.get("page", "1"))
        self._json({"items": self._window(query, (page - 1) * size, size)})

    def _feed_offset(self, query: dict[str, str]) -> None:
        offset = 0 if self.server.state.loop else int(query.get("offset", "0"))
        limit = int(query.get("limit", "10"))
        self._json({"items": self._window(query, offset, limit)})

    def _feed_cursor(self, query: dict[str, str]) -> None:
        st = self.server.state
        after = _uncursor(query["cursor"]) if query.get("cursor") else 0
        changes = st.changes_after(after)
        page = changes[: st.page_size]
        more = len(changes) > st.page_size
        last = page[-1][0] if page else after
        if st.loop:
            last, more = after, True
        nxt: str | None = _cursor(last)
        if not more and st.cursor_null_at_end:
            nxt = None
        self._json({"items": [i for _, i in page], "meta": {"next_cursor": nxt, "has_more": more}})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, state: FeedState, ssl_ctx: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.ssl_ctx = ssl_ctx
        self.tls = ssl_ctx is not None
        self.open_sockets: set[socket.socket] = set()
        self.sock_lock = threading.Lock()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_ctx is not None:
            request = self.ssl_ctx.wrap_socket(request, server_side=True)
        with self.sock_lock:
            self.open_sockets.add(request)
            self.state.connections += 1
        try:
            super().finish_request(request, client_address)
        finally:
            with self.sock_lock:
                self.open_sockets.discard(request)
            if self.ssl_ctx is not None:
                request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up (the tests do it on purpose) are not errors


@dataclass
class FeedServer:
    state: FeedState
    base_url: str
    ca_file: Path | None
    ca: trustme.CA | None = None

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def run_feed_server(
    tmp: Path, *, tls: bool = True, ca: trustme.CA | None = None
) -> Iterator[FeedServer]:
    """A feed server on 127.0.0.1 (HTTPS with a test CA, or ``ca``'s, or plain HTTP)."""
    ssl_ctx = None
    ca_file = None
    if tls:
        ca = ca or trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ssl_ctx)
        fd, name = tempfile.mkstemp(prefix="feed-ca-", suffix=".pem", dir=tmp)  # one per server
        os.close(fd)
        ca_file = Path(name)
        ca.cert_pem.write_to_path(str(ca_file))
    state = FeedState()
    server = _Server(state, ssl_ctx)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    port = server.server_address[1]
    try:
        yield FeedServer(state, f"{'https' if tls else 'http'}://127.0.0.1:{port}", ca_file, ca)
    finally:
        state.closing.set()
        for ev in list(state.hold.values()):
            ev.set()
        server.shutdown()
        with server.sock_lock:
            for s in list(server.open_sockets):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        server.server_close()
        thread.join(5)


def add_doc(
    feed: FeedServer,
    i: int,
    *,
    updated: str | None = None,
    org: str = "Acme",
    data: bytes | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Put item ``doc-i`` (with a file ``doc-i.pdf``) on the feed."""
    data = data if data is not None else b"%PDF-1.4 document " + str(i).encode() * 50
    path = feed.state.add_file(f"doc-{i}.pdf", data)
    item: dict[str, Any] = {
        "id": f"doc-{i}",
        "updated_at": updated or f"2026-01-01T00:00:{i:02d}Z",
        "attributes": {"title": f"Report {i}", "org": org},
        "links": {"file": path},
    }
    item.update(extra)
    feed.state.put(item)
    return item
