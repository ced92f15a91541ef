"""``itglue-ingest run`` in a child process: its endpoint answers, and ``status`` reads
its heartbeat -- running (exit 0), a source it cannot reach (exit 3), killed (stale
heartbeat, exit 7); stopped cleanly (exit 0) with the daemon in this process. (``status``
runs in this process too: a child Python takes seconds to start on a busy machine.)"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from pipeline.commands.engine import status as status_command
from tests.child_process import child_env
from tests.observability.obs_helpers import running_daemon
from tests.waiting import wait_for

CLI = [sys.executable, "-c", "from pipeline.cli import main; main()"]
KEY_ENV = "ITGLUE_DAEMON_KEY"
T = TypeVar("T")


@pytest.fixture
def emu() -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="daemon-key", seed="demo") as e:
        yield e


def write_config(tmp_path: Path, emu: Any, state: dict[str, str]) -> Path:
    cfg = tmp_path / "config.toml"
    state_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in state.items())
    cfg.write_text(
        f"""
[itglue]
instance = "daemon"
base_url = "{emu.base_url}"
api_key_env = "{KEY_ENV}"
ca_bundle = "{emu.ca_file}"

[state]
{state_lines}

[observability]
listen = "127.0.0.1:0"
heartbeat_interval = 0.3
probe_interval = 0.5

[[sources]]
name = "drop"
type = "filesystem"
path = "drop"
organization = "Acme Corp"
stability_delay = 0
missing_retry_interval = 0.2
"""
    )
    (tmp_path / "drop").mkdir()
    return cfg


class Daemon:
    def __init__(self, cfg: Path, log: Path, env: dict[str, str]) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*CLI, "run", "-c", str(cfg)], env=env, stdout=out, stderr=out
            )

    def url(self) -> str:
        def found() -> str | None:
            assert self.proc.poll() is None, self.log.read_text()
            m = re.search(r"metrics and health on (http://\S+)", self.log.read_text())
            return m.group(1) if m else None

        return wait_for(found, timeout=30, message="the endpoint's address in the log")


def until(call: Callable[[], T], ok: Callable[[T], bool], message: str = "condition") -> T:
    """``call()`` again until ``ok`` says yes about its value; that value."""
    return wait_for(lambda: (lambda v: (v,) if ok(v) else None)(call()), message=message)[0]


def status(cfg: Path) -> tuple[int, str]:
    result = CliRunner().invoke(status_command, ["-c", str(cfg)])
    return result.exit_code, result.output


def test_status_reads_the_daemons_heartbeat(
    emu: Any, tmp_path: Path, state_table: dict[str, str]
) -> None:
    cfg = write_config(tmp_path, emu, state_table)
    env = child_env(**{KEY_ENV: emu.api_key})
    drop = tmp_path / "drop"
    daemon = Daemon(cfg, tmp_path / "daemon.log", env)
    try:
        url = daemon.url()
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        wait_for(lambda: requests.get(f"{url}/readyz", timeout=5).status_code == 200)
        (drop / "a.txt").write_text("hello")
        text = wait_for(
            lambda: (
                lambda t: (
                    t if 'itglue_ingest_records_delivered_total{source="drop"} 1.0' in t else None
                )
            )(requests.get(f"{url}/metrics", timeout=5).text),
            message="the delivery in /metrics",
        )
        names = {f.name for f in text_string_to_metric_families(text)}
        assert {"itglue_ingest_records_delivered", "process_start_time_seconds"} <= names
        assert 'itglue_ingest_source_owned{source="drop"} 1.0' in text  # the only collector

        code, out = wait_for(
            lambda: (lambda r: r if "drop: connected" in r[1] else None)(status(cfg))
        )
        assert code == 0, out
        assert re.search(rf"daemon: running since \S+ \(pid {daemon.proc.pid} on ", out), out
        if state_table.get("backend") == "postgresql":  # a shared state: who owns the source
            assert re.search(r"\n  drop: \S+, lease until \S+ \(in \d+ s\), generation 1\n", out), (
                out
            )

        drop.rename(tmp_path / "unmounted")
        code, out = until(lambda: status(cfg), lambda r: r[0] == 3, "status to exit 3")
        assert "drop: NOT CONNECTED" in out and "is not available" in out, out
        (tmp_path / "unmounted").rename(drop)
        wait_for(lambda: status(cfg)[0] == 0, message="status to exit 0 again")

        daemon.proc.kill()
        daemon.proc.wait(30)
        code, out = until(lambda: status(cfg), lambda r: r[0] == 7, "a stale heartbeat")
        assert "daemon: STALE HEARTBEAT: last beat at" in out, out
        assert "sources (as the daemon last saw them):" in out

    finally:
        if daemon.proc.poll() is None:
            os.kill(daemon.proc.pid, signal.SIGKILL)
            daemon.proc.wait(30)


def test_status_after_a_clean_stop(
    emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_table: dict[str, str]
) -> None:
    from pipeline.settings import load_settings

    cfg = write_config(tmp_path, emu, state_table)
    monkeypatch.setenv(KEY_ENV, emu.api_key)
    with running_daemon(load_settings(cfg)):
        code, out = wait_for(
            lambda: (lambda r: r if "drop: connected" in r[1] else None)(status(cfg))
        )
        assert code == 0 and "daemon: running since" in out, out
    code, out = status(cfg)
    assert code == 0, out
    assert "daemon: not running (stopped at " in out, out
    assert "sources (as the daemon last saw them):" in out
