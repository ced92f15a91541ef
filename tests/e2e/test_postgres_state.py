"""End to end on the PostgreSQL state backend: the real ``once`` against the emulator
delivers every file exactly once, and two collectors (two ``once`` processes with their
own state folders, drop folders and source names) sharing one PostgreSQL ledger upload
the same 200 files once between them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from core_client.postgres import PostgresDatabase
from pipeline.commands.engine import once
from pipeline.exit_codes import ExitCode
from pipeline.ledger import Ledger
from pipeline.testing import API_KEY_ENV
from pipeline.testing.postgres import PostgresServer
from tests.child_process import child_env
from tests.cli.toml_text import write

CLI = [sys.executable, "-c", "from pipeline.cli import main; main()"]


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="pg-key", tls=True, seed="demo") as e:
        monkeypatch.setenv(API_KEY_ENV, e.api_key)
        yield e


def collector_config(tmp_path: Path, emu: Any, dsn: str, name: str, drop: Path) -> Path:
    return write(
        tmp_path / f"{name}.toml",
        {
            "itglue": {
                "instance": "shared",
                "base_url": emu.base_url,
                "ca_bundle": str(emu.ca_file),
                "api_key_env": API_KEY_ENV,
            },
            "state": {
                "dir": str(tmp_path / f"state-{name}"),
                "backend": "postgresql",
                "dsn": dsn,
                "collector": name,
            },
            "plugins": {"block": ["plugins.imap", "plugins.http_feed"]},
            "pipeline": {"workers": 4, "retry_base": 0.05, "retry_max": 0.5, "once_timeout": 60},
            "sources": [
                {
                    "name": f"drop-{name}",  # source names are global: each site its own
                    "type": "filesystem",
                    "path": str(drop),
                    "organization": "Acme Corp",
                    "stability_delay": 0,
                }
            ],
        },
    )


def fill(drop: Path, count: int, prefix: str = "note") -> None:
    drop.mkdir(exist_ok=True)
    for i in range(count):
        (drop / f"{prefix}-{i:03d}.txt").write_text(f"Site report {i}\n" + "line\n" * (i % 7))


def documents(emu: Any) -> list[dict[str, Any]]:
    return list(emu.state()["records"]["documents"])


def ledger_counts(dsn: str) -> dict[str, dict[str, dict[str, int]]]:
    ledger = Ledger(PostgresDatabase(dsn, component="ledger"))
    try:
        return ledger.counts_by_collector()
    finally:
        ledger.close()


def test_once_on_postgresql_delivers_every_file_exactly_once(
    tmp_path: Path, emu: Any, postgres_server: PostgresServer
) -> None:
    dsn = postgres_server.create_database()
    drop = tmp_path / "drop"
    fill(drop, 12)
    cfg = collector_config(tmp_path, emu, dsn, "site-a", drop)
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    assert result.exit_code == ExitCode.OK, result.output
    assert result.output.startswith("12 delivered, 0 duplicate, 0 failed"), result.output
    assert sorted(d["name"] for d in documents(emu)) == [f"note-{i:03d}" for i in range(12)]
    # the same content again under other names: duplicates from the shared ledger
    fill(drop, 12, prefix="copy")
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    assert result.output.startswith("0 delivered, 12 duplicate, 0 failed"), result.output
    assert len(documents(emu)) == 12
    assert ledger_counts(dsn) == {"site-a": {"drop-site-a": {"done": 12, "duplicate": 12}}}
    # the ledger is in PostgreSQL: the local state folder holds no ledger table
    local = tmp_path / "state-site-a" / "shared.db"
    if local.exists():  # the metadata cache's file
        with closing(sqlite3.connect(local)) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert not {t for t in tables if t.startswith("ledger_")}, tables


@pytest.mark.timeout(300)
def test_the_same_200_files_dropped_at_two_collectors_make_200_documents(
    tmp_path: Path, emu: Any, postgres_server: PostgresServer
) -> None:
    dsn = postgres_server.create_database()
    procs = []
    for name in ("site-a", "site-b"):
        drop = tmp_path / f"drop-{name}"
        fill(drop, 200)  # the same 200 files at both sites
        cfg = collector_config(tmp_path, emu, dsn, name, drop)
        procs.append(
            subprocess.Popen(
                [*CLI, "once", "-c", str(cfg), "--json"],
                env=child_env(**{API_KEY_ENV: emu.api_key}),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=280) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == ExitCode.OK, err[-3000:]
    assert len(documents(emu)) == 200
    assert sorted({d["name"] for d in documents(emu)}) == [f"note-{i:03d}" for i in range(200)]
    counts = ledger_counts(dsn)
    assert set(counts) == {"site-a", "site-b"}
    total = {
        state: sum(
            n for per in counts.values() for s in per.values() for k, n in s.items() if k == state
        )
        for state in ("done", "duplicate", "failed", "received", "ready", "delivering")
    }
    assert total == {
        "done": 200,
        "duplicate": 200,
        "failed": 0,
        "received": 0,
        "ready": 0,
        "delivering": 0,
    }, counts
