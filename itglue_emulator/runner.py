"""``run_emulator``: start the server in a background thread, hand back a small handle.

The handle's inspection helpers go through the real ``/_emulator`` routes over HTTP(S)
with the stdlib ``http.client`` -- deliberately not core_client's client, so the emulator
shares no code with the thing it is meant to check.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .app import EmulatorApp
from .seed import seed_demo
from .server import EmulatorHTTPServer
from .tls import TestCertificateAuthority


class EmulatorError(RuntimeError):
    """An inspection call failed."""


class Emulator:
    """A running emulator: ``base_url``, ``api_key``, ``ca_file`` and inspection helpers."""

    def __init__(
        self, app: EmulatorApp, base_url: str, port: int, api_key: str, ca_file: str | None
    ) -> None:
        self.app = app
        self.base_url = base_url
        self.port = port
        self.api_key = api_key
        self.ca_file = ca_file
        self._ssl = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def __repr__(self) -> str:
        return f"Emulator(base_url={self.base_url!r}, ca_file={self.ca_file!r})"

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        conn: http.client.HTTPConnection
        if self._ssl is not None:
            conn = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=30, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            if isinstance(body, bytes):
                payload: bytes | None = body
                headers = {"Content-Type": "application/octet-stream"}
            else:
                payload = None if body is None else json.dumps(body).encode()
                headers = {"Content-Type": "application/json"} if payload is not None else {}
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self._call(method, path, body)
        if status != 200:
            raise EmulatorError(f"{method} {path}: HTTP {status}: {data[:300]!r}")
        return json.loads(data)

    def state(self) -> dict[str, Any]:
        """GET /_emulator/state: records by collection, request counts, active faults."""
        result: dict[str, Any] = self._json("GET", "/_emulator/state")
        return result

    def attachment_content(self, attachment_id: int | str) -> bytes:
        status, data = self._call("GET", f"/_emulator/attachments/{attachment_id}/content")
        if status == 404:
            raise KeyError(attachment_id)
        if status != 200:
            raise EmulatorError(f"attachment {attachment_id}: HTTP {status}")
        return data

    def replace_attachment_content(self, attachment_id: int | str, data: bytes) -> None:
        """Change an attachment's bytes in place (size, sha256 and updated-at follow)."""
        status, body = self._call("PUT", f"/_emulator/attachments/{attachment_id}/content", data)
        if status != 200:
            raise EmulatorError(f"attachment {attachment_id}: HTTP {status}: {body[:200]!r}")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Replace the fault configuration (no arguments: clear all faults)."""
        result: dict[str, Any] = self._json("POST", "/_emulator/faults", faults)
        return result

    def set_api_key(self, api_key: str) -> None:
        """Accept only ``api_key`` from now on (the key was regenerated in IT Glue)."""
        self.app.set_api_key(api_key)
        self.api_key = api_key

    def seed(self, counts: Mapping[str, int]) -> dict[str, int]:
        result: dict[str, int] = self._json("POST", "/_emulator/seed", dict(counts))["created"]
        return result

    def add_records(self, records: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
        """POST /_emulator/records: store records as given (``id`` kept when present)."""
        result: dict[str, list[str]] = self._json("POST", "/_emulator/records", dict(records))[
            "created"
        ]
        return result

    def reset(self) -> None:
        self._json("POST", "/_emulator/reset", {})

    def records(self, collection: str) -> list[dict[str, Any]]:
        """Shortcut: ``state()["records"][collection]``."""
        rows: list[dict[str, Any]] = self.state()["records"][collection]
        return rows


@contextmanager
def run_emulator(
    api_key: str = "test-key",
    tls: bool = True,
    port: int = 0,
    seed: str | None = None,
    rate_limit: tuple[int, float] = (3000, 300.0),
    retry_after: bool = False,
    max_body_bytes: int | None = None,
    state_file: str | Path | None = None,
    faults: Mapping[str, Any] | None = None,
    random_seed: int | None = None,
    ca_dir: str | Path | None = None,
) -> Iterator[Emulator]:
    """Serve the emulated IT Glue API on 127.0.0.1 until the ``with`` block ends.

    ``seed="demo"`` loads a few realistic organizations; ``state_file`` is loaded at start
    (when it exists) and written at exit; ``random_seed`` makes fault rates reproducible;
    ``ca_dir`` keeps the test CA there (reused when present) instead of throwing it away.
    """
    if seed not in (None, "demo"):
        raise ValueError(f"unknown seed {seed!r} (only 'demo')")
    app = EmulatorApp(api_key, rate_limit, retry_after, max_body_bytes, faults, random_seed)
    state_path = Path(state_file) if state_file is not None else None
    if state_path is not None and state_path.exists():
        app.store.load(state_path)
    elif seed == "demo":
        seed_demo(app.store)
    ca = TestCertificateAuthority(Path(ca_dir) if ca_dir is not None else None) if tls else None
    try:
        server = EmulatorHTTPServer(("127.0.0.1", port), app, ca.server_context() if ca else None)
    except BaseException:
        if ca:
            ca.close()
        raise
    try:
        bound_port = int(server.server_address[1])
        scheme = "https" if tls else "http"
        app.base_url = f"{scheme}://127.0.0.1:{bound_port}"
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="emulator-accept",
            daemon=True,
        )
        thread.start()
        try:
            yield Emulator(app, app.base_url, bound_port, api_key, str(ca.ca_file) if ca else None)
        finally:
            server.shutdown()
            thread.join()
    finally:
        server.server_close()
        if state_path is not None:
            app.store.dump(state_path)
        if ca:
            ca.close()
