"""A file dropped again (the same bytes under another name) is a duplicate without being
sniffed and extracted again: in its organization (routed alone, before ``mime`` and
``extract``), or anywhere with ``dedupe_scope = "global"``; in another organization it
lands (organization scope)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.e2e_helpers import ORGS

TEXT = b"Rack 4 patch panel: ports 1-24 go to switch sw-core-01, ports 25-48 to sw-core-02.\n"


@pytest.mark.parametrize(("scope", "landed"), [("organization", 2), ("global", 1)])
def test_a_file_dropped_again_is_a_duplicate_without_extraction(
    emu: Any, drop: Any, e2e_settings: Any, engine_for: Any, scope: str, landed: int
) -> None:
    for org in ORGS[:2]:
        (drop / org).mkdir()
    (drop / ORGS[0] / "patching.txt").write_bytes(TEXT)
    engine = engine_for(e2e_settings(dedupe_scope=scope))
    assert engine.run_once().delivered == 1
    (drop / ORGS[0] / "patching copy.txt").write_bytes(TEXT)  # the same organization
    (drop / ORGS[1] / "patching.txt").write_bytes(TEXT)  # another one
    summary = engine.run_once()
    assert (summary.delivered, summary.duplicate, summary.failed) == (landed - 1, 3 - landed, 0)
    assert len(emu.state()["records"]["documents"]) == landed

    entries = engine.ledger.changed_since(0)
    first = min(entries, key=lambda e: e.id)
    duplicates = [e for e in entries if e.state == "duplicate"]
    assert duplicates and all(e.duplicate_of == f"ledger:{first.id}" for e in duplicates)
    for e in entries:
        metadata = json.loads(e.record_json)["metadata"]
        # extracted once per document that landed, never for a duplicate
        assert ("transform_outcomes" in metadata) is (e.state == "done"), e.source_ref
    if scope == "organization":
        (dup,) = duplicates
        assert dup.organization_id == first.organization_id  # routed, in its table row too
