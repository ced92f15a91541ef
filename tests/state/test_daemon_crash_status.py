"""The daemon is SIGKILLed 20 times while ``status`` is polled every 0.3 s (issue 10).

Before SQLite's locks were respected, every ``status`` run could delete the live
engine's ``-wal`` and ``-shm`` files; killed runs then lost committed ledger states and
uploaded files twice. Here the real CLI (``run`` and ``status``) works against the
emulator with lost answers (commit-then-drop) and 5xx on; at the end every file landed
exactly once, byte-identical, and no process ever held a deleted ``-wal``.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from itglue_emulator import run_emulator
from pipeline.ledger import Ledger
from tests.waiting import wait_for

KILLS = 20
PER_ROUND = 6  # files dropped in each round: half before the daemon starts, half while it runs
FILES = KILLS * PER_ROUND
CLI = [sys.executable, "-c", "from pipeline.cli import main; main()"]


def deleted_wal(pid: int) -> list[str]:
    found = []
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


class StatusPoller:
    """Runs ``itglue-ingest status`` every 0.3 s and watches the daemon's descriptors."""

    def __init__(self, cfg: Path, env: dict[str, str]) -> None:
        self.cfg, self.env = cfg, env
        self.runs = 0
        self.daemon_pid: int | None = None
        self.deleted: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> StatusPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.wait(0.3):
            subprocess.run(
                [*CLI, "status", "-c", str(self.cfg), "--json"],
                env=self.env,
                capture_output=True,
                timeout=60,
                check=False,
            )
            self.runs += 1
            if self.daemon_pid is not None:
                self.deleted += deleted_wal(self.daemon_pid)


@pytest.fixture
def emulator() -> Iterator[Any]:
    with run_emulator(api_key="crash-key", seed="demo") as emu:
        yield emu


def write_config(tmp_path: Path, emu: Any) -> Path:
    cfg = tmp_path / "ingest.toml"
    cfg.write_text(
        f"""
[itglue]
instance = "crash"
base_url = "{emu.base_url}"
api_key_env = "ITGLUE_CRASH_KEY"
ca_bundle = "{emu.ca_file}"

[state]
dir = "state"

[pipeline]
workers = 2
retry_base = 0.05
retry_max = 0.5

[[sources]]
name = "drop"
type = "filesystem"
path = "drop"
organization = "Acme Corp"
stability_delay = 0.1
"""
    )
    return cfg


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_status_polled_during_20_sigkills_of_the_daemon(tmp_path: Path, emulator: Any) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    contents = {f"scan-{i:03}.txt": f"page {i}\n".encode() * (i + 2) for i in range(FILES)}
    pending = list(contents)

    def drop_files(n: int) -> None:
        for name in pending[:n]:
            (drop / name).write_bytes(contents[name])
        del pending[:n]

    cfg = write_config(tmp_path, emulator)
    env = {**os.environ, "ITGLUE_CRASH_KEY": emulator.api_key, "PYTHONUNBUFFERED": "1"}
    # lost answers on creates and uploads, 5xx on everything, latency to widen windows
    emulator.set_faults(
        drop_rate=0.1, error_rate=0.05, latency_ms=10, jitter_ms=10, methods=["POST", "PATCH"]
    )
    rng = random.Random(20)
    log = (tmp_path / "daemon.log").open("ab")

    def delivered() -> int:
        return len(emulator.state()["records"]["attachments"])

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([*CLI, "run", "-c", str(cfg)], env=env, stdout=log, stderr=log)

    hits = 0
    with StatusPoller(cfg, env) as poller:
        for _ in range(KILLS):
            before = delivered()
            drop_files(PER_ROUND // 2)  # a backlog for the start-up scan
            proc = start()
            poller.daemon_pid = proc.pid
            time.sleep(0.3)  # deliberate: the daemon starts before the rest arrive
            drop_files(PER_ROUND - PER_ROUND // 2)  # and files the watcher sees arrive
            # a run that delivers nothing within 30 s (backing off) is killed all the same
            with contextlib.suppress(AssertionError):
                wait_for(
                    lambda before=before, proc=proc: (
                        delivered() != before or proc.poll() is not None
                    ),
                    timeout=30,
                    message="the first delivery of this run",
                )
            time.sleep(rng.uniform(0.0, 0.6))  # deliberate: a random moment mid-flight
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                hits += 1
            proc.wait(10)
        emulator.set_faults()
        starts = (tmp_path / "daemon.log").read_text(errors="replace").count(" running: ")
        proc = start()
        poller.daemon_pid = proc.pid

        def backlog_worked_off() -> bool:
            # this run logged "running:": its SIGTERM handler is in place (the SIGTERM below
            # must not find it still starting, when earlier runs left nothing to do)
            started = (tmp_path / "daemon.log").read_text(errors="replace").count(" running: ")
            # done = moved to processed/ (the post-action follows delivery); waiting files
            # may sit in the collector's claim folder, so their absence says nothing
            moved = len(list((drop / "processed").rglob("*.txt")))
            return started > starts and moved == FILES

        wait_for(
            backlog_worked_off,
            timeout=120,
            interval=0.1,
            message="the last run to work the backlog off",
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    log.close()
    assert hits == KILLS, f"only {hits} kills hit a running daemon"
    assert poller.runs >= 20, "status was not polled during the run"
    assert poller.deleted == [], "a daemon held a deleted WAL"
    state = emulator.state()["records"]
    names = Counter(a["file-name"] for a in state["attachments"])
    assert set(names) == set(contents), "a file was lost"
    assert [n for n, c in names.items() if c > 1] == [], "a file was uploaded twice"
    assert len(state["documents"]) == FILES
    for a in state["attachments"]:
        assert emulator.attachment_content(a["id"]) == contents[a["file-name"]]
    ledger = Ledger(tmp_path / "state" / "crash.db")
    try:
        assert ledger.counts() == {"drop": {"done": FILES}}
    finally:
        ledger.close()
