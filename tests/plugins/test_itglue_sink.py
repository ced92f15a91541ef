"""The IT Glue sink against the emulator: steps, journal, reconciliation, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline import (
    DocumentRecord,
    EngineContext,
    PermanentError,
    Section,
    Target,
    TransientError,
)
from pipeline.testing import make_blob, make_transform
from plugins.itglue_sink import ItglueSink, ItglueSinkOptions
from tests.plugins.sample_files import make_pdf, make_png


class Journal:
    """An in-memory StepJournal (the ledger's is tested with the engine)."""

    def __init__(self, steps: dict[str, str] | None = None) -> None:
        self._steps = dict(steps or {})
        self.log: list[tuple[str, str]] = []

    def get(self, step: str) -> str | None:
        return self._steps.get(step)

    def record(self, step: str, value: str) -> None:
        self._steps[step] = value
        self.log.append((step, value))

    def steps(self) -> dict[str, str]:
        return dict(self._steps)

    def taken_by_another(self, step: str, value: str) -> bool:
        return False  # one record per journal here: nothing belongs to another


def sink(ctx: EngineContext, **options: Any) -> ItglueSink:
    return ItglueSink("itglue", ItglueSinkOptions.model_validate(options), ctx)


def routed(ctx: EngineContext, record: DocumentRecord) -> DocumentRecord:
    return make_transform("route", ctx).apply(record)


def state(emu: Any) -> dict[str, Any]:
    return emu.state()


def records(emu: Any, kind: str) -> list[dict[str, Any]]:
    return state(emu)["records"].get(kind, [])


def api_requests(emu: Any) -> list[tuple[str, str, int]]:
    out = []
    for r in state(emu)["requests"]:
        out += [(r["method"], r["route"], r["status"])] * r["count"]
    return out


def dropped(emu: Any) -> int:
    return sum(r["count"] for r in state(emu)["requests"] if r["dropped"])


@pytest.fixture
def files(make_file):
    def make(*names: str) -> list[Path]:
        out = []
        for i, name in enumerate(names):
            data = make_pdf([name, str(i)]) if name.endswith(".pdf") else make_png(16, 16, i)
            out.append(make_file(name, data))
        return out

    return make


def doc_record(ctx: EngineContext, paths: list[Path], **kw: Any) -> DocumentRecord:
    kw.setdefault("organization", "Acme Corp")
    kw.setdefault("name", "Firewall handover")
    record = DocumentRecord(
        source="scans", source_ref=kw["name"], files=[make_blob(p) for p in paths], **kw
    )
    return routed(ctx, record)


def test_one_file_costs_exactly_two_requests(contexts, demo_emulator, files) -> None:
    ctx = contexts()
    (pdf,) = files("handover.pdf")
    record = doc_record(ctx, [pdf])
    before = len(api_requests(demo_emulator))  # routing listed the organizations
    journal = Journal()
    result = sink(ctx).deliver(record, journal)
    after = api_requests(demo_emulator)[before:]
    assert sorted(m for m, _, _ in after) == ["POST", "POST"]
    assert result.requests == 2
    docs = records(demo_emulator, "documents")
    assert [d["name"] for d in docs] == ["Firewall handover"]
    assert result.resource_type == "documents" and result.resource_id == docs[0]["id"]
    assert result.organization_id == record.organization_id
    (att,) = records(demo_emulator, "attachments")
    assert result.attachment_ids == [att["id"]]
    assert demo_emulator.attachment_content(att["id"]) == pdf.read_bytes()
    assert [s for s, v in journal.log if v and not s.endswith(".pending")] == [
        "document",
        "attachment:0",
    ]
    # recorded in the cache: a copy of the content is found without asking IT Glue
    copy = record.model_copy(update={"source_ref": "copy"})
    assert sink(ctx).find_existing(copy) == f"documents/{docs[0]['id']}"


def test_extracted_text_of_a_delivered_document_is_searchable(
    contexts, demo_emulator, files
) -> None:
    ctx = contexts()
    (pdf,) = files("runbook.pdf")
    text = "Restore DC01 from the nightly Veeam backup; check the tape rotation."
    record = doc_record(ctx, [pdf], name="DR runbook", metadata={"extract_text": text})
    result = sink(ctx).deliver(record, Journal())
    (hit,) = ctx.metadata_cache().search("veeam tape")
    assert (hit.kind, hit.id, hit.name) == ("documents", result.resource_id, "DR runbook")
    assert hit.organization == "Acme Corp" and "[Veeam]" in hit.snippet
    # without extracted text only the name is indexed
    (plain,) = files("other.pdf")
    sink(ctx).deliver(doc_record(ctx, [plain], name="Invoice 7"), Journal())
    assert [h.name for h in ctx.metadata_cache().search("invoice")] == ["Invoice 7"]
    assert ctx.metadata_cache().search("tape invoice") == []


def test_sections_are_sanitized_and_publish(contexts, demo_emulator, files) -> None:
    ctx = contexts()
    a, b = files("a.pdf", "b.png")
    record = doc_record(
        ctx,
        [a, b],
        sections=[
            Section(kind="heading", content="Summary", level=2),
            Section(content='<p onclick="x()">Body<script>alert(1)</script></p><svg></svg>'),
            Section(content="<script>only()</script>"),  # nothing left: skipped
        ],
    )
    journal = Journal()
    result = sink(ctx, publish=True).deliver(record, journal)
    assert result.requests == 1 + 2 + 2 + 1  # document, 2 sections, 2 files, publish
    sections = records(demo_emulator, "document_sections") or records(
        demo_emulator, "document-sections"
    )
    contents = [s.get("content") for s in sections]
    assert contents == ["Summary", "<p>Body</p>"]
    assert journal.get("section:2") == "skipped"
    assert journal.get("published") == "1"
    (doc,) = records(demo_emulator, "documents")
    assert doc.get("published") is True or doc.get("published-at")
    got = sorted(demo_emulator.attachment_content(i) for i in result.attachment_ids)
    assert got == sorted([a.read_bytes(), b.read_bytes()])


def test_resume_from_the_journal_creates_no_second_document(contexts, demo_emulator, files):
    ctx = contexts()
    a, b = files("a.pdf", "b.pdf")
    record = doc_record(ctx, [a, b])
    existing = ctx.itglue().create_document(record.organization_id, record.name)
    first = ctx.itglue().upload_attachment("documents", existing.id, path=a, file_name="a.pdf")
    journal = Journal({"document": existing.id, "attachment:0": first.id})
    before = len(api_requests(demo_emulator))
    result = sink(ctx).deliver(record, journal)
    # resumed: one listing of the document's attachments (a crash may have left one
    # unjournaled), then only b.pdf is uploaded
    assert len(api_requests(demo_emulator)) - before == 2
    assert result.requests == 2
    assert [d["id"] for d in records(demo_emulator, "documents")] == [existing.id]
    assert result.attachment_ids[0] == first.id and len(result.attachment_ids) == 2
    assert len(records(demo_emulator, "attachments")) == 2


def test_resume_adopts_what_a_crash_left_unjournaled(contexts, demo_emulator, files) -> None:
    """The previous attempt added section 0 and uploaded a.pdf, then died before
    journaling them: nothing is added twice."""
    ctx = contexts()
    a, b = files("a.pdf", "b.pdf")
    record = doc_record(
        ctx, [a, b], sections=[Section(content="<p>one</p>"), Section(content="<p>two</p>")]
    )
    doc = ctx.itglue().create_document(record.organization_id, record.name)
    first = ctx.itglue().create_document_section(doc.id, "Document::Text", content="<p>one</p>")
    landed = ctx.itglue().upload_attachment("documents", doc.id, path=a, file_name="a.pdf")
    journal = Journal({"document.pending": "x", "document": doc.id})
    result = sink(ctx).deliver(record, journal)
    assert journal.get("section:0") == str(first.id)
    assert result.attachment_ids[0] == str(landed.id)
    sections = records(demo_emulator, "document_sections") or records(
        demo_emulator, "document-sections"
    )
    assert [x.get("content") for x in sections] == ["<p>one</p>", "<p>two</p>"]
    assert sorted(x["name"] for x in records(demo_emulator, "attachments")) == ["a.pdf", "b.pdf"]
    assert result.requests == 4  # list sections, add one, list attachments, upload one


def test_commit_then_drop_on_create_is_reconciled(contexts, demo_emulator, files) -> None:
    ctx = contexts()
    (pdf,) = files("a.pdf")
    record = doc_record(ctx, [pdf])
    demo_emulator.set_faults(
        drop=[{"next": 1, "methods": ["POST"], "path_prefix": "/organizations/"}]
    )
    result = sink(ctx).deliver(record, Journal())
    assert dropped(demo_emulator) == 1
    docs = records(demo_emulator, "documents")
    assert len(docs) == 1 and result.resource_id == docs[0]["id"]
    assert len(records(demo_emulator, "attachments")) == 1


def test_commit_then_drop_on_upload_is_reconciled(contexts, demo_emulator, files) -> None:
    ctx = contexts()
    (pdf,) = files("a.pdf")
    record = doc_record(ctx, [pdf])
    demo_emulator.set_faults(drop=[{"next": 1, "methods": ["POST"], "path_prefix": "/documents/"}])
    result = sink(ctx).deliver(record, Journal())
    assert dropped(demo_emulator) == 1
    (att,) = records(demo_emulator, "attachments")
    assert result.attachment_ids == [att["id"]]


def test_crash_after_create_was_sent_is_reconciled(contexts, demo_emulator, files) -> None:
    """The process died after writing document.pending and sending the create."""
    ctx = contexts()
    (pdf,) = files("a.pdf")
    record = doc_record(ctx, [pdf])
    sent = datetime.now(UTC).isoformat()
    made = ctx.itglue().create_document(record.organization_id, record.name)  # it landed
    result = sink(ctx).deliver(record, Journal({"document.pending": sent}))
    assert result.resource_id == made.id
    assert len(records(demo_emulator, "documents")) == 1


def test_pending_marker_without_a_document_creates_one(contexts, demo_emulator, files) -> None:
    ctx = contexts()
    (pdf,) = files("a.pdf")
    record = doc_record(ctx, [pdf])
    journal = Journal({"document.pending": datetime.now(UTC).isoformat()})
    result = sink(ctx).deliver(record, journal)
    assert [d["id"] for d in records(demo_emulator, "documents")] == [result.resource_id]


def test_a_same_named_document_with_other_files_is_not_adopted(contexts, demo_emulator, files):
    ctx = contexts()
    a, other = files("a.pdf", "other.pdf")
    record = doc_record(ctx, [a])
    foreign = ctx.itglue().create_document(record.organization_id, record.name)
    ctx.itglue().upload_attachment("documents", foreign.id, path=other, file_name="other.pdf")
    journal = Journal({"document.pending": datetime.now(UTC).isoformat()})
    result = sink(ctx).deliver(record, journal)
    assert result.resource_id != foreign.id
    assert len(records(demo_emulator, "documents")) == 2


def test_a_document_another_record_is_filling_is_not_adopted(contexts, demo_emulator, files):
    """Two records with the same name in one organization: B's lost create must not
    adopt the document A made a moment ago and has not attached its file to yet."""
    ctx = contexts()
    a, b = files("scan.pdf", "scan2.pdf")
    rec_a = doc_record(ctx, [a], name="Scan")
    rec_b = doc_record(ctx, [b], name="Scan").model_copy(update={"source_ref": "other"})
    s = sink(ctx)
    made = ctx.itglue().create_document(rec_a.organization_id, "Scan")
    journal_a = Journal({"document": made.id})
    s.deliver(rec_a.model_copy(update={"files": []}), journal_a)  # A holds its claim ...
    s.claim(made.id, rec_a)
    journal_b = Journal({"document.pending": datetime.now(UTC).isoformat()})
    result_b = s.deliver(rec_b, journal_b)
    assert result_b.resource_id != made.id
    # ... while a document nobody in this process claims is adopted
    orphan = ctx.itglue().create_document(rec_a.organization_id, "Scan")
    rec_c = rec_b.model_copy(update={"source_ref": "third"})
    result_c = sink(ctx).deliver(rec_c, Journal({"document.pending": "2000-01-01T00:00:00+00:00"}))
    assert result_c.resource_id == orphan.id


def test_too_large_fails_before_any_request(contexts, demo_emulator, files) -> None:
    ctx = contexts()
    (pdf,) = files("big.pdf")
    record = doc_record(ctx, [pdf])
    before = state(demo_emulator)["request_total"]
    with pytest.raises(PermanentError) as e:
        sink(ctx, max_file_size=100).deliver(record, Journal())
    assert "'big.pdf'" in e.value.reason and "over the upload limit of 100 bytes" in e.value.reason
    assert "[sinks.itglue] max_file_size" in e.value.reason
    assert state(demo_emulator)["request_total"] == before
    # [pipeline] max_file_size is the default limit
    ctx2 = contexts(pipeline={"max_file_size": 10})
    with pytest.raises(PermanentError, match="over the upload limit of 10 bytes"):
        sink(ctx2).deliver(record, Journal())


def test_organization_gone_is_permanent_and_actionable(contexts, files) -> None:
    ctx = contexts()
    (pdf,) = files("a.pdf")
    record = doc_record(ctx, [pdf]).model_copy(update={"organization_id": "987654"})
    with pytest.raises(PermanentError) as e:
        sink(ctx).deliver(record, Journal())
    assert "404" in e.value.reason and "987654" in e.value.reason
    assert "itglue-ingest retry" in e.value.reason


def test_deleted_half_made_document_starts_over(contexts, demo_emulator, files) -> None:
    ctx = contexts()
    (pdf,) = files("a.pdf")
    record = doc_record(ctx, [pdf])
    journal = Journal({"document": "424242"})  # a document that no longer exists
    with pytest.raises(TransientError, match="vanished"):
        sink(ctx).deliver(record, journal)
    result = sink(ctx).deliver(record, journal)
    assert [d["id"] for d in records(demo_emulator, "documents")] == [result.resource_id]


def test_rejected_key_is_transient_and_loud(contexts, demo_emulator, files, monkeypatch, caplog):
    ctx = contexts()
    (pdf,) = files("a.pdf")
    record = doc_record(ctx, [pdf])
    bad = contexts()
    monkeypatch.setenv("ITGLUE_TEST_API_KEY", "not-the-key")
    with pytest.raises(TransientError) as e:
        sink(bad).deliver(record, Journal())
    assert "refused the API key" in e.value.reason and e.value.retry_after == 300.0
    assert "not-the-key" not in e.value.reason
    assert any("deliveries are paused" in r.getMessage() for r in caplog.records)
    assert records(demo_emulator, "documents") == []


def test_server_errors_are_transient(contexts, demo_emulator, files) -> None:
    ctx = contexts()
    (pdf,) = files("a.pdf")
    record = doc_record(ctx, [pdf])
    demo_emulator.set_faults(errors=[{"rate": 1.0, "status": 503, "methods": ["POST"]}])
    journal = Journal()
    with pytest.raises(TransientError):
        sink(ctx).deliver(record, journal)
    demo_emulator.set_faults()
    result = sink(ctx).deliver(record, journal)  # reconciles (5xx may have committed)
    assert [d["id"] for d in records(demo_emulator, "documents")] == [result.resource_id]


def test_attachment_target(contexts, demo_emulator, files) -> None:
    routing = {
        "target": {
            "kind": "attachment",
            "resource_type": "configurations",
            "resource_name": "ACME-FW",
        }
    }
    ctx = contexts(routing)
    a, b = files("fw.pdf", "rack.png")
    record = doc_record(ctx, [a, b], sections=[Section(content="<p>dropped</p>")])
    assert record.target is not None and record.target.kind == "attachment"
    # a crash after the first upload landed, before the journal said so
    landed = ctx.itglue().upload_attachment(
        "configurations", record.target.resource_id, path=a, file_name="fw.pdf"
    )
    journal = Journal({"attachments.started": "1"})
    result = sink(ctx).deliver(record, journal)
    assert result.attachment_ids[0] == str(landed.id)
    fw = next(c for c in records(demo_emulator, "configurations") if c["name"] == "ACME-FW")
    assert (result.resource_type, result.resource_id) == ("configurations", fw["id"])
    assert records(demo_emulator, "documents") == []
    atts = records(demo_emulator, "attachments")
    assert sorted(x["id"] for x in atts) == sorted(result.attachment_ids)
    assert sink(ctx).find_existing(record) is None  # dedupe of attachments is the ledger's


def test_find_existing_respects_the_dedupe_scope(contexts, demo_emulator, files) -> None:
    ctx = contexts()
    (pdf,) = files("a.pdf")
    record = doc_record(ctx, [pdf])
    result = sink(ctx).deliver(record, Journal())
    other_org = doc_record(ctx, [pdf], organization="Globex")
    assert sink(ctx).find_existing(other_org) is None
    glob = contexts(pipeline={"dedupe_scope": "global"})
    assert sink(glob).find_existing(other_org) == f"documents/{result.resource_id}"
    changed = record.model_copy(update={"sections": [Section(content="<p>new</p>")]})
    assert sink(ctx).find_existing(changed) is None


def test_unrouted_record_is_a_clear_failure(contexts, files) -> None:
    ctx = contexts()
    (pdf,) = files("a.pdf")
    record = DocumentRecord(source="s", source_ref="r", name="n", files=[make_blob(pdf)])
    with pytest.raises(PermanentError, match="add 'route' to \\[pipeline\\] transforms"):
        sink(ctx).deliver(record, Journal())
    attach = record.model_copy(
        update={"target": Target(kind="attachment", resource_type="configurations")}
    )
    with pytest.raises(PermanentError, match="no resource id"):
        sink(ctx).deliver(attach, Journal())
