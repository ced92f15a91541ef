"""The state folder's disk fills up under a running daemon (issue 10, defects 2 and 3).

The state folder is a small tmpfs (mounted here: CI runs as root), filled to the brim by
a ballast file while records are in flight. The real CLI daemon (filesystem
source, mime/route/title, the IT Glue sink against the emulator) must then wait quietly
-- a few log lines a minute, next to no CPU -- set nothing aside, and deliver every file
exactly once by itself once the ballast is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from itglue_emulator import run_emulator
from pipeline.ledger import Ledger
from tests.waiting import wait_for

CLI = [sys.executable, "-c", "from pipeline.cli import main; main()"]
FILES = 24
FILE_SIZE = 120 * 1024  # 24 x 120 KiB: far more than the room the ballast leaves
WINDOW = 12.0  # seconds of storage trouble measured


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """``path`` as a fresh tmpfs of ``size`` for the duration."""
    if os.geteuid() != 0:
        pytest.fail("mounting the small tmpfs this test fills needs root (CI runs as root)")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """A ballast file that takes every free byte of ``folder``'s file system."""
    ballast = folder / "ballast"
    with ballast.open("wb", buffering=0) as f:
        with contextlib.suppress(OSError):  # ENOSPC: full
            while True:
                f.write(b"\0" * 65536)
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 512)
    return ballast


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.timeout(240)
def test_a_full_state_disk_pauses_quietly_and_recovers_by_itself(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    contents = {f"scan-{i:02}.txt": f"page {i}\n".encode() * (FILE_SIZE // 8) for i in range(FILES)}
    log_path = tmp_path / "daemon.log"
    with (
        run_emulator(api_key="full-key", seed="demo") as emu,
        # room for the 24 files three times over once the ballast is gone: the spool, and
        # their extracted text in the ledger and in the cache's search index
        tmpfs(tmp_path / "state", "24m") as state,
        log_path.open("ab") as log,
    ):
        cfg = tmp_path / "ingest.toml"
        cfg.write_text(
            f"""
[itglue]
instance = "full"
base_url = "{emu.base_url}"
api_key_env = "ITGLUE_FULL_KEY"
ca_bundle = "{emu.ca_file}"

[state]
dir = "state"
min_free_bytes = 0  # no watermark: the spool and the WAL fill the disk (the incident)

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
        env = {**os.environ, "ITGLUE_FULL_KEY": emu.api_key, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen([*CLI, "run", "-c", str(cfg)], env=env, stdout=log, stderr=log)
        try:
            wait_for(
                lambda: b"running:" in log_path.read_bytes(), 60, message="the daemon to start"
            )
            emu.set_faults(latency_ms=300)  # records are in flight when the disk fills
            for name, data in contents.items():
                (drop / name).write_bytes(data)
            spool = state / "spool"
            wait_for(
                lambda: len(list(spool.glob("??/*"))) >= 4, 60, message="records to be spooled"
            )
            ballast = fill(state)
            wait_for(
                lambda: b"storage trouble (" in log_path.read_bytes(), 60, message="storage trouble"
            )
            emu.set_faults()

            time.sleep(2.0)  # deliberate: the burst of the moment the disk filled is over
            lines_before = log_path.read_bytes().count(b"\n")
            cpu_before, t0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(WINDOW)  # deliberate: CPU and log lines are measured over it
            cpu = cpu_seconds(proc.pid) - cpu_before
            elapsed = time.monotonic() - t0
            lines = log_path.read_bytes().count(b"\n") - lines_before
            assert proc.poll() is None, log_path.read_text()
            assert list((drop / "failed").glob("*")) == [], "a file was set aside for a full disk"

            ballast.unlink()
            freed = time.monotonic()

            def delivered() -> int:
                return len(emu.state()["records"]["attachments"])

            wait_for(lambda: delivered() >= FILES, 120, message="every file to be delivered")
            recovery = time.monotonic() - freed
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = log_path.read_text()
        print(
            f"storage trouble: {lines} log line(s) in {elapsed:.1f} s"
            f" ({lines * 60 / elapsed:.1f}/min), CPU {cpu:.2f} s ({100 * cpu / elapsed:.1f}%"
            f" of a core), all delivered {recovery:.1f} s after space was freed"
        )
        assert lines <= 3, text  # "a few lines a minute", not megabytes of tracebacks
        assert cpu < 0.1 * elapsed, f"{cpu:.2f} s of CPU in {elapsed:.1f} s while waiting"
        assert "storage usable again" in text
        records = emu.state()["records"]
        names = Counter(a["file-name"] for a in records["attachments"])
        assert names == Counter(list(contents)), "a file was lost or uploaded twice"
        assert list((drop / "failed").glob("*")) == []
        ledger = Ledger(state / "full.db")
        try:
            assert ledger.counts() == {"drop": {"done": FILES}}
        finally:
            ledger.close()


def test_a_ledger_write_on_a_full_disk_raises_the_real_error_and_recovers(
    tmp_path: Path,
) -> None:
    """SQLite rolls a transaction back itself when the disk fills under it (here while a
    transaction larger than its page cache spills): the ledger must say "database or
    disk is full", not "cannot rollback - no transaction is active", and work again
    once there is room."""
    with tmpfs(tmp_path / "state", "8m") as state:
        ledger = Ledger(state / "x.db")
        try:
            ballast = fill(state)

            def checkpoints() -> None:  # 3 MB in one transaction: more than SQLite caches
                with ledger.transaction() as c:
                    for i in range(50):
                        c.execute(
                            "INSERT OR REPLACE INTO ledger_checkpoints VALUES ('s', ?, ?, 0)",
                            (f"k{i}", "x" * 60_000),
                        )

            with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
                checkpoints()
            ballast.unlink()
            checkpoints()
            assert ledger.get_checkpoint("s", "k49") == "x" * 60_000
        finally:
            ledger.close()
