"""``itglue-ingest once|run|status|retry|plugins`` (the engine's commands)."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.commands.engine import COMMANDS, once, plugins, retry, status
from tests.child_process import child_env
from tests.pipeline.pipeline_engine_helpers import DirSource, store_documents
from tests.waiting import wait_for


@pytest.fixture(autouse=True)
def _reset_calls() -> Iterator[None]:
    DirSource.calls.clear()
    yield
    DirSource.calls.clear()


def config(tmp_path: Path, extra: str = "") -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    cfg = tmp_path / "ingest.toml"
    cfg.write_text(
        f"""
[state]
dir = "state"

[plugins]
block = ["plugins.imap", "plugins.http_feed"]
modules = ["tests.pipeline.pipeline_engine_plugin"]

[pipeline]
transforms = ["org", "picky"]
sink = "store"
retry_base = 0.02
retry_max = 0.1
{extra}

[sinks.store]
db = "{tmp_path / "store.db"}"

[[sources]]
name = "inbox"
type = "dir"
path = "inbox"
"""
    )
    return cfg


def test_commands_are_exported() -> None:
    assert [c.name for c in COMMANDS] == ["run", "once", "status", "retry", "plugins"]


def test_once_status_retry(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    for name in ("a.txt", "b.txt", "permanent.txt"):
        (tmp_path / "inbox" / name).write_text(name)
    runner = CliRunner()
    result = runner.invoke(once, ["-c", str(cfg)])
    assert result.exit_code == 3, result.output
    assert "2 delivered, 0 duplicate, 1 failed, 0 pending" in result.output
    assert "permanent.txt: the store refuses this one (422)" in result.output

    result = runner.invoke(status, ["-c", str(cfg)])
    assert result.exit_code == 3, result.output  # a failed record is in the ledger
    assert "daemon: not running (it never ran on this state folder)" in result.output
    lines = result.output.splitlines()
    assert any(line.split() == ["inbox", "2", "1"] for line in lines), result.output
    assert "failed" in result.output and "the store refuses this one (422)" in result.output

    result = runner.invoke(status, ["-c", str(cfg), "--json"])
    assert result.exit_code == 3
    data = json.loads(result.output)
    assert data["daemon"] == {"state": "never_ran"}
    assert data["sources"] == {"inbox": {"done": 2, "failed": 1}}
    assert data["failed"][0]["reason"] == "the store refuses this one (422)"
    assert data["failed"][0]["source_ref"] == "permanent.txt"

    assert runner.invoke(retry, ["-c", str(cfg)]).exit_code == 2  # say which
    result = runner.invoke(retry, ["-c", str(cfg), "--all-failed"])
    assert result.exit_code == 0 and "requeued 1 record(s)" in result.output
    result = runner.invoke(status, ["-c", str(cfg), "--json"])
    assert result.exit_code == 0  # nothing failed (any more)
    assert json.loads(result.output)["sources"] == {"inbox": {"done": 2, "received": 1}}

    result = runner.invoke(once, ["-c", str(cfg), "--json"])
    assert result.exit_code == 3  # still refused by the store
    summary = json.loads(result.output)
    assert (summary["delivered"], summary["failed"], summary["pending"]) == (0, 1, 0)
    assert len(store_documents(tmp_path / "store.db")) == 2


def test_once_exit_0_and_idempotent(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (tmp_path / "inbox" / "a.txt").write_text("a")
    runner = CliRunner()
    result = runner.invoke(once, ["-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 delivered")
    result = runner.invoke(once, ["-c", str(cfg)])
    assert result.exit_code == 0 and result.output.startswith("0 delivered")


def test_once_exit_4_when_records_are_left_pending(tmp_path: Path) -> None:
    cfg = config(tmp_path, "once_timeout = 0.5\n")
    cfg.write_text(cfg.read_text().replace('db = "', 'transient_failures = 1000\ndb = "'))
    (tmp_path / "inbox" / "a.txt").write_text("a")
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    assert result.exit_code == 4, result.output
    assert "1 pending" in result.output and "once_timeout reached" in result.output


def _slow_backlog(tmp_path: Path, pipeline: str, files: int, *extra_files: str) -> Path:
    """``files`` records that take 0.15 s each to deliver, one at a time."""
    cfg = config(tmp_path, "workers = 1\n" + pipeline)
    cfg.write_text(cfg.read_text().replace('db = "', 'step_delay = 0.15\ndb = "'))
    for name in [f"doc{i:02d}.txt" for i in range(files)] + list(extra_files):
        (tmp_path / "inbox" / name).write_text(name)
    return cfg


def test_once_works_off_a_backlog_longer_than_once_timeout(tmp_path: Path) -> None:
    """Issue 16: once_timeout is how long records that keep failing are waited for, not
    a deadline for the run: a backlog taking longer (here 4.5 s against 1.5) is worked
    off by one run."""
    cfg = _slow_backlog(tmp_path, "once_timeout = 1.5\n", 30)
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("30 delivered, 0 duplicate, 0 failed, 0 pending")


def test_once_ends_at_the_retry_deadline_of_a_record_failing_forever(tmp_path: Path) -> None:
    """The backlog is worked off; then only the record failing transiently forever is
    left, and once_timeout later the run ends with exit 4 (it resumes next time)."""
    cfg = _slow_backlog(tmp_path, "once_timeout = 1.5\n", 30, "flaky.txt")
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    assert result.exit_code == 4, result.output
    assert result.output.startswith("30 delivered, 0 duplicate, 0 failed, 1 pending")
    assert "once_timeout reached" in result.output


def test_once_max_duration_cuts_the_run_with_exit_5(tmp_path: Path) -> None:
    cfg = _slow_backlog(tmp_path, "once_timeout = 60\nonce_max_duration = 1.0\n", 30)
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    assert result.exit_code == 6, result.output
    assert "once_max_duration reached" in result.output
    delivered = len(store_documents(tmp_path / "store.db"))
    assert 0 < delivered < 30
    cfg.write_text(cfg.read_text().replace("once_max_duration = 1.0\n", ""))
    result = CliRunner().invoke(once, ["-c", str(cfg)])  # unset: the rest goes on
    assert result.exit_code == 0, result.output
    assert len(store_documents(tmp_path / "store.db")) == 30


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("workers = 0", "pipeline.workers: Input should be greater than or equal to 1"),
        ("transforms = ['org', 'nope']", "pipeline.transforms[1]: unknown transform 'nope'"),
    ],
)
def test_configuration_errors_exit_2_without_traceback(
    tmp_path: Path, extra: str, message: str
) -> None:
    cfg = config(tmp_path)
    cfg.write_text(cfg.read_text().replace('transforms = ["org", "picky"]', extra))
    for command in (once, status):
        result = CliRunner().invoke(command, ["-c", str(cfg)])
        if command is status and "unknown transform" in message:
            assert result.exit_code == 0  # status reads the ledger only
            continue
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert "Traceback" not in result.output


def test_source_option_errors_name_the_key(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.write_text(cfg.read_text() + 'colour = "blue"\n')
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    assert result.exit_code == 2
    assert "sources[0].colour: Extra inputs are not permitted" in result.output


def test_plugins_lists_hooks_and_distribution(tmp_path: Path) -> None:
    result = CliRunner().invoke(plugins, ["--json", "-c", str(config(tmp_path))])
    assert result.exit_code == 0, result.output
    described = {p["name"]: p for p in json.loads(result.output)}
    assert "plugins.imap" not in described  # blocked
    assert described["plugins.mime"]["hooks"] == ["ingest_register_transforms"]
    assert described["plugins.mime"]["distribution"] == "itglue-ingest (built-in)"
    assert described["tests.pipeline.pipeline_engine_plugin"]["hooks"] == [
        "ingest_register_sinks",
        "ingest_register_sources",
        "ingest_register_transforms",
    ]
    text = CliRunner().invoke(plugins, ["-c", str(config(tmp_path))])
    # the built-in router's ingest_route is registered per engine, by the route transform
    assert "plugins.routing  [itglue-ingest (built-in)]\n  ingest_register_transforms\n" in (
        text.output
    )


def test_daemon_stops_on_sigterm_within_10_s(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.write_text(cfg.read_text().replace('db = "', 'step_delay = 0.2\ndb = "'))
    for i in range(20):
        (tmp_path / "inbox" / f"f{i:02}.txt").write_text(str(i))
    code = "from pipeline.commands.engine import run; run()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "-c", str(cfg)],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def delivering() -> bool:
            with contextlib.suppress(sqlite3.Error):  # the store is not created yet
                return bool(store_documents(tmp_path / "store.db"))
            return False

        wait_for(delivering, timeout=30, message="the first delivery")
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        out, _ = proc.communicate(timeout=15)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out.decode()
    assert took < 10
    assert b"SIGTERM: stopping" in out
    # the rest is delivered by the next run, each record once
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    assert result.exit_code == 0, result.output
    refs = sorted(d[3] for d in store_documents(tmp_path / "store.db"))
    assert refs == [f"f{i:02}.txt" for i in range(20)]
