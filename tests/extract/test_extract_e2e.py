"""Drop folder -> the real engine -> the emulator: text, Markdown and HTML files land as
documents with heading and text sections next to the attached original; pictures land
as document images in gallery sections where they stood; hostile extractors (one that
loops forever, one that allocates until the memory cap) cost the record only its text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from itglue_emulator import Emulator
from pipeline.commands.engine import status
from pipeline.settings import Settings
from pipeline.testing import Landed, LandedDocument, RunOnce, with_sections
from tests.extract import extract_plugins

ORG = "Acme Corp"


def drop(tmp_path: Path, files: dict[str, bytes]) -> dict[str, Any]:
    folder = tmp_path / "drop"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {
        "type": "filesystem",
        "path": str(folder),
        "organization": ORG,
        "after": "keep",
        "stability_delay": 0,
    }


def run(emulator: Emulator, settings: Settings, source: dict[str, Any]) -> Landed:
    """One run of the default pipeline (mime, extract, route, title) with the test
    extractors and a 5-second budget per file."""
    extract = {"timeout": 5, "memory_mb": 400, "workers": 2}
    run_once = RunOnce(emulator, with_sections(settings, transforms={"extract": extract}))
    landed = run_once(source, organizations=[ORG], plugins=[extract_plugins])
    assert landed.failures == {}
    return landed


def kinds(emulator: Emulator, doc: LandedDocument) -> list[tuple[str, Any]]:
    """(section type, content or image file names) of a document, in order."""
    records = emulator.state()["records"]
    sections = sorted(
        (s for s in records["document_sections"] if str(s["document-id"]) == doc.id),
        key=lambda s: (s.get("sort", 0), int(s["id"])),
    )
    out: list[tuple[str, Any]] = []
    for s in sections:
        if s["resource-type"] == "Document::Gallery":
            out.append(("gallery", [i["file-name"] for i in s.get("images", [])]))
        elif s["resource-type"] == "Document::Heading":
            out.append((f"h{s['level']}", s["content"]))
        else:
            out.append(("text", s["content"]))
    return out


def by_name(landed: Landed) -> dict[str, LandedDocument]:
    return {d.name: d for d in landed.documents}


def test_text_markdown_and_html_land_as_sections_with_the_original_attached(
    itglue_emulator: Emulator, ingest_settings: Settings, tmp_path: Path
) -> None:
    files = {
        "notes.txt": b"Firewall rules reviewed.\nAll ports closed.\n\nNext review: June.\n",
        "runbook.markdown": b"# Backup runbook\n\nCheck the **NAS** nightly.\n\n## Restore\n\n"
        b"1. Stop the service\n2. Restore\n\n<script>alert(1)</script>\n",
        "page.html": b"<html><head><title>Switch config</title><style>p{}</style></head>"
        b"<body><h1>Core switch</h1><p onclick='x()'>VLAN 10 is <b>voice</b>.</p>"
        b"<table><tr><td>port 1</td><td>uplink</td></tr></table></body></html>",
    }
    landed = run(itglue_emulator, ingest_settings, drop(tmp_path, files))
    docs = by_name(landed)
    assert sorted(docs) == ["notes", "page", "runbook.markdown"]
    assert kinds(itglue_emulator, docs["notes"]) == [
        ("text", "<p>Firewall rules reviewed.<br>All ports closed.</p><p>Next review: June.</p>")
    ]
    assert kinds(itglue_emulator, docs["runbook.markdown"]) == [
        ("h1", "Backup runbook"),
        ("text", "<p>Check the <strong>NAS</strong> nightly.</p>"),
        ("h2", "Restore"),
        ("text", "<ol>\n<li>Stop the service</li>\n<li>Restore</li>\n</ol>"),
    ]
    assert kinds(itglue_emulator, docs["page"]) == [
        ("h1", "Core switch"),
        (
            "text",
            "<p>VLAN 10 is <b>voice</b>.</p><table><tbody><tr><td>port 1</td>"
            "<td>uplink</td></tr></tbody></table>",
        ),
    ]
    for doc in docs.values():  # the original stays attached, byte for byte
        (file_name,) = doc.attachments
        assert doc.attachments[file_name] == files[file_name]


def test_pictures_land_as_document_images_where_they_stood(
    itglue_emulator: Emulator, ingest_settings: Settings, tmp_path: Path
) -> None:
    spec = {
        "parts": [
            {"heading": "Rack", "text": "front view", "picture": True},
            {"heading": "Cabling", "text": "patch panel"},
        ]
    }
    landed = run(
        itglue_emulator, ingest_settings, drop(tmp_path, {"rack.json": json.dumps(spec).encode()})
    )
    (doc,) = landed.documents
    assert kinds(itglue_emulator, doc) == [
        ("h2", "Rack"),
        ("text", "<p>front view</p>"),
        ("gallery", ["figure-0.png"]),
        ("h2", "Cabling"),
        ("text", "<p>patch panel</p>"),
    ]
    (image,) = itglue_emulator.state()["records"]["document_images"]
    assert image["target-type"] == "gallery" and str(image["document-id"]) == doc.id
    assert image["image-file-size"] == len(extract_plugins.picture(0))


def test_hostile_extractors_cost_only_the_text_and_the_engine_goes_on(
    itglue_emulator: Emulator, ingest_settings: Settings, tmp_path: Path
) -> None:
    files = {
        "loops.json": json.dumps({"hostile": "loop"}).encode(),
        "hoards.json": json.dumps({"hostile": "allocate"}).encode(),
        "fine.txt": b"still delivered\n",
    }
    landed = run(itglue_emulator, ingest_settings, drop(tmp_path, files))
    docs = by_name(landed)
    assert sorted(docs) == ["fine", "hoards", "loops"]
    assert landed.summary.delivered == 3
    assert docs["loops"].sections == [
        "<p><em>The text could not be extracted: it took longer than 5 s.</em></p>"
    ]
    assert docs["hoards"].sections == [
        "<p><em>The text could not be extracted: it needed more memory than the worker's"
        " cap.</em></p>"
    ]
    assert docs["fine"].sections == ["<p>still delivered</p>"]
    for doc in docs.values():  # each with its file, byte for byte
        (file_name,) = doc.attachments
        assert doc.attachments[file_name] == files[file_name]
    # the outcomes are counted: `status` shows them
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'[itglue]\ninstance = "test"\nbase_url = "{itglue_emulator.base_url}"\n'
        f'[state]\ndir = "{ingest_settings.state.dir}"\n'
    )
    shown = CliRunner().invoke(status, ["-c", str(config), "--json"])
    assert json.loads(shown.output)["transform_outcomes"] == {
        "extract": {"crashed": 1, "ok": 1, "timeout": 1}
    }
    assert (
        "extract: crashed 1, ok 1, timeout 1"
        in CliRunner().invoke(status, ["-c", str(config)]).output
    )
