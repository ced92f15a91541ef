"""End to end: drop folder -> engine -> IT Glue sink -> emulator, checked byte for byte."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.e2e_helpers import ORGS
from tests.plugins.sample_files import make_pdf, make_png


def fill(drop: Path, count: int, prefix: str = "doc", start: int = 0) -> dict[str, bytes]:
    """``count`` distinct real files spread over the demo organizations: name -> bytes."""
    files = {}
    for i in range(start, start + count):
        org = ORGS[i % len(ORGS)]
        if i % 5 == 0:
            name, data = f"{prefix}-{i:04d}.png", make_png(12, 12, seed=i)
        else:
            name, data = f"{prefix}-{i:04d}.pdf", make_pdf([f"Document {i}", "e2e"])
        (drop / org).mkdir(exist_ok=True)
        (drop / org / name).write_bytes(data)
        files[name] = data
    return files


def content_of(i: int) -> bytes:
    return make_png(12, 12, seed=i) if i % 5 == 0 else make_pdf([f"Document {i}", "e2e"])


def api_posts(emu: Any) -> Counter[str]:
    out: Counter[str] = Counter()
    for r in emu.state()["requests"]:
        if r["method"] in ("POST", "PATCH") and r["status"] < 400:
            out[r["route"]] += r["count"]
    return out


def check_exactly_once(emu: Any, files: dict[str, bytes]) -> None:
    """Every file is in IT Glue exactly once, as its own document, byte-identical."""
    records = emu.state()["records"]
    docs = records["documents"]
    atts = records["attachments"]
    assert len(docs) == len(files), Counter(d["name"] for d in docs).most_common(3)
    assert len(atts) == len(files)
    by_doc = Counter(str(a["resource-id"]) for a in atts)
    assert set(by_doc.values()) == {1}
    orgs = {o["id"]: o["name"] for o in records["organizations"]}
    doc_org = {str(d["id"]): orgs[str(d["organization-id"])] for d in docs}
    for att in atts:
        assert emu.attachment_content(att["id"]) == files[att["name"]], att["name"]
        i = int(att["name"].split("-")[1].split(".")[0])
        assert doc_org[str(att["resource-id"])] == ORGS[i % len(ORGS)]


@pytest.mark.timeout(300)  # every file is extracted (PDF text, OCR of the PNGs) twice
def test_200_files_then_the_same_200_again(emu, drop, e2e_settings, engine_for) -> None:
    files = fill(drop, 200)
    engine = engine_for(e2e_settings())
    summary = engine.run_once()
    assert (summary.delivered, summary.failed, summary.pending) == (200, 0, 0)
    check_exactly_once(emu, files)
    posts = api_posts(emu)
    # 3 requests per document: create, one text section (a PDF's text, or the note that a
    # picture has none), attach; routing listed the organizations once
    assert posts == {
        "/organizations/:org_id/relationships/documents": 200,
        "/documents/:doc_id/relationships/sections": 200,
        "/documents/:parent_id/relationships/attachments": 200,
    }
    gets = sum(r["count"] for r in emu.state()["requests"] if r["method"] == "GET")
    assert gets == 1
    assert not any(p.is_file() for org in ORGS for p in (drop / org).iterdir())  # moved

    # the same content again under new names (new source_refs): nothing is uploaded
    again = {f"copy-{n}": data for n, data in files.items()}
    for name, data in again.items():
        (drop / ORGS[int(name.split("-")[2].split(".")[0]) % len(ORGS)] / name).write_bytes(data)
    summary = engine.run_once()
    assert (summary.delivered, summary.duplicate, summary.failed) == (0, 200, 0)
    assert api_posts(emu) == posts
    assert len(emu.state()["records"]["documents"]) == 200


def test_duplicates_found_through_the_metadata_cache(emu, drop, e2e_settings, engine_for, tmp_path):
    """A second instance (fresh ledger) sharing nothing but the cache database still
    deduplicates: the sink's find_existing consults the cache by content hash."""
    files = fill(drop, 8)
    settings = e2e_settings()
    first = engine_for(settings)
    summary = first.run_once()
    assert summary.delivered == 8
    first.close()
    import sqlite3

    with sqlite3.connect(settings.database_path) as conn:  # forget the ledger, keep the cache
        conn.execute("DELETE FROM ledger_steps")
        conn.execute("DELETE FROM ledger_blobs")
        conn.execute("DELETE FROM ledger_records")
    conn.close()
    for name, data in files.items():
        i = int(name.split("-")[1].split(".")[0])
        (drop / ORGS[i % len(ORGS)] / f"again-{name}").write_bytes(data)
    engine_for_second = engine_for(settings)
    summary = engine_for_second.run_once()
    assert (summary.delivered, summary.duplicate) == (0, 8)
    assert len(emu.state()["records"]["documents"]) == 8


@pytest.mark.slow
def test_fault_soak_delivers_everything_exactly_once(emu, drop, e2e_settings, engine_for):
    files = fill(drop, 80)
    faults = {
        "seed": 11,
        "errors": [{"rate": 0.2, "status": 503}, {"rate": 0.05, "status": 502}],
        "storm": {"next": 25},
        "latency": {"ms": 5, "jitter_ms": 15},
    }
    emu.set_faults(**faults)
    stop = threading.Event()

    def second_storm() -> None:
        # a timed storm 1 s after the first one was met: the first requests come only
        # after the first files were extracted, which takes a while on a busy machine
        while not stop.wait(0.1):
            if any(r["status"] == 429 for r in emu.state()["requests"]):
                break
        if not stop.wait(1.0):
            emu.set_faults(**{**faults, "storm": {"seconds": 0.5}})

    storms = threading.Thread(target=second_storm)
    storms.start()
    try:
        summary = engine_for(e2e_settings(), fast=True).run_once()
    finally:
        stop.set()
        storms.join()
    emu.set_faults()
    statuses = Counter(r["status"] for r in emu.state()["requests"] for _ in range(r["count"]))
    assert statuses[503] > 0 and statuses[429] > 0  # the faults really happened
    assert (summary.delivered, summary.failed, summary.pending) == (80, 0, 0)
    check_exactly_once(emu, files)


@pytest.mark.slow
def test_commit_then_drop_is_reconciled_to_exactly_one(emu, drop, e2e_settings, engine_for):
    files = fill(drop, 40)
    emu.set_faults(seed=5, drop=[{"rate": 0.3, "methods": ["POST"]}])
    summary = engine_for(e2e_settings(), fast=True).run_once()
    emu.set_faults()
    dropped = sum(r["count"] for r in emu.state()["requests"] if r["dropped"])
    assert dropped >= 10
    assert (summary.delivered, summary.failed, summary.pending) == (40, 0, 0)
    check_exactly_once(emu, files)


def test_resume_from_a_prefilled_step_journal(emu, drop, e2e_settings, engine_for) -> None:
    files = fill(drop, 1)
    (name,) = files
    engine = engine_for(e2e_settings())
    engine.sources["drop"].scan()  # emit: the record is in the ledger, not yet delivered
    import time

    (record_id,) = engine.ledger.due(time.time(), 10)
    org = next(o for o in emu.state()["records"]["organizations"] if o["name"] == ORGS[0])
    made = engine.context.itglue().create_document(org["id"], "doc-0000")
    engine.ledger.set_step(record_id, "document", str(made.id))  # as if a crash followed
    summary = engine.run_once()
    assert summary.delivered == 1
    docs = emu.state()["records"]["documents"]
    assert [d["id"] for d in docs] == [str(made.id)]  # no second document
    (att,) = emu.state()["records"]["attachments"]
    assert str(att["resource-id"]) == str(made.id)
    assert emu.attachment_content(att["id"]) == files[name]
    creates = sum(
        r["count"]
        for r in emu.state()["requests"]
        if r["method"] == "POST" and "relationships/documents" in r["route"]
    )
    assert creates == 1  # the test's own
