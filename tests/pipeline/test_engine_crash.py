"""Crash safety: the engine process is SIGKILLed at random moments and restarted; at the
end every record was delivered exactly once and none was lost.

Two external systems: a journaled SQLite store (test sink; fast, so the kills land in
every phase: emit, transform, delivery steps, ack) and the IT Glue emulator through the
real ``itglue`` sink, also with the emulator's commit-then-drop fault on.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline.ledger import Ledger
from tests.child_process import child_env, python_module
from tests.pipeline.pipeline_engine_helpers import store_attachments, store_documents
from tests.waiting import wait_for

RECORDS = 100
KILLS = 10


def start(settings_file: Path, kind: str, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    try:
        return subprocess.Popen(
            python_module("tests.pipeline.pipeline_crash_runner", settings_file, kind),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(PYTHONUNBUFFERED="1"),
        )
    finally:
        out.close()


def crash_loop(
    settings: dict[str, Any],
    tmp_path: Path,
    kind: str,
    *,
    kills: int,
    window: tuple[float, float],
    progress: Any,
) -> tuple[int, int]:
    """SIGKILL a run ``kills`` times at random moments (each after progress was made),
    then let one run finish. Returns (kills that hit a live process, final exit code)."""
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(settings))
    log = tmp_path / "runs.log"
    rng = random.Random(os.getpid())
    hit = 0
    for k in range(kills):
        before = progress()
        proc = start(settings_file, kind, log)
        try:
            hit += kill_at_random(proc, k, before, progress, window, rng)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
    final = start(settings_file, kind, log)
    try:
        code = final.wait(60)
    finally:
        if final.poll() is None:
            final.kill()
            final.wait()
    return hit, code


def kill_at_random(
    proc: subprocess.Popen[bytes],
    k: int,
    before: int,
    progress: Any,
    window: tuple[float, float],
    rng: random.Random,
) -> int:
    """SIGKILL ``proc`` at a random moment; 1 when it was still running."""
    if k % 3 == 2:
        # early: during start-up, recovery, the scan and the first emits
        time.sleep(rng.uniform(0.2, 1.2))  # deliberate: a random moment to kill
    else:
        # wait until this run delivered something (a run that does not within 20 s is
        # killed all the same), then kill it mid-flight
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda: progress() != before or proc.poll() is not None,
                timeout=20,
                interval=0.01,
                message="this run's first delivery",
            )
        time.sleep(rng.uniform(*window))  # deliberate: a random moment to kill
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        return 1
    return 0


def ledger_counts(state_dir: Path, instance: str) -> dict[str, dict[str, int]]:
    lg = Ledger(state_dir / f"{instance}.db")
    try:
        return lg.counts()
    finally:
        lg.close()


@pytest.mark.slow
@pytest.mark.timeout(360)  # many restarts: the 120 s hang guard is too tight
def test_sigkill_store_sink_exactly_once(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    contents = {f"doc{i:03}.txt": f"document {i} ".encode() * (i + 1) for i in range(RECORDS)}
    for name, data in contents.items():
        (inbox / name).write_bytes(data)
    db = tmp_path / "store.db"
    settings = {
        "state": {"dir": str(tmp_path / "state")},
        "pipeline": {
            "transforms": ["org"],
            "sink": "store",
            "workers": 2,
            "retry_base": 0.05,
            "retry_max": 0.5,
            "once_timeout": 50,
        },
        "sinks": {"store": {"db": str(db), "step_delay": 0.05}},
        "sources": [{"name": "inbox", "type": "dir", "path": str(inbox)}],
    }

    def progress() -> int:
        try:
            return len(store_documents(db)) + len(store_attachments(db))
        except sqlite3.Error:  # not created yet
            return 0

    hit, code = crash_loop(
        settings, tmp_path, "store", kills=KILLS, window=(0.0, 0.25), progress=progress
    )
    log = (tmp_path / "runs.log").read_text()
    assert code == 0, log[-3000:]
    assert hit >= KILLS, f"only {hit} kills hit a running engine"
    # the kills really cut deliveries: some restarts resumed records mid-delivery
    resumed = re.findall(r"resuming unfinished records: (.*)", log)
    assert any("delivering" in r for r in resumed), resumed
    docs = store_documents(db)
    refs = [d[3] for d in docs]
    assert sorted(refs) == sorted(contents), "lost or duplicated documents"
    atts = store_attachments(db)
    by_doc = {d[0]: d[3] for d in docs}
    assert sorted(by_doc[a[1]] for a in atts) == sorted(contents)  # one attachment each
    assert all(a[3] == contents[a[2]] for a in atts)  # byte-identical
    assert ledger_counts(tmp_path / "state", "default") == {"inbox": {"done": RECORDS}}
    assert sorted(p.name for p in (inbox / ".done").iterdir()) == sorted(contents)
    spool = tmp_path / "state" / "spool"
    assert [p for p in spool.rglob("*") if p.is_file()] == []


@pytest.mark.slow
@pytest.mark.timeout(360)  # many restarts: the 120 s hang guard is too tight
@pytest.mark.parametrize("drop", [False, True], ids=["plain", "commit-then-drop"])
def test_sigkill_itglue_sink_against_the_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drop: bool
) -> None:
    from itglue_emulator import run_emulator

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    contents = {f"doc{i:03}.txt": f"record {i}\n".encode() * (i + 3) for i in range(RECORDS)}
    for name, data in contents.items():
        (inbox / name).write_bytes(data)
    with run_emulator(api_key="crash-key", seed="demo") as emu:
        # latency widens the windows between a request and its journal entry
        faults: dict[str, Any] = {"latency_ms": 15, "jitter_ms": 10}
        if drop:
            faults.update(drop_rate=0.15, methods=["POST", "PATCH"])
        emu.set_faults(**faults)
        monkeypatch.setenv("ITGLUE_CRASH_KEY", emu.api_key)
        settings = {
            "itglue": {
                "instance": "crash",
                "base_url": emu.base_url,
                "api_key_env": "ITGLUE_CRASH_KEY",
                "ca_bundle": str(emu.ca_file),
            },
            "state": {"dir": str(tmp_path / "state")},
            "pipeline": {
                "workers": 2,
                "retry_base": 0.05,
                "retry_max": 0.5,
                "once_timeout": 50,
            },
            "sources": [
                {"name": "inbox", "type": "dir", "path": str(inbox), "organization": "Acme Corp"}
            ],
        }

        def progress() -> int:
            records = emu.state()["records"]
            return len(records["documents"]) + len(records["attachments"])

        hit, code = crash_loop(
            settings, tmp_path, "builtin", kills=KILLS, window=(0.0, 0.3), progress=progress
        )
        log = (tmp_path / "runs.log").read_text()
        assert code == 0, log[-3000:]
        assert hit >= KILLS, f"only {hit} kills hit a running engine"
        assert any("delivering" in r for r in re.findall(r"resuming unfinished records: (.*)", log))
        emu.set_faults()
        state = emu.state()
        docs = state["records"]["documents"]
        atts = state["records"]["attachments"]
        assert len(docs) == RECORDS, "lost or duplicated documents"
        assert all(str(d["organization-id"]) == "1000001" for d in docs)
        assert sorted(a["file-name"] for a in atts) == sorted(contents)  # each file once
        assert sorted(str(a["resource-id"]) for a in atts) == sorted(str(d["id"]) for d in docs)
        for a in atts:
            assert emu.attachment_content(a["id"]) == contents[a["file-name"]]
        if drop:
            dropped = sum(r["count"] for r in state["requests"] if r["dropped"])
            assert dropped > 0  # the fault really fired (and was reconciled)
    assert ledger_counts(tmp_path / "state", "crash") == {"inbox": {"done": RECORDS}}
    assert sorted(p.name for p in (inbox / ".done").iterdir()) == sorted(contents)
