"""The worker pool: a job over its budget costs its worker (killed, replaced) but not the
next job; a worker whose engine is SIGKILLed mid-job does not live on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from pipeline import ExtractLimits
from plugins.extract.pool import ExtractionPool
from plugins.extract.text import extract_text
from tests.child_process import child_env, python_module
from tests.extract.extract_plugins import extract_description
from tests.waiting import wait_for


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_a_job_over_budget_loses_its_worker_and_the_next_job_runs(tmp_path: Path) -> None:
    looping = tmp_path / "loop.json"
    looping.write_text(json.dumps({"hostile": "loop"}))
    text = tmp_path / "a.txt"
    text.write_text("after the loop\n")
    pool = ExtractionPool(workers=1, timeout=2, memory_limit=512 * 1024 * 1024)
    try:
        outcome = pool.run(extract_description, looping, ExtractLimits())
        assert (outcome.status, outcome.reason) == ("timeout", "it took longer than 2 s")
        assert pool.replaced == 1 and pool.pids() == []  # killed, not left running
        after = pool.run(extract_text, text, ExtractLimits())
        assert after.status == "ok" and after.result is not None
        assert after.result.text == "after the loop"
    finally:
        pool.close()
    assert pool.pids() == []


def test_a_worker_ends_when_its_engine_is_killed_mid_job(tmp_path: Path) -> None:
    looping = tmp_path / "loop.json"
    started = tmp_path / "started"
    looping.write_text(json.dumps({"hostile": "loop", "started": str(started)}))
    engine = subprocess.Popen(
        python_module("tests.extract.pool_child", looping),
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert engine.stdout is not None
    with engine.stdout:
        worker = int(engine.stdout.readline())
    wait_for(started.exists, timeout=120, message="the job to start in the worker")
    assert alive(worker)
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait(10)
    wait_for(lambda: not alive(worker), timeout=30, message="the orphaned worker to exit")
