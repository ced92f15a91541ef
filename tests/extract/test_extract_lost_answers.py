"""A section's or a picture's POST whose answer is lost (the emulator commits, then
drops the connection): the record is retried, the sink reads what exists and adopts it,
and the document still has exactly one set of sections and one copy of each picture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from itglue_emulator import Emulator
from pipeline.settings import Settings
from pipeline.testing import RunOnce, with_sections
from tests.extract import extract_plugins

ORG = "Acme Corp"
SPEC = {
    "parts": [
        {"heading": "Rack", "text": "front", "picture": True},
        {"heading": "Power", "text": "two feeds", "picture": True},
    ]
}
EXPECTED = [
    ("Document::Heading", "Rack"),
    ("Document::Text", "<p>front</p>"),
    ("Document::Gallery", ["figure-0.png"]),
    ("Document::Heading", "Power"),
    ("Document::Text", "<p>two feeds</p>"),
    ("Document::Gallery", ["figure-1.png"]),
]


def sections_of(emulator: Emulator) -> list[tuple[str, Any]]:
    records = emulator.state()["records"]
    (doc,) = records["documents"]
    rows = sorted(
        (s for s in records["document_sections"] if str(s["document-id"]) == doc["id"]),
        key=lambda s: (s.get("sort", 0), int(s["id"])),
    )
    return [
        (s["resource-type"], [i["file-name"] for i in s["images"]])
        if s["resource-type"] == "Document::Gallery"
        else (s["resource-type"], s["content"])
        for s in rows
    ]


@pytest.mark.parametrize(
    "path_prefix",
    [
        "/document_images",  # the first picture's upload
        "/documents/",  # the first section's create (documents are created under /organizations)
    ],
)
def test_a_lost_answer_is_reconciled_not_repeated(
    itglue_emulator: Emulator, ingest_settings: Settings, tmp_path: Path, path_prefix: str
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "rack.json").write_text(json.dumps(SPEC))
    settings = with_sections(
        ingest_settings,
        pipeline={"retry_base": 0.01, "retry_max": 0.05},
        transforms={"extract": {"workers": 1}},
    )
    itglue_emulator.set_faults(drop=[{"next": 1, "methods": ["POST"], "path_prefix": path_prefix}])
    landed = RunOnce(itglue_emulator, settings)(
        {"type": "filesystem", "path": str(folder), "organization": ORG, "stability_delay": 0},
        organizations=[ORG],
        plugins=[extract_plugins],
    )
    assert landed.failures == {} and landed.summary.delivered == 1
    state = itglue_emulator.state()
    assert any(r["dropped"] for r in state["requests"]), "no answer was lost"
    assert sections_of(itglue_emulator) == EXPECTED
    assert len(state["records"]["document_images"]) == 2
