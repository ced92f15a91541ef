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
    ("scope", "order", "outcome", "transformed"),
    [
        ("global", ["org", "outcome"], "ok", False),
        ("organization", ["org", "outcome"], "ok", False),
        ("global", ["org", "outcome"], "timeout", True),  # more text next time, maybe
        ("organization", ["org", "outcome"], "crashed", True),
        # the routing transform reads what another one may change: the whole way
        ("organization", ["outcome", "org"], "ok", True),
        ("global", ["outcome", "org"], "ok", True),  # (it may choose the instance)
    ],
)
def test_a_known_input_skips_the_transforms_when_that_is_exact(
    tmp_path: Path, scope: str, order: list[str], outcome: str, transformed: bool
) -> None:
    s = make_settings(
        tmp_path,
        pipeline_opts={"transforms": order, "dedupe_scope": scope},
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


def test_the_same_input_lands_once_in_each_instance(tmp_path: Path) -> None:
    s = make_settings(
        tmp_path,
        pipeline_opts={"transforms": ["org", "outcome"], "dedupe_scope": "global"},
        transforms={"org": {"instance_from_name": True}},
    )
    write(tmp_path / "inbox", "a-1.txt", "same bytes")
    with Engine(s, plugin_manager(Recorder())) as engine:
        assert engine.run_once().delivered == 1
        write(tmp_path / "inbox", "b-1.txt", "same bytes")  # routed to another instance
        summary = engine.run_once()
        assert (summary.delivered, summary.duplicate, summary.failed) == (1, 0, 0)
        write(tmp_path / "inbox", "a-2.txt", "same bytes")
        summary = engine.run_once()
        assert (summary.delivered, summary.duplicate, summary.failed) == (0, 1, 0)
        entries = engine.ledger.changed_since(0)
    (dup,) = [e for e in entries if e.state == "duplicate"]
    (first,) = [e for e in entries if e.source_ref == "a-1.txt"]
    assert dup.duplicate_of == f"ledger:{first.id}"
