"""The HTTP endpoint of ``[observability] listen``: ``/metrics`` (Prometheus text
format), ``/healthz`` and ``/readyz`` (JSON, 200 or 503). Standard library server on
its own threads: a slow scraper never holds up the engine."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from .collector import EngineCollector, EngineParts
from .health import Health

log = logging.getLogger("itglue_ingest.engine")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, health: Health):
        import socket

        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.registry = registry
        self.health = health
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            v = self.server.health.alive()
            self._json(200 if v.ok else 503, v.body)
        elif path == "/readyz":
            v = self.server.health.ready()
            self._json(200 if v.ok else 503, v.body)
        else:
            self._json(404, {"error": "not found: try /metrics, /healthz or /readyz"})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = (json.dumps(body, default=str) + "\n").encode()
        self._send(status, data, "application/json")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("observability: " + format, *args)


class ObservabilityServer:
    """Serves one engine's metrics and health on ``host:port`` until :meth:`stop`.

    :raises OSError: the address cannot be bound (in use, not an address of this host).
    """

    def __init__(self, host: str, port: int, parts: EngineParts, health: Health) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(EngineCollector(parts))
        ProcessCollector(registry=registry)  # process_start_time_seconds, memory, fds
        self._server = _Server((host, port), registry, health)
        self.address: tuple[str, int] = self._server.server_address[:2]  # type: ignore[assignment]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="observability",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> None:
        self._thread.start()
        log.info("metrics and health on %s (/metrics, /healthz, /readyz)", self.url)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)
        self._server.server_close()
