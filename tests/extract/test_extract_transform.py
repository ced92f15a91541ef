"""The ``extract`` transform on its own (real worker processes, real libmagic): what it
puts on the record, what it counts for the metrics, what it leaves alone."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from pipeline import DocumentRecord
from pipeline.plugins import get_plugin_manager
from pipeline.testing import EngineContexts, make_record, make_transform
from tests.extract import extract_plugins


def transformed(engine_context: EngineContexts, *records: DocumentRecord) -> tuple[list, dict]:
    pm = get_plugin_manager(load_entrypoints=False, extra=[extract_plugins])
    context = engine_context(pm=pm, transforms={"extract": {"workers": 1}})
    mime, extract = make_transform("mime", context), make_transform("extract", context)
    try:
        out = [extract.apply(mime.apply(r)) for r in records]
    finally:
        extract.close()
    return out, context.tally.snapshot().extractions


def test_outcomes_on_the_record_and_in_the_metrics(
    engine_context: EngineContexts, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "locked.json").write_text(json.dumps({"hostile": "refuse"}))
    (tmp_path / "backup.gz").write_bytes(gzip.compress(b"x" * 100, mtime=0))
    records = [
        make_record(tmp_path / name, name=name, source="drop")
        for name in ("notes.txt", "locked.json", "backup.gz")
    ]
    (ok, refused, skipped), counted = transformed(engine_context, *records)
    assert ok.metadata["extract"]["status"] == "ok"
    assert ok.metadata["extract_text"] == "hello"
    assert ok.metadata["transform_outcomes"] == {"extract": "ok"}
    assert refused.metadata["extract"]["reason"] == "the file is encrypted"
    assert [s.content for s in refused.sections] == [
        "<p><em>The text could not be extracted: the file is encrypted.</em></p>"
    ]
    assert skipped.metadata["extract"] == {"status": "unsupported", "mime": "application/gzip"}
    assert skipped.sections == [] and [f.sha256 for f in skipped.files] == [
        f.sha256 for f in records[2].files
    ]
    assert counted == {
        ("drop", "text", "extracted"): 1,
        ("drop", "test-description", "failed"): 1,
        ("drop", "none", "skipped"): 1,
    }


def test_a_record_with_sections_is_left_as_it_is(
    engine_context: EngineContexts, tmp_path: Path
) -> None:
    """A mail: its body is the content; its attachments are not extracted into it."""
    (tmp_path / "attached.txt").write_text("attachment text\n")
    mail = make_record(tmp_path / "attached.txt", sections=["<p>the mail body</p>"])
    (out,), counted = transformed(engine_context, mail)
    assert [s.content for s in out.sections] == ["<p>the mail body</p>"]
    assert "extract" not in out.metadata and counted == {}


def test_the_same_file_gives_the_same_sections_and_content_hash(
    engine_context: EngineContexts, tmp_path: Path
) -> None:
    """Deterministic: a record extracted again after a crash is the same record."""
    spec = {
        "parts": [{"heading": "A", "text": "a", "picture": True}, {"heading": "B", "text": "b"}]
    }
    (tmp_path / "doc.json").write_text(json.dumps(spec))
    first, second = (make_record(tmp_path / "doc.json", name="doc") for _ in range(2))
    (one, two), _ = transformed(engine_context, first, second)
    assert one.sections == two.sections and one.content_hash == two.content_hash
    assert one.content_hash != first.content_hash  # the sections are part of the content
