"""Review of the IT Glue sink's reconciliation with the real ledger journal (SQLite) and
the emulator: a lost create must never adopt a document another record made."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline import DocumentRecord, EngineContext
from pipeline.ledger import Ledger
from tests.plugins.sample_files import make_pdf
from tests.plugins.test_itglue_sink import doc_record, records, sink


@pytest.fixture
def ledger(ingest_state_dir: Path) -> Any:
    led = Ledger(ingest_state_dir / "review-ledger.db")
    yield led
    led.close()


def _record(ctx: EngineContext, path: Path, ref: str) -> DocumentRecord:
    return doc_record(ctx, [path], name="Scan").model_copy(update={"source_ref": ref})


def _files(make_file: Any) -> tuple[Path, Path]:
    a = make_file("scan-a.pdf", make_pdf(["first scan"]))
    b = make_file("scan-b.pdf", make_pdf(["second scan", "longer"]))
    return a, b


def test_restart_does_not_adopt_a_document_another_record_journaled(
    contexts, demo_emulator, make_file, ledger
) -> None:
    """After a restart the sink's in-memory claims are empty. Record B had created its
    document (journaled) and died before attaching; record A had sent a create whose
    answer was lost. A's reconciliation must not adopt B's document (same name, same
    organization, no attachments yet): B resumes into it and both files would land in
    one document."""
    ctx = contexts()
    a_path, b_path = _files(make_file)
    rec_a, rec_b = _record(ctx, a_path, "a"), _record(ctx, b_path, "b")
    id_a, _, _ = ledger.insert(rec_a)
    id_b, _, _ = ledger.insert(rec_b)
    journal_a, journal_b = ledger.journal(id_a), ledger.journal(id_b)
    journal_a.record("document.pending", datetime.now(UTC).isoformat())  # its create was lost
    made_b = ctx.itglue().create_document(rec_b.organization_id, "Scan")
    journal_b.record("document.pending", datetime.now(UTC).isoformat())
    journal_b.record("document", str(made_b.id))

    fresh = sink(ctx)  # a new process: nothing claimed in memory
    result_a = fresh.deliver(rec_a, journal_a)
    result_b = fresh.deliver(rec_b, journal_b)

    assert result_b.resource_id == str(made_b.id)
    assert result_a.resource_id != result_b.resource_id
    docs = records(demo_emulator, "documents")
    assert len(docs) == 2
    got: dict[str, list[str]] = {result_a.resource_id: [], result_b.resource_id: []}
    for att in records(demo_emulator, "attachments"):
        content = demo_emulator.attachment_content(att["id"])
        for doc_id, path in ((result_a.resource_id, a_path), (result_b.resource_id, b_path)):
            if content == path.read_bytes():
                got[doc_id].append(att["id"])
    assert sorted(result_a.attachment_ids) == sorted(got[result_a.resource_id])
    assert sorted(result_b.attachment_ids) == sorted(got[result_b.resource_id])
    assert len(records(demo_emulator, "attachments")) == 2


def test_a_create_answered_but_not_yet_claimed_is_not_adopted(
    contexts, demo_emulator, make_file, ledger, monkeypatch
) -> None:
    """Two same-named records in one organization, in one process. B's create has
    committed on the server and its answer is on its way back (B has neither claimed
    nor journaled the id yet) when A, whose own create was lost, reconciles: A must not
    take B's document."""
    ctx = contexts()
    a_path, b_path = _files(make_file)
    rec_a, rec_b = _record(ctx, a_path, "a"), _record(ctx, b_path, "b")
    id_a, _, _ = ledger.insert(rec_a)
    id_b, _, _ = ledger.insert(rec_b)
    client = ctx.itglue()
    real_create = client.create_document
    committed = threading.Event()

    def create_then_slow_answer(org_id: str, name: str, **attrs: Any) -> Any:
        doc = real_create(org_id, name, **attrs)  # the real request: it landed
        if threading.current_thread().name == "record-b":
            committed.set()
            threading.Event().wait(1.0)  # the answer takes a while to be handled
        return doc

    monkeypatch.setattr(client, "create_document", create_then_slow_answer)
    s = sink(ctx)
    out: dict[str, Any] = {}

    def deliver_b() -> None:
        out["b"] = s.deliver(rec_b, ledger.journal(id_b))

    t = threading.Thread(target=deliver_b, name="record-b")
    t.start()
    try:
        assert committed.wait(10)
        journal_a = ledger.journal(id_a)
        journal_a.record("document.pending", datetime.now(UTC).isoformat())
        result_a = s.deliver(rec_a, journal_a)
    finally:
        t.join(20)
    result_b = out["b"]
    assert result_a.resource_id != result_b.resource_id
    assert len(records(demo_emulator, "documents")) == 2
    assert len(records(demo_emulator, "attachments")) == 2


FW_TARGET = {
    "target": {"kind": "attachment", "resource_type": "configurations", "resource_name": "ACME-FW"}
}


def test_a_lost_upload_to_a_shared_resource_does_not_adopt_another_records_file(
    contexts, demo_emulator, tmp_path, ledger
) -> None:
    """Attachment targets are shared by many records. Record A attached its scan.pdf to
    the firewall; record B's scan.pdf has the same name and size but other bytes. B's
    upload gets a 500 (checked before the handler: nothing stored, yet ambiguous for a
    POST): its reconciliation must not take A's attachment for its own -- B's file
    would never reach IT Glue while the ledger says delivered."""
    ctx = contexts(FW_TARGET)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a_path, b_path = tmp_path / "a" / "scan.pdf", tmp_path / "b" / "scan.pdf"
    a_path.write_bytes(b"%PDF-1.4 first scan " + b"a" * 200)
    b_path.write_bytes(b"%PDF-1.4 other scan " + b"b" * 200)
    rec_a = doc_record(ctx, [a_path], name="fw scan a")
    rec_b = doc_record(ctx, [b_path], name="fw scan b")
    assert rec_a.target is not None and rec_a.target.kind == "attachment"
    id_a, _, _ = ledger.insert(rec_a)
    id_b, _, _ = ledger.insert(rec_b)
    s = sink(ctx)
    result_a = s.deliver(rec_a, ledger.journal(id_a))

    demo_emulator.set_faults(
        errors=[{"next": 1, "status": 500, "methods": ["POST"], "path_prefix": "/configurations"}]
    )
    journal_b = ledger.journal(id_b)
    try:
        result_b = s.deliver(rec_b, journal_b)
    except Exception:  # "not there (yet)": retried, as the engine would
        demo_emulator.set_faults()
        result_b = s.deliver(rec_b, journal_b)
    demo_emulator.set_faults()

    assert result_b.attachment_ids != result_a.attachment_ids
    contents = sorted(
        demo_emulator.attachment_content(a["id"]) for a in records(demo_emulator, "attachments")
    )
    assert contents == sorted([a_path.read_bytes(), b_path.read_bytes()])
    (b_att,) = result_b.attachment_ids
    assert demo_emulator.attachment_content(b_att) == b_path.read_bytes()
