"""A record whose input (its bytes and sections as they arrived) landed before is found a
duplicate without its transforms running again -- unless a transform said that the same
input may give other content next time, or the organization it goes to is not known
without them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.runner import Engine
from tests.pipeline.pipeline_engine_helpers import Recorder, plugin_manager
from tests.pipeline.test_engine import make_settings, write


@pytest.mark.parametrize(
    ("scope", "outcome", "transformed"),
    [
        ("global", "ok", False),
        ("global", "timeout", True),  # the same bytes may extract to more text next time
        ("global", "crashed", True),
        ("organization", "ok", True),  # no transform routes alone: the whole way
    ],
)
def test_a_known_input_skips_the_transforms_when_that_is_exact(
    tmp_path: Path, scope: str, outcome: str, transformed: bool
) -> None:
    s = make_settings(
        tmp_path,
        pipeline_opts={"transforms": ["org", "outcome"], "dedupe_scope": scope},
        transforms={"outcome": {"outcome": outcome}},
    )
    write(tmp_path / "inbox", "a.txt", "same bytes")
    rec = Recorder()
    with Engine(s, plugin_manager(rec)) as engine:
        assert engine.run_once().delivered == 1
        write(tmp_path / "inbox", "b.txt", "same bytes")
        summary = engine.run_once()
        assert (summary.delivered, summary.duplicate, summary.failed) == (0, 1, 0)
        entries = engine.ledger.changed_since(0)
    (first,) = [e for e in entries if e.state == "done"]
    (dup,) = [e for e in entries if e.state == "duplicate"]
    assert dup.acked and dup.duplicate_of == f"ledger:{first.id}"
    assert rec.duplicate == [("b.txt", f"ledger:{first.id}")]
    assert ("runs" in json.loads(dup.record_json)["metadata"]) is transformed
