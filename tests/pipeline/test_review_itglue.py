"""Review: the engine with the built-in filesystem source and IT Glue sink against the
emulator, around creates whose answer is lost while the server is still working."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipeline.runner import Engine
from pipeline.settings import Settings
from pipeline.testing import with_sections

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def test_a_create_still_in_progress_after_the_timeout_is_adopted_not_repeated(
    itglue_emulator: Any, ingest_settings: Settings, tmp_path: Path
) -> None:
    """The create's answer does not come within the read timeout (a slow server, a
    gateway giving up): the request is still being processed and commits a moment
    later. The reconciliation right after the timeout cannot see it yet; the next
    attempt must not come so soon that it creates a second document before the first
    one has landed -- IT Glue would hold two documents for one file."""
    emu = itglue_emulator
    emu.seed({"organizations": 1})
    (org,) = emu.records("organizations")
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "handover.pdf").write_bytes(PDF)
    settings = with_sections(
        ingest_settings,
        itglue={"read_timeout": 1.0},
        pipeline={
            "transforms": ["route"],
            "workers": 1,
            "retry_base": 0.05,
            "retry_max": 5.0,
            "once_timeout": 30,
        },
        sources=[
            {
                "name": "drop",
                "type": "filesystem",
                "path": str(drop),
                "organization": org["name"],
                "stability_delay": 0,
                "after": "move",
            }
        ],
    )
    # every document create takes 1.5 s on the server: longer than the read timeout
    emu.set_faults(latency={"ms": 1500, "methods": ["POST"], "path_prefix": "/organizations/"})
    with Engine(settings) as engine:
        summary = engine.run_once()
        counts = engine.ledger.counts()
    assert summary.ok, summary
    assert counts == {"drop": {"done": 1}}
    # deliberate: a second create, had one been sent, lands within the 1.5 s latency;
    # nothing observable says that none is in flight
    time.sleep(2.0)
    emu.set_faults()
    docs = emu.records("documents")
    assert len(docs) == 1, [d["id"] for d in docs]
    (att,) = emu.records("attachments")
    assert str(att["resource-id"]) == str(docs[0]["id"])
    assert emu.attachment_content(att["id"]) == PDF
    creates = sum(
        r["count"]
        for r in emu.state()["requests"]
        if r["method"] == "POST" and r["route"].startswith("/organizations/")
    )
    assert creates == 1  # looked for again (and found) instead of created again
