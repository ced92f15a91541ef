"""A fleet of collectors drawing from one rate budget, for tests and benches.

Each collector is a process of its own with its own configuration file and state dir,
``[state] backend = "postgresql"`` on one shared database; its client is built the way
the pipeline builds it (:func:`pipeline.clients.build_client`) and sends GETs from
several threads (as the engine's workers do) from a common start time to a deadline, so
the emulator's counts over that time say how much of the budget the fleet used. Each
collector says "ready" once its client is built and connected, then reads the start
time from its stdin: imports and start-up do not eat into the measured windows.

    python -m pipeline.testing.fleet CONFIG SECONDS THREADS   # one collector
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core_client.exceptions import ClientClosedError

API_KEY_ENV = "ITGLUE_FLEET_API_KEY"
PAGE = {"page[size]": "1"}
STARTUP_TIMEOUT = 120.0  # a loaded machine may take long to start a few interpreters


def write_config(
    path: Path, emulator: Any, *, dsn: str, collector: str, limit: int, window: float
) -> Path:
    """One collector's configuration: the emulator, the shared budget, its own state dir."""
    state_dir = path.parent / f"state-{collector}"
    path.write_text(
        "[itglue]\n"
        'instance = "fleet"\n'
        f"base_url = {json.dumps(emulator.base_url)}\n"
        f'api_key_env = "{API_KEY_ENV}"\n'
        f"ca_bundle = {json.dumps(str(emulator.ca_file))}\n"
        f"rate_limit = {limit}\n"
        f"rate_window = {window}\n"
        "\n[state]\n"
        f"dir = {json.dumps(str(state_dir))}\n"
        'backend = "postgresql"\n'
        f"dsn = {json.dumps(dsn)}\n"
        f"collector = {json.dumps(collector)}\n"
    )
    return path


def requests_seen(emulator: Any, status: int) -> int:
    """How many requests the emulator answered with ``status``."""
    return sum(r["count"] for r in emulator.state()["requests"] if r["status"] == status)


def run_collector(config: Path, seconds: float, threads: int) -> dict[str, int]:
    """Build the configured client, say "ready", read the start time (epoch) from stdin
    and send GETs from then on for ``seconds``."""
    from pipeline.clients import build_client
    from pipeline.settings import load_settings

    client = build_client(load_settings(config))
    try:
        client.rate_limiter.peek()  # connected and migrated before the start
        print("ready", flush=True)
        start_at = float(sys.stdin.readline())
        time.sleep(max(0.0, start_at - time.time()))
        deadline = start_at + seconds

        def send() -> None:
            with contextlib.suppress(ClientClosedError):  # stopped while waiting: done
                while time.time() < deadline:
                    client.get_json("/organizations", PAGE)

        workers = [threading.Thread(target=send) for _ in range(threads)]
        for w in workers:
            w.start()
        # then the answers in flight come in; the threads still waiting for the budget
        # would wait up to a window for nothing: their wait is cut short
        time.sleep(max(0.0, deadline + 1.0 - time.time()))
        metrics = client.get_metrics()
        client.rate_limiter.close()
        for w in workers:
            w.join()
        return {
            "operations": metrics.operation_count,
            "failed": metrics.failed_operations,
            "rate_limited_429": metrics.rate_limited_429,
        }
    finally:
        client.close()


@dataclass
class FleetResult:
    collectors: int
    accepted: int  # requests the emulator answered within the measured windows
    refused: int  # 429s the emulator sent
    budget: int  # what the measured windows allowed
    failed: int  # operations the collectors gave up on
    per_collector: list[dict[str, int]]

    @property
    def used(self) -> float:
        """The share of the budget the fleet used."""
        return self.accepted / self.budget


def run_fleet(
    emulator: Any,
    dsn: str,
    folder: Path,
    *,
    collectors: int,
    limit: int,
    window: float,
    windows: int,
    threads: int = 4,
) -> FleetResult:
    """``collectors`` processes on one budget of ``limit`` per ``window`` seconds (the
    emulator's own limit), measured over ``windows`` windows from an empty one."""
    folder.mkdir(parents=True, exist_ok=True)
    seconds = windows * window
    env = {**os.environ, API_KEY_ENV: emulator.api_key}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline.testing.fleet",
                str(
                    write_config(
                        folder / f"collector-{i}.toml",
                        emulator,
                        dsn=dsn,
                        collector=f"collector-{i}",
                        limit=limit,
                        window=window,
                    )
                ),
                repr(seconds),
                str(threads),
            ],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(collectors)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdin is not None
        line = p.stdout.readline()  # blocks until ready (or dead: then "")
        if line.strip() != "ready":
            for q in procs:
                q.kill()
            _, err = p.communicate(timeout=STARTUP_TIMEOUT)
            raise RuntimeError(f"a collector did not start: {err[-2000:]}")
    start_at = time.time() + 0.5
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(f"{start_at!r}\n")
        p.stdin.flush()
    time.sleep(max(0.0, start_at + seconds - time.time()))
    accepted = requests_seen(emulator, status=200)  # the deadline's count, not later ones
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=seconds + STARTUP_TIMEOUT)
        if p.returncode:
            raise RuntimeError(f"collector failed ({p.returncode}): {err[-2000:]}")
        outputs.append(json.loads(out))
    return FleetResult(
        collectors=collectors,
        accepted=accepted,
        refused=requests_seen(emulator, status=429),
        budget=limit * windows,
        failed=sum(o["failed"] for o in outputs),
        per_collector=outputs,
    )


def main(argv: list[str]) -> None:
    config, seconds, threads = argv
    result = run_collector(Path(config), float(seconds), int(threads))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
