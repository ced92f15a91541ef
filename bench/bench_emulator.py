"""Throughput of the IT Glue emulator: GET /organizations over keep-alive, TLS and plain.

Each server runs in its own process (so the client threads here do not share its GIL):
the emulator via ``itglue-ingest emulator --seed demo``, and as a baseline a trivial stdlib
ThreadingHTTPServer (HTTP/1.1, same TLS setup) that answers every GET with the emulator's
own response bytes, precomputed. The ratio emulator/baseline is what the emulator's
routing, auth, rate limiting, faults and JSON:API rendering cost.

    .venv/bin/python bench/bench_emulator.py [--seconds 3] [--threads 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import select
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key"

BASELINE = r"""
import json, ssl, sys, tempfile, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import trustme

body = open(sys.argv[1], "rb").read()
tls = sys.argv[2] == "tls"

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else header+body writes hit Nagle/delayed-ACK stalls
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.api+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class S(ThreadingHTTPServer):
    daemon_threads = True
    def get_request(self):
        sock, addr = self.socket.accept()
        if ctx is not None:
            sock = ctx.wrap_socket(sock, server_side=True)
        return sock, addr

ctx = None
ca_file = None
if tls:
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    fd, ca_file = tempfile.mkstemp(suffix=".pem")
    os.close(fd)
    ca.cert_pem.write_to_path(ca_file)
srv = S(("127.0.0.1", 0), H)
scheme = "https" if tls else "http"
print(json.dumps({"base_url": f"{scheme}://127.0.0.1:{srv.server_address[1]}",
                  "ca_file": ca_file}), flush=True)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    pass
finally:
    srv.server_close()
    if ca_file:
        os.unlink(ca_file)
"""


def _ready(proc: subprocess.Popen[str]) -> dict[str, str | None]:
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.2)[0]:
            doc: dict[str, str | None] = json.loads(proc.stdout.readline())
            return doc
        if proc.poll() is not None:
            break
    raise RuntimeError("server did not start")


def _start_emulator(tls: bool) -> tuple[subprocess.Popen[str], dict[str, str | None]]:
    exe = Path(sys.executable).parent / "itglue-ingest"
    cmd = (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "from pipeline.cli import main; main()"]
    )
    cmd += [
        "emulator",
        "--port",
        "0",
        "--api-key",
        KEY,
        "--seed",
        "demo",
        "--rate-limit",
        "100000000/300",
        "--tls" if tls else "--no-tls",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    return proc, _ready(proc)


def _start_baseline(
    tls: bool, body_file: str
) -> tuple[subprocess.Popen[str], dict[str, str | None]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", BASELINE, body_file, "tls" if tls else "plain"],
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, _ready(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(2)  # SIGINT
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout:
        proc.stdout.close()


def _connection(info: dict[str, str | None]) -> http.client.HTTPConnection:
    url = urlsplit(str(info["base_url"]))
    assert url.hostname and url.port
    if url.scheme == "https":
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        return http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=30)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=30)


def _fetch_once(info: dict[str, str | None]) -> bytes:
    conn = _connection(info)
    try:
        conn.request("GET", "/organizations", headers={"x-api-key": KEY})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
        return data
    finally:
        conn.close()


def _measure(info: dict[str, str | None], seconds: float, threads: int) -> float:
    """Requests per second with ``threads`` keep-alive connections for ``seconds``."""
    counts = [0] * threads
    errors: list[BaseException] = []
    stop = threading.Event()
    start_gate = threading.Barrier(threads + 1)

    def worker(i: int) -> None:
        conn = _connection(info)
        try:
            start_gate.wait()
            while not stop.is_set():
                conn.request("GET", "/organizations", headers={"x-api-key": KEY})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
                counts[i] += 1
        except BaseException as e:  # report, do not hang the bench
            errors.append(e)
        finally:
            conn.close()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    start_gate.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"client errors: {errors[:3]}")
    return sum(counts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    print(
        f"GET /organizations (demo seed), {args.threads} keep-alive client threads, "
        f"{args.seconds:g} s per run, {os.cpu_count()} CPUs"
    )
    warm_up = min(0.5, args.seconds)
    results: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        body_file = str(Path(tmp) / "body.json")
        for tls in (True, False):
            mode = "tls" if tls else "plain"
            proc, info = _start_emulator(tls)
            try:
                body = _fetch_once(info)
                Path(body_file).write_bytes(body)
                print(f"{mode}: response body {len(body)} bytes")
                _measure(info, warm_up, args.threads)  # warm-up
                results[("emulator", mode)] = _measure(info, args.seconds, args.threads)
            finally:
                _stop(proc)
            proc, info = _start_baseline(tls, body_file)
            try:
                _measure(info, warm_up, args.threads)
                results[("baseline", mode)] = _measure(info, args.seconds, args.threads)
            finally:
                _stop(proc)
    for mode in ("tls", "plain"):
        emu, base = results[("emulator", mode)], results[("baseline", mode)]
        print(
            f"{mode:5s}  emulator {emu:8.0f} req/s   baseline (static stdlib server) "
            f"{base:8.0f} req/s   ratio {emu / base:.2f}"
        )


if __name__ == "__main__":
    main()
