"""The HTTP(S) server: stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive, TLS per connection.

Why the stdlib server: one thread per connection is plenty for a test double (the bench
shows several thousand small requests per second over keep-alive), it needs no event loop,
and it runs on any Python 3.11. What is added on top of it:

* TLS is wrapped *in the connection thread*, so a slow or broken handshake never blocks
  the accept loop;
* every connection and its thread are tracked, so ``server_close()`` can shut down idle
  keep-alive sockets and join every thread (no leaked threads or ResourceWarnings);
* the request body is read by Content-Length (or chunked), and refused with 413 *before*
  it is read when it announces more than the limit;
* one ``write`` per response (headers and body together): a TLS record per response
  instead of one per header line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import errors
from .app import EmulatorApp
from .jsonapi import Reply

log = logging.getLogger("itglue_emulator")

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_DRAIN_CAP = 256 * 1024 * 1024  # beyond this an oversized body is not drained, just cut off
_QUIET = (ConnectionError, TimeoutError, ssl.SSLError, BrokenPipeError, OSError)


class _BodyTooLarge(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ITGlueEmulator/1.0"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are closed after this many seconds
    disable_nagle_algorithm = True  # answers are single writes; never wait for an ACK
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet; request counts are in /_emulator/state

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_GET

    # -- plumbing ---------------------------------------------------------------------

    def _write(self, reply: Reply, close: bool = False, cut: bool = False) -> None:
        """The answer; ``cut``: the full Content-Length is announced but only half the body
        is sent before the connection closes (a transfer the network broke)."""
        body = reply.body
        if body is None or reply.status == 204:
            payload = b""
        elif isinstance(body, bytes):
            payload = body
        else:
            payload = json.dumps(body, separators=(",", ":")).encode()
        lines = [
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Unknown')}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
        ]
        if reply.status != 204:
            lines.append(f"Content-Type: {reply.content_type}")
            lines.append(f"Content-Length: {len(payload)}")
        for name, value in reply.headers.items():
            lines.append(f"{name}: {value}")
        if close:
            lines.append("Connection: close")
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if cut:
            self.wfile.write(head + payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.server.abort_connection(self.connection)
            return
        self.wfile.write(head + payload)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed request lines etc.: a JSON:API error body instead of HTML."""
        err = errors.ApiError(code, [{"status": str(code), "title": message or "Error"}])
        try:
            self._write(Reply(code, err.body()), close=True)
        except OSError:
            self.close_connection = True

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        too_large = False
        while True:
            size_line = self.rfile.readline(1024)
            if not size_line:
                raise ConnectionError("connection closed inside a chunked body")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            total += size
            if total > _DRAIN_CAP:
                raise ConnectionError("chunked body far over the limit")
            chunk = self.rfile.read(size)
            self.rfile.readline(16)
            if total > limit:
                too_large = True
            else:
                parts.append(chunk)
        if too_large:
            raise _BodyTooLarge()
        return b"".join(parts)

    def _drain(self, length: int) -> None:
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                return
            remaining -= len(chunk)

    def _serve(self) -> None:
        app = self.server.app
        split = urlsplit(self.path)
        path = unquote(split.path) or "/"
        query = parse_qsl(split.query, keep_blank_values=True)
        method = self.command
        inspection = path == "/_emulator" or path.startswith("/_emulator/")
        limit = app.max_body_bytes

        # 1. the body: refuse oversize before reading it (413), else read it fully
        try:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                body = self._read_chunked(limit)
            else:
                raw_length = self.headers.get("Content-Length")
                length = int(raw_length) if raw_length is not None else 0
                if length < 0:
                    raise ValueError(length)
                if length > limit:
                    if not inspection:
                        app.count(method, app.template_for(method, path), 413)
                    self._write(_reply(errors.payload_too_large(limit)), close=True)
                    if length <= _DRAIN_CAP:
                        self._drain(length)
                    return
                body = self.rfile.read(length) if length else b""
                if len(body) < length:
                    self.close_connection = True
                    return
        except _BodyTooLarge:
            if not inspection:
                app.count(method, app.template_for(method, path), 413)
            self._write(_reply(errors.payload_too_large(limit)), close=True)
            return
        except ValueError:
            self._write(
                _reply(errors.bad_request("invalid Content-Length or chunk size")), close=True
            )
            return

        # 2. inspection routes: loopback only, no key, no rate limit, no faults
        if inspection:
            if self.client_address[0] not in ("127.0.0.1", "::1"):
                self._write(Reply(403, {"error": "loopback only"}, content_type="application/json"))
                return
            self._write(app.inspect(method, path, body))
            return

        # 3. the API
        outcome = app.process(method, path, query, self.headers, body)
        if outcome.drop:
            # commit then drop: the write is stored, the client gets no answer at all
            self.close_connection = True
            self.server.abort_connection(self.connection)
            return
        self._write(outcome.reply, cut=outcome.cut)


def _reply(err: errors.ApiError) -> Reply:
    return Reply(err.status, err.body(), dict(err.headers))


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], app: EmulatorApp, ssl_context: ssl.SSLContext | None
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        self._closing = False
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.app.note_connection()
        worker = threading.Thread(
            target=self._connection,
            args=(request, client_address),
            name=f"emulator-conn-{client_address[1]}",
            daemon=True,
        )
        with self._lock:
            self._workers.add(worker)
            self._conns.add(request)
        worker.start()

    def _connection(self, request: socket.socket, client_address: Any) -> None:
        conn = request
        try:
            if self.ssl_context is not None:
                request.settimeout(10)
                # handshake after registering the TLS socket, so server_close() can cut
                # a client that stalls mid-handshake
                conn = self.ssl_context.wrap_socket(
                    request, server_side=True, do_handshake_on_connect=False
                )
                with self._lock:
                    self._conns.discard(request)
                    self._conns.add(conn)
                    closing = self._closing
                if closing:
                    return
                conn.do_handshake()
            self.finish_request(conn, client_address)
        except Exception:
            self.handle_error(conn, client_address)
        finally:
            with self._lock:
                self._conns.discard(request)
                self._conns.discard(conn)
                self._workers.discard(threading.current_thread())
            _close(conn)
            if conn is not request:
                _close(request)

    def abort_connection(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(conn, socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, _QUIET):
            return
        log.exception("emulator: error while serving %s", client_address)

    def server_close(self) -> None:
        """Close the listener, cut idle keep-alive connections, join every thread."""
        super().server_close()
        with self._lock:
            self._closing = True
            conns = list(self._conns)
            workers = list(self._workers)
        for conn in conns:
            self.abort_connection(conn)
        for worker in workers:
            worker.join(timeout=10)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
