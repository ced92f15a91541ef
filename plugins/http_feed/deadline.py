"""A total time limit on one request (a feed page or a download), and the engine's stop.

requests' ``timeout`` bounds each read, so a server that sends a byte every few seconds
holds a request (and the source's thread) forever. A :class:`Deadline` watches the
sockets of its request from a small thread and shuts them down when the limit passes or
the engine stops: whatever the request is blocked in (connecting, the headers, the body,
a read of a whole chunk), it returns at once. Only ``shutdown``, never ``close``, from
that thread: the descriptor stays the reader's, so it cannot be reused under it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Literal

Cut = Literal["deadline", "stop"]

TICK = 0.1  # how often the watching thread looks at the clock and the stop event

_current = threading.local()


class Deadline:
    """``seconds`` from now for the request, named ``option`` (``page_timeout``) in the
    reasons; ``stopping`` is the engine's stop event."""

    def __init__(self, seconds: float, stopping: threading.Event, option: str) -> None:
        self.seconds = seconds
        self.option = option
        self._at = time.monotonic() + seconds
        self._stopping = stopping
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = threading.Event()
        self.fired: Cut | None = None  # set once the sockets were shut down
        threading.Thread(target=self._watch, name="http-feed-deadline", daemon=True).start()

    def remaining(self) -> float:
        return max(0.0, self._at - time.monotonic())

    def over(self) -> Cut | None:
        """Why no further attempt may start: the stop, the deadline, or None."""
        if self.fired is not None:
            return self.fired
        if self._stopping.is_set():
            return "stop"
        return "deadline" if time.monotonic() >= self._at else None

    def reason(self) -> str:
        return f"no complete answer within {self.option} ({self.seconds:g} s)"

    @contextmanager
    def active(self) -> Iterator[Deadline]:
        """Connections this thread opens or reuses meanwhile are watched (see
        :func:`watch_socket`); their sockets stay watched until :meth:`close`."""
        previous = getattr(_current, "deadline", None)
        _current.deadline = self
        try:
            yield self
        finally:
            _current.deadline = previous

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self.fired is None:
                if not self._done.is_set():
                    self._sockets.append(sock)
                return
        _shut(sock)  # the deadline passed already

    def close(self) -> None:
        """The request is over (read or abandoned): stop watching."""
        with self._lock:
            self._done.set()
            self._sockets.clear()

    def _watch(self) -> None:
        while not self._done.wait(min(TICK, max(self.remaining(), 0.001))):
            cut = self.over()
            if cut is None:
                continue
            with self._lock:
                if self._done.is_set():
                    return
                self.fired = cut
                sockets, self._sockets = self._sockets, []
            for sock in sockets:
                _shut(sock)
            return


def watch_socket(sock: socket.socket) -> None:
    """Put ``sock`` under the deadline active in this thread, if any."""
    deadline: Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown: an SSLSocket's would also drop its TLS state, which
    # the reading thread may be using right now
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
