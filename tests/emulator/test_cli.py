"""``itglue-ingest emulator`` as a real subprocess: ready line, auth, clean SIGTERM exit."""

from __future__ import annotations

import json
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "itglue-ingest"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from pipeline.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _first_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            return proc.stdout.readline()
        if proc.poll() is not None:
            break
    raise AssertionError(f"no ready line; exit={proc.poll()}")


def _run(args: list[str], sig: int) -> tuple[dict[str, object], int, str]:
    with subprocess.Popen(
        [*_cli(), "emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            ready = json.loads(_first_line(proc))
            base = str(ready["base_url"])
            verify = ready["ca_file"] or True
            with requests.Session() as s:
                r = s.get(
                    base + "/organizations",
                    headers={"x-api-key": "test-key"},
                    verify=verify,
                    timeout=10,
                )
                assert r.status_code == 200
                assert {o["attributes"]["name"] for o in r.json()["data"]} >= {
                    "Acme Corp",
                    "Globex",
                    "Initech",
                }
                r = s.get(base + "/organizations", verify=verify, timeout=10)
                assert r.status_code == 401
        finally:
            proc.send_signal(sig)
            _out, err = proc.communicate(timeout=30)
    return ready, proc.returncode, err


def test_cli_plain_http_sigterm() -> None:
    port = _free_port()
    ready, code, err = _run(
        ["--no-tls", "--port", str(port), "--api-key", "test-key", "--seed", "demo"],
        signal.SIGTERM,
    )
    assert ready == {"base_url": f"http://127.0.0.1:{port}", "ca_file": None}
    assert code == 0, err
    assert "test-key" not in err


def test_cli_tls_sigint() -> None:
    ready, code, err = _run(
        ["--port", "0", "--seed", "demo", "--rate-limit", "100/10"], signal.SIGINT
    )
    assert str(ready["base_url"]).startswith("https://127.0.0.1:")
    ca_file = Path(str(ready["ca_file"]))
    assert code == 0, err
    assert not ca_file.exists()


def test_cli_rejects_bad_options() -> None:
    for bad in (["--rate-limit", "lots"], ["--faults", '{"error_rate": 3}'], ["--seed", "x"]):
        result = subprocess.run(
            [*_cli(), "emulator", *bad], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 2, (bad, result.stderr)


def test_cli_port_in_use_is_a_clean_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*_cli(), "emulator", "--no-tls", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "emulator:" in result.stderr
