"""The engine with the built-in transforms and the IT Glue sink against the emulator:
200 files land byte-identical, the same 200 again are duplicates (no upload), and a
fault soak (5xx, 429 storms, latency) still delivers each record exactly once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import Settings, parse_settings
from tests.pipeline.pipeline_engine_helpers import EnginePlugins


@pytest.fixture
def emu() -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="e2e-key", seed="demo", random_seed=7) as e:
        yield e


def settings(emu: Any, tmp_path: Path, folders: dict[str, Path], **pipeline: Any) -> Settings:
    os.environ["ITGLUE_E2E_KEY"] = emu.api_key
    return parse_settings(
        {
            "itglue": {
                "instance": "e2e",
                "base_url": emu.base_url,
                "api_key_env": "ITGLUE_E2E_KEY",
                "ca_bundle": str(emu.ca_file),
            },
            "state": {"dir": str(tmp_path / "state")},
            "pipeline": {"workers": 4, "retry_base": 0.05, "retry_max": 0.5, **pipeline},
            "sources": [
                {"name": name, "type": "dir", "path": str(path), "organization": "Globex"}
                for name, path in folders.items()
            ],
        }
    )


def pm() -> Any:
    return get_plugin_manager(
        load_entrypoints=False,
        block=("plugins.filesystem", "plugins.imap", "plugins.http_feed"),
        extra=[EnginePlugins()],
    )


def make(folder: Path, n: int) -> dict[str, bytes]:
    folder.mkdir()
    out = {}
    for i in range(n):
        data = f"%PDF-1.4 report {i}\n".encode() + bytes(range(256)) * (i % 7 + 1)
        (folder / f"report-{i:03}.pdf").write_bytes(data)
        out[f"report-{i:03}.pdf"] = data
    return out


@pytest.mark.slow
def test_200_files_then_the_same_200_again(
    emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ITGLUE_E2E_KEY", emu.api_key)
    first = make(tmp_path / "first", 200)
    (tmp_path / "again").mkdir()
    for name, data in first.items():
        (tmp_path / "again" / name).write_bytes(data)
    folders = {"first": tmp_path / "first"}
    with Engine(settings(emu, tmp_path, folders), pm()) as engine:
        summary = engine.run_once()
    assert (summary.delivered, summary.duplicate, summary.failed) == (200, 0, 0)
    state = emu.state()
    docs, atts = state["records"]["documents"], state["records"]["attachments"]
    assert len(docs) == 200 and len(atts) == 200
    for a in atts:
        assert emu.attachment_content(a["id"]) == first[a["file-name"]]
    requests_before = state["request_total"]

    folders["again"] = tmp_path / "again"
    with Engine(settings(emu, tmp_path, folders), pm()) as engine:
        summary = engine.run_once()
    assert (summary.delivered, summary.duplicate, summary.failed) == (0, 200, 0)
    state = emu.state()
    assert len(state["records"]["documents"]) == 200  # nothing new was uploaded
    assert len(state["records"]["attachments"]) == 200
    writes = [r for r in state["requests"] if r["method"] in ("POST", "PATCH") and r["count"] > 0]
    # the first run's 3 per document only: create, the extract note section (these
    # "PDFs" have no text), upload
    assert sum(r["count"] for r in writes) == 600
    assert state["request_total"] - requests_before <= 2  # at most an organization listing


@pytest.mark.slow
def test_fault_soak_delivers_each_record_exactly_once(
    emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ITGLUE_E2E_KEY", emu.api_key)
    files = make(tmp_path / "in", 60)
    emu.set_faults(
        errors=[{"rate": 0.2, "status": 503}, {"rate": 0.05, "status": 500}],
        storm={"next": 2},  # the client pauses ~1 s, then ~2 s
        latency={"ms": 10, "jitter_ms": 10},
        drop=[{"rate": 0.05}],
    )
    s = settings(emu, tmp_path, {"in": tmp_path / "in"}, once_timeout=90)

    def client() -> Any:  # the production client, with the test's shorter pauses
        from core_client.client import ITGlueClient

        return ITGlueClient.from_instance(
            "e2e",
            base_url=emu.base_url,
            api_key=emu.api_key,
            ca_bundle=emu.ca_file,
            state_dir=tmp_path / "state",
            backoff_base=0.05,
            backoff_max=0.5,
            breaker_cooldown=1.0,
            rate_penalty_seconds=2.0,
        )

    with Engine(s, pm(), client_factory=client) as engine:
        summary = engine.run_once()
        waited = engine.ledger.counts()
    emu.set_faults()
    assert summary.ok, (summary, waited)
    assert summary.delivered == 60
    state = emu.state()
    faulted = sum(r["count"] for r in state["requests"] if r["status"] in (429, 500, 503))
    assert faulted > 10  # the faults really fired
    atts = state["records"]["attachments"]
    assert sorted(a["file-name"] for a in atts) == sorted(files)  # each exactly once
    assert len(state["records"]["documents"]) == 60
    for a in atts:
        assert emu.attachment_content(a["id"]) == files[a["file-name"]]
