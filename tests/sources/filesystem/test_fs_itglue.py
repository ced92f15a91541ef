"""The drop folder watched by the daemon, delivering through the real IT Glue sink to the
emulator (HTTPS on loopback): sub-folders route to organizations, attachments arrive
byte for byte, an unknown organization fails into ``failed/`` with a reason."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import parse_settings
from plugins.filesystem.placement import dated_dir
from tests.sources.filesystem.fs_helpers import observer_started, running
from tests.waiting import wait_for


def pdf(text: str) -> bytes:
    """A small but real PDF (libmagic: application/pdf)."""
    body = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R>>endobj\n"
        + f"4 0 obj<</Length {len(body)}>>stream\n".encode()
        + body
        + b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


@pytest.fixture
def emu() -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="test-key", tls=True, seed="demo") as e:
        yield e


def make_engine(
    emu: Any, tmp_path: Path, drop: Path, observer: str, monkeypatch: pytest.MonkeyPatch
) -> Engine:
    monkeypatch.setenv("ITGLUE_FS_TEST_KEY", emu.api_key)
    settings = parse_settings(
        {
            "itglue": {
                "instance": "fs",
                "base_url": emu.base_url,
                "api_key_env": "ITGLUE_FS_TEST_KEY",
                "ca_bundle": str(emu.ca_file),
            },
            "state": {"dir": str(tmp_path / "state")},
            "pipeline": {"workers": 2, "retry_base": 0.05, "retry_max": 0.5},
            "sources": [
                {
                    "name": "scans",
                    "type": "filesystem",
                    "path": str(drop),
                    "organization_from": "subfolder",
                    "observer": observer,
                    "poll_interval": 0.1,
                    "stability_delay": 0.3,
                }
            ],
        }
    )
    return Engine(settings, get_plugin_manager(load_entrypoints=False))


@pytest.mark.parametrize("observer", ["native", "polling"])
def test_dropped_files_land_in_their_organizations(
    emu: Any, tmp_path: Path, observer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop = tmp_path / "drop"
    (drop / "Acme Corp").mkdir(parents=True)
    backlog = pdf("already waiting")
    (drop / "Acme Corp" / "waiting.pdf").write_bytes(backlog)
    files = {
        "Acme Corp/Invoice_2024-03.pdf": pdf("invoice"),
        "Globex/Network/diagram notes.txt": b"core switch -> firewall\n" * 50,
        "Initech/" + os.fsdecode(b"r\xe9sum\xe9.pdf"): pdf("latin-1 name"),
        'Globex/odd <name>: "a|b?" *\tline\n2.pdf': pdf("characters IT Glue may refuse"),
    }
    with running(make_engine(emu, tmp_path, drop, observer, monkeypatch)) as engine:
        wait_for(lambda: observer_started(engine, "scans"), message="the observer")
        for rel, data in files.items():
            p = Path(os.path.join(str(drop), rel))
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        (drop / "Nope Inc").mkdir()
        (drop / "Nope Inc" / "lost.pdf").write_bytes(pdf("nobody"))
        wait_for(lambda: len(emu.records("attachments")) == 5, timeout=30, message="5 uploads")
        wait_for(
            lambda: (drop / "failed" / "Nope Inc" / "lost.pdf.error.txt").exists(),
            message="the unroutable file in failed/",
        )
        wait_for(
            lambda: len([p for p in dated_dir(drop / "processed").rglob("*") if p.is_file()]) == 5,
            message="moves",
        )
    records = emu.state()["records"]
    orgs = {o["id"]: o["name"] for o in records["organizations"]}
    docs = {d["id"]: d for d in records["documents"]}
    landed = {}
    for att in records["attachments"]:
        doc = docs[str(att["resource-id"])]
        landed[(orgs[str(doc["organization-id"])], att["name"])] = emu.attachment_content(att["id"])
    assert landed == {
        ("Acme Corp", "waiting.pdf"): backlog,
        ("Acme Corp", "Invoice_2024-03.pdf"): files["Acme Corp/Invoice_2024-03.pdf"],
        ("Globex", "diagram notes.txt"): files["Globex/Network/diagram notes.txt"],
        ("Initech", "r\ufffdsum\ufffd.pdf"): files["Initech/" + os.fsdecode(b"r\xe9sum\xe9.pdf")],
        ("Globex", 'odd <name>: "a|b?" *_line_2.pdf'): files[
            'Globex/odd <name>: "a|b?" *\tline\n2.pdf'
        ],
    }
    names = sorted(d["name"] for d in docs.values())
    assert "Invoice 2024-03" in names  # titled by the title transform
    note = (drop / "failed" / "Nope Inc" / "lost.pdf.error.txt").read_text()
    assert "Nope Inc" in note
    assert (dated_dir(drop / "processed") / "Initech" / os.fsdecode(b"r\xe9sum\xe9.pdf")).exists()
