"""The scaffolding of the daemon crash tests: the real CLI ``run`` SIGKILLed N times.

Each crash test (drop folder, mailbox, feed) feeds its own source and checks its own
outcome; what they share lives here: the configuration's IT Glue half, the CLI command,
the start / wait-for-progress / kill loop, the final clean run, and the check that no
daemon ever held a deleted SQLite ``-wal`` or ``-shm`` (a lost ledger commit).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.ledger import Ledger
from tests.waiting import wait_for

CLI = [sys.executable, "-c", "from pipeline.cli import main; main()"]
KEY_ENV = "ITGLUE_CRASH_KEY"
INSTANCE = "crash"
# lost answers (commit-then-drop) and 5xx on creates and uploads, latency to widen windows
FAULTS: dict[str, Any] = {
    "drop_rate": 0.1,
    "error_rate": 0.05,
    "latency_ms": 10,
    "jitter_ms": 10,
    "methods": ["POST", "PATCH"],
}


def write_config(
    folder: Path,
    emu: Any,
    sources: str,
    *,
    state: str = "",
    workers: int = 2,
    transforms: Sequence[str] | None = None,
) -> Path:
    """``ingest.toml`` in ``folder`` (made if missing): the emulator, a state dir and the
    given ``[[sources]]`` tables (TOML text). ``state`` is more ``[state]`` lines (TOML
    text); ``transforms`` None keeps the pipeline's default transforms."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "ingest.toml"
    listed = "" if transforms is None else f"transforms = {json.dumps(list(transforms))}\n"
    cfg.write_text(
        f"""
[itglue]
instance = "{INSTANCE}"
base_url = "{emu.base_url}"
api_key_env = "{KEY_ENV}"
ca_bundle = "{emu.ca_file}"

[state]
dir = "state"
{state}
[pipeline]
{listed}workers = {workers}
retry_base = 0.05
retry_max = 0.5
{sources}
"""
    )
    return cfg


def ledger_counts(tmp_path: Path) -> dict[str, dict[str, int]]:
    ledger = Ledger(tmp_path / "state" / f"{INSTANCE}.db")
    try:
        return ledger.counts()
    finally:
        ledger.close()


def catches_sigterm(pid: int) -> bool:
    """The process installed its SIGTERM handler (before that, SIGTERM kills it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (signal.SIGTERM - 1) & 1)


def deleted_wal(pid: int) -> list[str]:
    """The deleted ``-wal``/``-shm`` files the process ``pid`` holds open."""
    found: list[str] = []
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # the process is gone
        return found
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.endswith(" (deleted)") and ("-wal" in target or "-shm" in target):
            found.append(target)
    return found


class CrashLoop:
    """Starts ``itglue-ingest run`` and SIGKILLs it at random moments after progress.

    ``delivered`` counts what has landed so far (in the emulator); a run is killed only
    after it delivered something, so every run does work and a kill lands mid-flight.
    """

    def __init__(self, cfg: Path, emu: Any, delivered: Callable[[], int], seed: int = 20) -> None:
        self.cfg = cfg
        self.emu = emu
        self.delivered = delivered
        self.env = {**os.environ, KEY_ENV: emu.api_key, "PYTHONUNBUFFERED": "1"}
        self.log_path = cfg.parent / "daemon.log"
        self.rng = random.Random(seed)
        self.hits = 0  # kills that hit a running daemon
        self.daemon_pid: int | None = None
        self.deleted: list[str] = []  # deleted WAL/SHM files a daemon held

    def start(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                [*CLI, "run", "-c", str(self.cfg)], env=self.env, stdout=log, stderr=log
            )
        self.daemon_pid = proc.pid
        return proc

    def crash(
        self,
        kills: int,
        before: Callable[[], None],
        during: Callable[[], None],
        *,
        max_delay: float = 0.6,
    ) -> None:
        """``kills`` rounds with the faults on: ``before`` (a backlog for the start-up
        scan), start, ``during`` (work arriving while it runs), wait for a delivery of
        this run, a random moment, SIGKILL."""
        self.emu.set_faults(**FAULTS)
        for _ in range(kills):
            before_count = self.delivered()
            before()
            proc = self.start()
            time.sleep(0.3)
            during()
            # a run that delivers nothing in time (backing off) is killed all the same
            with contextlib.suppress(AssertionError):
                wait_for(
                    lambda before=before_count, proc=proc: (
                        self.delivered() != before or proc.poll() is not None
                    ),
                    timeout=60,
                    interval=0.05,  # each look is an HTTPS request to the emulator
                    message="the first delivery of this run",
                )
            time.sleep(self.rng.uniform(0.0, max_delay))  # deliberate: a random moment mid-flight
            self.deleted += deleted_wal(proc.pid)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                self.hits += 1
            proc.wait(10)

    def finish(self, done: Callable[[], bool], timeout: float = 120) -> None:
        """Faults off, one last run until ``done()``, then SIGTERM: it must exit 0."""
        self.emu.set_faults()
        proc = self.start()
        try:
            wait_for(
                lambda: catches_sigterm(proc.pid) and done(),
                timeout=timeout,
                interval=0.1,
                message="the last run to work the backlog off",
            )
            self.deleted += deleted_wal(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(30)
        assert rc == 0, f"the last run exited {rc}; see {self.log_path}"


class StatusPoller:
    """Runs ``itglue-ingest status`` every 0.3 s and watches the daemon's descriptors."""

    def __init__(self, loop: CrashLoop) -> None:
        self.loop = loop
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> StatusPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _poll(self) -> None:
        while not self._stop.wait(0.3):
            subprocess.run(
                [*CLI, "status", "-c", str(self.loop.cfg), "--json"],
                env=self.loop.env,
                capture_output=True,
                timeout=60,
                check=False,
            )
            self.runs += 1
            if self.loop.daemon_pid is not None:
                self.loop.deleted += deleted_wal(self.loop.daemon_pid)
