"""``itglue-ingest extract FILE``: the sections a file would become, nothing uploaded."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from click.testing import CliRunner

from pipeline.commands.extract import extract


def test_extract_prints_the_sections_and_writes_a_preview(tmp_path: Path) -> None:
    md = tmp_path / "runbook.markdown"
    md.write_text("# Restore\n\nStop the **service** first.\n")
    preview = tmp_path / "out.html"
    result = CliRunner().invoke(extract, [str(md), "--preview", str(preview)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "<h1>Restore</h1>",
        "<p>Stop the <strong>service</strong> first.</p>",
    ]
    assert "runbook.markdown: text/markdown, ok by markdown, 2 section(s)" in result.stderr
    page = preview.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<h1>Restore</h1>" in page
    assert "<li>runbook.markdown</li>" in page  # the attachment it would keep


def test_extract_json_and_a_file_without_an_extractor(tmp_path: Path) -> None:
    html = tmp_path / "page.html"
    html.write_text("<body><p onclick='x()'>hi</p><script>steal()</script></body>")
    result = CliRunner().invoke(extract, [str(html), "--json"])
    data = json.loads(result.stdout)
    assert data["extract"]["status"] == "ok"
    assert data["sections"] == [{"type": "Document::Text", "level": None, "html": "<p>hi</p>"}]
    blob = tmp_path / "data.gz"
    blob.write_bytes(gzip.compress(b"backup " * 100, mtime=0))
    result = CliRunner().invoke(extract, [str(blob)])
    assert result.exit_code == 0 and result.stdout == ""
    assert "data.gz: application/gzip, unsupported, 0 section(s)" in result.stderr


def test_extract_refuses_what_the_mime_policy_denies(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    result = CliRunner().invoke(extract, [str(empty)])
    assert result.exit_code == 1
    assert "inode/x-empty" in result.output and "deny" in result.output
