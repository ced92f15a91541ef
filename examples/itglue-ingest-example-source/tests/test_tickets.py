"""Tests of the example plugin, using the fixtures itglue-ingest ships (pytest11):
``itglue_emulator`` (a real IT Glue emulator on loopback), ``ingest_settings`` (a
configuration pointing at it) and ``ingest_state_dir``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.plugins import describe_plugins, get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import Settings, SourceSettings


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A ticket export with two tickets (one with an attachment)."""
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "jam.pdf").write_bytes(b"%PDF-1.4 paper jam report\n%%EOF\n")
    path = tmp_path / "tickets.jsonl"
    lines = [
        {
            "id": "T-1",
            "subject": "Printer jams",
            "text": "Tray 2 <jams>",
            "customer": "Acme",
            "attachments": ["files/jam.pdf"],
        },
        {"id": "T-2", "subject": "New laptop", "text": "Set up for Bob"},
    ]
    path.write_text("".join(json.dumps(t) + "\n" for t in lines))
    return path


@pytest.fixture
def settings(ingest_settings: Settings, itglue_emulator: Any, export: Path) -> Settings:
    """The project's fixture settings plus our source; the organization exists in IT Glue."""
    _create_org(ingest_settings, "Acme")
    ingest_settings.sources.append(
        SourceSettings.model_validate(
            {
                "name": "tickets",
                "type": "jsonl_tickets",
                "path": str(export),
                "organization": "Acme",
            }
        )
    )
    return ingest_settings


def _create_org(settings: Settings, name: str) -> None:
    from core_client.client import ITGlueClient

    client = ITGlueClient(
        base_url=settings.itglue.base_url,
        api_key_env=settings.itglue.api_key_env,
        ca_bundle=settings.itglue.ca_bundle,
        state_dir=settings.state.dir,
    )
    try:
        client.create_organization(name)
    finally:
        client.close()


def test_plugin_loads_from_its_entry_point() -> None:
    pm = get_plugin_manager()  # built-ins plus the installed entry points
    plugins = {p["name"]: p for p in describe_plugins(pm)}
    ours = plugins["jsonl_tickets"]
    assert ours["distribution"] == "itglue-ingest-example-source 0.1.0"
    assert ours["hooks"] == ["ingest_register_sources"]


def test_tickets_land_in_it_glue_exactly_once(
    settings: Settings, itglue_emulator: Any, export: Path
) -> None:
    with Engine(settings) as engine:  # the default plugin manager loads our entry point
        summary = engine.run_once()
    assert (summary.delivered, summary.failed) == (2, 0), summary.failures

    records = itglue_emulator.state()["records"]
    assert sorted(d["name"] for d in records["documents"]) == ["New laptop", "Printer jams"]
    [attachment] = records["attachments"]
    assert itglue_emulator.attachment_content(attachment["id"]) == (
        b"%PDF-1.4 paper jam report\n%%EOF\n"
    )
    # the post-action ran after delivery
    assert sorted(export.with_name("tickets.jsonl.done").read_text().split()) == ["T-1", "T-2"]

    # a second run finds nothing new: no upload, no second document
    with Engine(settings) as engine:
        summary = engine.run_once()
    assert (summary.delivered, summary.duplicate, summary.failed) == (0, 0, 0)
    assert len(itglue_emulator.state()["records"]["documents"]) == 2


def test_bad_lines_and_missing_files_are_nacked_with_a_reason(
    settings: Settings, export: Path
) -> None:
    with export.open("a") as f:
        f.write("{not json\n")
        f.write(json.dumps({"id": "T-3", "subject": "Gone", "attachments": ["nope.pdf"]}) + "\n")
    with Engine(settings) as engine:
        summary = engine.run_once()
    assert summary.delivered == 2
    reasons = {f["source_ref"]: f["reason"] for f in summary.failures}
    assert reasons["line-3"].startswith("tickets.jsonl line 3: not a ticket")
    assert "nope.pdf" in reasons["T-3"]
    failed = export.with_name("tickets.jsonl.failed").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in failed) == ["T-3", "line-3"]
