"""``once --dry-run``: the decisions of a run (routing and why, dedupe against the ledger
and the cache), with nothing written to IT Glue, the ledger or the drop folder."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.commands.engine import once
from pipeline.exit_codes import ExitCode
from pipeline.testing import API_KEY_ENV
from tests.cli.toml_text import write

WRITES = ("POST", "PATCH", "PUT", "DELETE")


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="dry-run-key", tls=True, seed="demo") as emu:
        monkeypatch.setenv(API_KEY_ENV, emu.api_key)
        yield emu


def config(tmp_path: Path, emu: Any, drop: Path) -> Path:
    return write(
        tmp_path / "ingest.toml",
        {
            "itglue": {
                "instance": "dry",
                "base_url": emu.base_url,
                "ca_bundle": str(emu.ca_file),
                "api_key_env": API_KEY_ENV,
            },
            "state": {"dir": "state"},
            "plugins": {"block": ["plugins.imap", "plugins.http_feed"]},
            "routing": {
                "rules": [
                    {"name": "invoices", "match": {"name": "invoice"}, "organization": "Globex"}
                ]
            },
            "sources": [
                {
                    "name": "drop",
                    "type": "filesystem",
                    "path": str(drop),
                    "stability_delay": 0,
                    "organization": "Acme Corp",
                }
            ],
        },
    )


def writes(emu: Any) -> int:
    return sum(
        r["count"]
        for r in emu.state()["requests"]
        if r["method"] in WRITES and not r["route"].startswith("/_emulator")
    )


def ledger_snapshot(db: Path) -> tuple[list[str], dict[str, str]]:
    """The database's content, and the bytes of its files (the main file and the WAL)."""
    with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        dump = list(conn.iterdump())
    files = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (db, db.with_name(db.name + "-wal"))
        if p.exists()
    }
    return dump, files


def listing(folder: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    )


def test_dry_run_decides_everything_and_changes_nothing(tmp_path: Path, emulator: Any) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    cfg = config(tmp_path, emulator, drop)
    (drop / "first.pdf").write_bytes(b"%PDF-1.4 delivered before")
    assert CliRunner().invoke(once, ["-c", str(cfg)]).exit_code == ExitCode.OK
    (drop / "again.pdf").write_bytes(b"%PDF-1.4 delivered before")  # the same content
    (drop / "invoice 7.pdf").write_bytes(b"%PDF-1.4 an invoice")
    (drop / "notes.pdf").write_bytes(b"%PDF-1.4 some notes")

    before = (writes(emulator), ledger_snapshot(tmp_path / "state" / "dry.db"), listing(drop))
    result = CliRunner().invoke(once, ["-c", str(cfg), "--dry-run"])
    assert result.exit_code == ExitCode.OK, result.output
    after = (writes(emulator), ledger_snapshot(tmp_path / "state" / "dry.db"), listing(drop))
    assert after == before  # no upload, no ledger write, no file moved
    print(result.output)

    rows = {
        line.split()[0]: line for line in result.output.splitlines() if line.startswith("drop:")
    }
    assert set(rows) == {"drop:again.pdf", "drop:invoice", "drop:notes.pdf"}, result.output
    assert "skip: duplicate" in rows["drop:again.pdf"] and "of ledger:1" in rows["drop:again.pdf"]
    invoice = rows["drop:invoice"]
    assert "create document" in invoice and "Globex" in invoice
    assert "rule 1 (invoices): name~'invoice'" in invoice
    notes = rows["drop:notes.pdf"]
    assert "create document" in notes and "Acme Corp" in notes
    assert "the source's organization" in notes
    assert "nothing was uploaded, moved, flagged or recorded" in result.output

    as_json = CliRunner().invoke(once, ["-c", str(cfg), "--dry-run", "--json"])
    records = json.loads(as_json.output)["records"]
    assert sorted(r["action"] for r in records) == [
        "create document",
        "create document",
        "skip: duplicate",
    ]
    assert writes(emulator) == before[0]

    # the real run does what the dry run said
    result = CliRunner().invoke(once, ["-c", str(cfg)])
    assert result.exit_code == ExitCode.OK, result.output
    assert result.output.startswith("2 delivered, 1 duplicate, 0 failed")
    assert writes(emulator) > before[0]
    assert sorted(f.name for f in (drop / "processed").rglob("*.pdf")) == [
        "again.pdf",
        "first.pdf",
        "invoice 7.pdf",
        "notes.pdf",
    ]


def test_dry_run_on_a_shared_postgresql_state_is_refused(tmp_path: Path, emulator: Any) -> None:
    """The PostgreSQL ledger is every collector's: a dry run says it cannot run there
    (usage error) and touches nothing, rather than writing to it or to a copy of it."""
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "notes.pdf").write_bytes(b"%PDF-1.4 some notes")
    cfg = config(tmp_path, emulator, drop)
    text = cfg.read_text().replace(
        '[state]\n"dir" = "state"',
        '[state]\n"dir" = "state"\nbackend = "postgresql"\ndsn = "host=/nonexistent dbname=x"',
    )
    assert text != cfg.read_text()
    cfg.write_text(text)
    result = CliRunner().invoke(once, ["-c", str(cfg), "--dry-run"])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert 'once --dry-run needs [state] backend = "sqlite"' in result.output
    assert writes(emulator) == 0 and [p.name for p in drop.iterdir()] == ["notes.pdf"]
