"""Every exit status of ``once`` (and ``retry``'s refusal), each from a real scenario:
a real drop folder, a real feed server, the emulator with a wrong key."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.commands.engine import once, retry
from pipeline.exit_codes import ONCE_CODES, ExitCode, exit_code_table
from pipeline.ledger import Ledger
from pipeline.testing import API_KEY_ENV
from tests.child_process import child_env
from tests.cli.toml_text import write
from tests.http_feed.http_feed_server import FeedServer, add_doc, run_feed_server
from tests.pipeline.pipeline_engine_helpers import store_documents
from tests.waiting import wait_for

DOCS = Path(__file__).resolve().parents[2] / "docs" / "admin.md"


def store_config(tmp_path: Path, source: dict[str, Any], **pipeline: Any) -> Path:
    """The engine tests' store sink (an SQLite file) behind one real source."""
    return write(
        tmp_path / "ingest.toml",
        {
            "state": {"dir": "state"},
            "plugins": {
                "block": ["plugins.imap"],
                "modules": ["tests.pipeline.pipeline_engine_plugin"],
            },
            "pipeline": {
                "transforms": [],
                "sink": "store",
                "retry_base": 0.02,
                "retry_max": 0.1,
                **pipeline,
            },
            "sinks.store": {"db": str(tmp_path / "store.db")},
            "sources": [source],
        },
    )


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[FeedServer]:
    with run_feed_server(tmp_path) as server:
        yield server


def feed_source(feed: FeedServer, **over: Any) -> dict[str, Any]:
    return {
        "name": "feed",
        "type": "http_feed",
        "url": feed.url("/feed/page"),
        "ca_bundle": str(feed.ca_file),
        "items_path": "items",
        "pagination": {"style": "page", "size_param": "per_page", "page_size": 2},
        "since_param": "since",
        "fields": {
            "id": "id",
            "name": "attributes.title",
            "file_url": "links.file",
            "updated_at": "updated_at",
        },
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "max_retries": 1,
        **over,
    }


def drop_source(path: Path) -> dict[str, Any]:
    return {"name": "drop", "type": "filesystem", "path": str(path), "stability_delay": 0}


def test_the_table_is_in_once_help_and_in_the_admin_guide() -> None:
    help_text = " ".join(CliRunner().invoke(once, ["--help"]).output.split())
    guide = " ".join(DOCS.read_text().split())
    for code in ONCE_CODES:
        assert f"{code.value} {code.meaning}" in help_text, code
        assert f"| {code.value} | {code.meaning} |" in guide, code
    assert len(exit_code_table().splitlines()) > len(ONCE_CODES)  # wrapped for a terminal


def test_0_every_file_delivered(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.pdf").write_bytes(b"%PDF a")
    result = CliRunner().invoke(once, ["-c", str(store_config(tmp_path, drop_source(drop)))])
    assert result.exit_code == ExitCode.OK, result.output
    assert len(store_documents(tmp_path / "store.db")) == 1


def test_2_configuration_error(tmp_path: Path) -> None:
    cfg = store_config(tmp_path, drop_source(tmp_path), workers=0)
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "pipeline.workers" in result.output


def test_3_a_missing_drop_folder(tmp_path: Path) -> None:
    """An unmounted share used to look like an empty folder: exit 0."""
    cfg = store_config(tmp_path, drop_source(tmp_path / "share" / "scans"))
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    assert result.exit_code == ExitCode.FAILED, result.output
    assert "source drop could not scan: drop folder" in result.output
    assert "is not available" in result.output


def test_4_items_deferred_to_the_next_poll(tmp_path: Path, feed: FeedServer) -> None:
    for i in (1, 2, 3):
        add_doc(feed, i)
    feed.state.fail_next("/files/doc-2.pdf", 503, times=100)
    cfg = store_config(tmp_path, feed_source(feed))
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    assert result.exit_code == ExitCode.WORK_LEFT, result.output
    assert "source feed left work for the next run: 1 item(s) could not be taken now" in (
        result.output
    )
    feed.state.faults.clear()
    result = CliRunner().invoke(once, ["-c", str(cfg)])  # the next run takes it
    assert result.exit_code == ExitCode.OK, result.output
    assert len(store_documents(tmp_path / "store.db")) == 3


def test_4_once_timeout_while_a_feed_stalls(tmp_path: Path, feed: FeedServer) -> None:
    add_doc(feed, 1)
    release = feed.state.hold["/feed/page"] = threading.Event()
    try:
        cfg = store_config(tmp_path, feed_source(feed), once_timeout=1.0)
        result = CliRunner().invoke(once, ["-c", str(cfg)])
    finally:
        release.set()
    assert result.exit_code == ExitCode.WORK_LEFT, result.output
    assert "once_timeout reached" in result.output
    assert "source feed left work for the next run: its scan did not finish" in result.output


def test_4_sigterm_during_a_scan(tmp_path: Path, feed: FeedServer) -> None:
    add_doc(feed, 1)
    release = feed.state.hold["/feed/page"] = threading.Event()
    cfg = store_config(tmp_path, feed_source(feed))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "once", "-c", str(cfg)],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(feed.state.held.is_set, timeout=30, message="the feed request")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.WORK_LEFT, out.decode()
    assert b"(interrupted)" in out


@pytest.fixture
def emulator() -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="the-right-key", tls=True, seed="demo") as emu:
        yield emu


def itglue_config(tmp_path: Path, emu: Any, drop: Path) -> Path:
    return write(
        tmp_path / "itglue.toml",
        {
            "itglue": {
                "instance": "exit5",
                "base_url": emu.base_url,
                "ca_bundle": str(emu.ca_file),
                "api_key_env": API_KEY_ENV,
            },
            "state": {"dir": "state"},
            "plugins": {"block": ["plugins.imap", "plugins.http_feed"]},
            "pipeline": {"once_timeout": 600},
            "sources": [{**drop_source(drop), "organization": "Acme Corp"}],
        },
    )


def test_5_a_wrong_key_stops_the_run_at_once(
    tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It used to wait once_timeout (10 min by default) and exit 4."""
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "scan.pdf").write_bytes(b"%PDF-1.4 a scan")
    cfg = itglue_config(tmp_path, emulator, drop)
    monkeypatch.setenv(API_KEY_ENV, "a-wrong-key")
    t0 = time.monotonic()
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    took = time.monotonic() - t0
    print(f"wrong key: exit {result.exit_code} after {took:.2f} s")
    assert result.exit_code == ExitCode.KEY_REFUSED, result.output
    assert took < 10  # the bound; once_timeout is 600 s
    assert "IT Glue refused the API key" in result.output
    assert "itglue-ingest health" in result.output
    print(result.output)
    assert not (drop / "failed").exists()  # nothing failed
    ledger = Ledger(tmp_path / "state" / "exit5.db")
    try:  # waiting for a retry, due at once on the next run
        assert {s for c in ledger.counts().values() for s in c} == {"received"}
        assert ledger.next_due_at() == 0.0
    finally:
        ledger.close()
    documents = len(emulator.records("documents"))

    monkeypatch.setenv(API_KEY_ENV, emulator.api_key)  # the admin fixes the key
    t0 = time.monotonic()
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    print(f"after the fix: exit {result.exit_code} after {time.monotonic() - t0:.2f} s")
    assert result.exit_code == ExitCode.OK, result.output
    assert result.output.startswith("1 delivered")
    assert len(emulator.records("documents")) == documents + 1


def test_retry_of_an_unknown_id_is_refused(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    cfg = store_config(tmp_path, drop_source(drop))
    assert CliRunner().invoke(once, ["-c", str(cfg)]).exit_code == ExitCode.OK
    result = CliRunner().invoke(retry, ["-c", str(cfg), "--id", "9999"])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "no record #9999" in result.output
