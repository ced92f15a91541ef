"""Server lifecycle: clean shutdown, state persistence, hostile connections."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
from pathlib import Path

import requests

from itglue_emulator import run_emulator
from tests.emulator.emulator_helpers import Api


def _emulator_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("emulator-")]


def test_shutdown_joins_threads_even_with_idle_keep_alive_connections() -> None:
    with run_emulator() as emu:
        api = Api(emu)
        try:
            assert api.get("/organizations").status_code == 200
            # an idle TCP connection that never sends a byte, and one that never finishes TLS
            idle = socket.create_connection(("127.0.0.1", emu.port))
            half = socket.create_connection(("127.0.0.1", emu.port))
            half.sendall(b"\x16\x03\x01")
            ca_file = emu.ca_file
            assert ca_file is not None and Path(ca_file).exists()
        finally:
            api.close()
    # no longer the pool's problem: the server side closed both
    idle.close()
    half.close()
    assert _emulator_threads() == []
    assert not Path(ca_file).exists()  # the temporary CA is removed


def test_plain_http_client_on_tls_port_does_not_break_the_server() -> None:
    with run_emulator() as emu:
        with socket.create_connection(("127.0.0.1", emu.port)) as raw:
            raw.sendall(b"GET /organizations HTTP/1.1\r\nHost: x\r\n\r\n")
            raw.settimeout(5)
            with contextlib.suppress(ConnectionError, TimeoutError):
                raw.recv(100)
        r = requests.get(
            emu.base_url + "/organizations",
            headers={"x-api-key": emu.api_key},
            verify=emu.ca_file,
            timeout=10,
        )
        assert r.status_code == 200


def test_garbage_request_line_gets_json_400() -> None:
    with run_emulator(tls=False) as emu:
        with socket.create_connection(("127.0.0.1", emu.port)) as raw:
            raw.sendall(b"NONSENSE\r\n\r\n")
            raw.settimeout(5)
            data = b""
            while chunk := raw.recv(4096):
                data += chunk
        assert data.startswith(b"HTTP/1.1 400")
        assert b'"errors"' in data


def test_state_file_round_trip_with_0600(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator.json"
    with run_emulator(state_file=state_file, seed="demo") as emu:
        api = Api(emu)
        try:
            org = api.org("Persisted")
            cfg_id = emu.state()["records"]["configurations"][0]["id"]
            att = api.attach("configurations", cfg_id, b"\x00bytes", "b.bin").json()["data"]
        finally:
            api.close()
    assert stat.S_IMODE(os.stat(state_file).st_mode) == 0o600
    with run_emulator(state_file=state_file) as emu:
        names = [o["name"] for o in emu.state()["records"]["organizations"]]
        assert "Persisted" in names and "Acme Corp" in names
        assert emu.attachment_content(att["id"]) == b"\x00bytes"
        api = Api(emu)
        try:
            assert api.get(f"/organizations/{org['id']}").status_code == 200
            newer = api.org("Newer")
            assert int(newer["id"]) > int(org["id"])  # ids continue, never reused
        finally:
            api.close()


def test_demo_seed_has_realistic_records() -> None:
    with run_emulator(seed="demo") as emu:
        records = emu.state()["records"]
        names = {o["name"] for o in records["organizations"]}
        assert {"Acme Corp", "Globex", "Initech"} <= names
        assert records["configurations"] and records["contacts"]
        assert records["flexible_asset_types"] and records["flexible_asset_fields"]
        assert records["organization_types"] and records["configuration_statuses"]


def test_concurrent_writers_get_unique_ids() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with run_emulator() as emu:

        def writer(n: int) -> list[str]:
            api = Api(emu)
            try:
                return [api.org(f"org-{n}-{i}")["id"] for i in range(15)]
            finally:
                api.close()

        with ThreadPoolExecutor(max_workers=6) as pool:
            ids = [i for batch in pool.map(writer, range(6)) for i in batch]
        assert len(ids) == len(set(ids)) == 90
        assert len(emu.state()["records"]["organizations"]) == 90


def test_shared_pytest_fixture(itglue_emulator: object) -> None:
    from itglue_emulator import Emulator

    assert isinstance(itglue_emulator, Emulator)
    assert itglue_emulator.base_url.startswith("https://127.0.0.1:")
    assert "test-key" not in repr(itglue_emulator)
    api = Api(itglue_emulator)
    try:
        assert api.get("/organizations").status_code == 200
    finally:
        api.close()
