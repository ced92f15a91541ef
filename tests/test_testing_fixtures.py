"""The helpers ``pipeline.testing`` ships for plugin authors: ``run_once`` reports what
really landed in the emulator (and nothing else), ``engine_context`` and the record
builders give what the engine would give."""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path
from typing import Any

from itglue_emulator import Emulator
from pipeline import FileInput, RecordDraft, Section, Source, SourceOptions, hookimpl
from pipeline.settings import Settings, SourceSettings
from pipeline.testing import (
    EngineContexts,
    LandedAttachment,
    LandedDocument,
    RunOnce,
    make_blob,
    make_record,
    make_transform,
)


class ItemOptions(SourceOptions):
    items: list[dict[str, str]]


class ItemSource(Source):
    """One record per configured item: ``text`` a section, ``file`` an attachment, and
    ``bad`` a record the source fails itself with that reason."""

    options_model = ItemOptions

    def scan(self) -> None:
        for item in self.options.items:
            draft = RecordDraft(
                source_ref=item["name"],
                name=item["name"],
                sections=[Section(content=f"<p>{item['text']}</p>")] if "text" in item else [],
                files=[FileInput(Path(item["file"]).name, path=Path(item["file"]))]
                if "file" in item
                else [],
                organization=item.get("organization"),
            )
            if "bad" in item:
                self.context.fail(draft, item["bad"])
            else:
                self.context.emit(draft)


class ItemPlugin:
    @hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        register("items", ItemSource)


PLUGIN = [ItemPlugin()]


def items(*entries: dict[str, str]) -> dict[str, Any]:
    return {"type": "items", "items": list(entries)}


def test_run_once_reports_the_documents_that_landed_with_their_content(
    run_once: RunOnce, itglue_emulator: Emulator, tmp_path: Path
) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4 report\n%%EOF\n")
    table = items(
        {"name": "Report", "text": "see file", "file": str(pdf)},
        {"name": "Note", "text": "hello", "organization": "Globex"},
    )
    table["organization"] = "Acme"

    landed = run_once(table, organizations=["Acme", "Globex"], plugins=PLUGIN)

    assert landed.ok and landed.failures == {}
    assert (landed.summary.delivered, landed.summary.failed) == (2, 0)
    assert landed.documents == [
        LandedDocument("Note", "Globex", ["<p>hello</p>"]),
        LandedDocument("Report", "Acme", ["<p>see file</p>"], {"report.pdf": pdf.read_bytes()}),
    ]
    # what it reports is what the emulator holds, ids included
    stored = {d["id"]: d for d in itglue_emulator.records("documents")}
    assert {d.id for d in landed.documents} == set(stored)
    report = landed.documents[1]
    assert str(stored[report.id]["organization-id"]) == report.organization_id
    assert landed.attachments == [
        LandedAttachment("documents", report.id, "report.pdf", pdf.read_bytes())
    ]


def test_a_second_run_reports_only_what_it_landed(
    run_once: RunOnce, itglue_emulator: Emulator
) -> None:
    table = items({"name": "Note", "text": "hello"})
    table["organization"] = "Acme"
    assert len(run_once(table, organizations=["Acme"], plugins=PLUGIN).documents) == 1

    again = run_once(table, organizations=["Acme"], plugins=PLUGIN)  # same state dir

    assert again.documents == [] and again.attachments == []
    assert again.summary.delivered == 0
    # the organization was created once, not once per call
    assert [o["name"] for o in itglue_emulator.records("organizations")] == ["Acme"]

    table["items"].append({"name": "Later", "text": "new"})
    third = run_once(table, plugins=PLUGIN)
    assert third.documents == [LandedDocument("Later", "Acme", ["<p>new</p>"])]


def test_run_once_reports_failures_with_their_reasons(run_once: RunOnce) -> None:
    table = items(
        {"name": "Fine", "text": "ok", "organization": "Acme"},
        {"name": "Broken", "bad": "item 2: no body"},
        {"name": "Lost", "text": "x", "organization": "Nowhere Inc"},
    )

    landed = run_once(table, organizations=["Acme"], plugins=PLUGIN)

    assert not landed.ok
    assert [d.name for d in landed.documents] == ["Fine"]
    assert set(landed.failures) == {"Broken", "Lost"}
    assert landed.failures["Broken"] == "item 2: no body"
    assert "Nowhere Inc" in landed.failures["Lost"]


def test_run_once_runs_what_ingest_settings_holds(
    run_once: RunOnce, ingest_settings: Settings
) -> None:
    """The fixtures compose: a source added to ``ingest_settings`` runs too, and sections
    passed to run_once change only the keys given."""
    ingest_settings.sources.append(
        SourceSettings.model_validate(
            {**items({"name": "From settings", "text": "s"}), "name": "mine"}
        )
    )
    landed = run_once(
        items({"name": "From call", "text": "c"}),
        organizations=["Acme"],
        plugins=PLUGIN,
        routing={"fallback_organization": "Acme"},
        transforms=["route"],
    )
    assert [(d.name, d.organization) for d in landed.documents] == [
        ("From call", "Acme"),
        ("From settings", "Acme"),
    ]
    assert set(landed.summary.by_source) == {"items", "mine"}


def test_engine_context_is_on_the_emulator_with_the_sections_given(
    engine_context: EngineContexts, itglue_emulator: Emulator, ingest_state_dir: Path
) -> None:
    ctx = engine_context(pipeline={"max_file_size": 10})
    assert ctx.limits.max_file_size == 10
    assert ctx.limits.retry_max == Settings().pipeline.retry_max  # others kept
    assert ctx.state_dir == ingest_state_dir
    ctx.itglue().create_organization("Acme")  # a real client on the emulator
    assert [o["name"] for o in itglue_emulator.records("organizations")] == ["Acme"]
    routed = engine_context({"fallback_organization": "Acme"})  # the [routing] table
    route = make_transform("route", routed)
    assert route.apply(make_record(name="No organization")).organization == "Acme"


def test_make_record_and_make_blob_are_what_the_engine_builds(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(b"%PDF-1.4\n")
    blob = make_blob(path, claimed_mime="application/pdf")
    assert (blob.file_name, blob.path, blob.size) == ("scan.pdf", path, 9)
    assert blob.sha256 == hashlib.sha256(b"%PDF-1.4\n").hexdigest()
    assert blob.claimed_mime == "application/pdf"

    record = make_record(path, blob, name="Scan", sections=["<p>a</p>"], organization="Acme")
    assert (record.source, record.source_ref, record.name) == ("test", "Scan", "Scan")
    assert record.files == [make_blob(path), blob]
    assert record.sections == [Section(content="<p>a</p>")]
    assert record.organization == "Acme"
    assert make_record().files == [] and make_record().name == "A record"


ROOT = Path(__file__).parents[1]
EXAMPLE_TEST = ROOT / "examples" / "itglue-ingest-example-source" / "tests" / "test_tickets.py"


def _tutorial_code_blocks() -> list[str]:
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = text[text.index("### 6. Test it") : text.index("## Hook reference")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_documented_plugin_test_is_the_example_s_and_fits_in_15_lines() -> None:
    """The tutorial shows the example plugin's real test: at most 15 lines, importing
    only from ``pipeline`` and ``pipeline.testing``."""
    code = EXAMPLE_TEST.read_text(encoding="utf-8")
    assert _tutorial_code_blocks()[0] == code
    assert len(code.splitlines()) <= 15
    imports = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = {a.name for n in imports if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in imports if isinstance(n, ast.ImportFrom)}
    assert modules <= {"pipeline", "pipeline.testing"}, modules


def test_the_documented_transform_test_runs(engine_context: EngineContexts, tmp_path: Path) -> None:
    namespace: dict[str, Any] = {}
    exec(_tutorial_code_blocks()[1], namespace)  # noqa: S102 -- the tutorial's own code
    [test] = [f for name, f in namespace.items() if name.startswith("test_")]
    test(engine_context, tmp_path)
