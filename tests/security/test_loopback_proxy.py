"""Plain ``http://`` to a loopback emulator never goes through an environment proxy.

The HTTPS rule allows ``http://`` only to a loopback host (with an explicit opt-in)
because such a request never leaves the machine. ``requests`` honours ``$HTTP_PROXY`` /
``$ALL_PROXY`` even for ``127.0.0.1`` unless ``$NO_PROXY`` lists it, so on a machine
with a proxy configured the request -- API key in clear -- would go to the proxy, off
the host. A recording "proxy" on loopback shows whether anything reached it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from core_client import ITGlueClient
from core_client.emulator import run_emulator

CANARY = "ITG.canary-proxy-5e3c1a9f7d2b4e6a"


@contextmanager
def recording_proxy() -> Iterator[tuple[str, list[bytes]]]:
    """A listener that records what it receives and answers 502: ``(url, received)``."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.05)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                with suppress(OSError):
                    received.append(conn.recv(65536))
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}", received
    finally:
        stop.set()
        t.join(5)
        srv.close()


def set_proxy_env(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_plain_loopback_requests_bypass_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recording_proxy() as (proxy, received), run_emulator(api_key=CANARY, tls=False) as emu:
        set_proxy_env(monkeypatch, proxy)
        client = ITGlueClient(
            "proxy",
            base_url=emu.base_url,
            api_key=CANARY,
            allow_insecure_loopback=True,
            state_dir=tmp_path / "state",
            max_retries=0,
        )
        try:
            org = client.create_organization("Proxy Test")
            assert client.get_organization(org.id).name == "Proxy Test"
        finally:
            client.close()
    assert received == []
