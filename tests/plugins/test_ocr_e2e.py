"""OCR through the real engine (drop folder -> extract in worker processes -> emulator):
a scan's text becomes its sections next to the attached original; on a machine without
Tesseract the same files land attached with a note, after one warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from itglue_emulator import Emulator
from pipeline.settings import Settings
from pipeline.testing import RunOnce
from tests.plugins.ocr_samples import render_page, save_pages, word_score

ORG = "Acme Corp"
TEXT = "Rack B holds the backup appliance and the core switch of the Riverside office."


def drop(tmp_path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    folder = tmp_path / "drop"
    folder.mkdir()
    render_page(TEXT).save(folder / "IMG_2041.png", dpi=(300, 300))
    save_pages([render_page(TEXT)], folder / "scan_0001.pdf")
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    table = {
        "type": "filesystem",
        "path": str(folder),
        "organization": ORG,
        "after": "keep",
        "stability_delay": 0,
    }
    return table, files


def test_scans_land_with_their_text_as_sections(
    itglue_emulator: Emulator, ingest_settings: Settings, tmp_path: Path
) -> None:
    source, files = drop(tmp_path)

    landed = RunOnce(itglue_emulator, ingest_settings)(source, organizations=[ORG])

    assert landed.failures == {}
    assert {d.name for d in landed.documents} == {"IMG 2041", "scan 0001"}
    for doc in landed.documents:
        score = word_score(TEXT, " ".join(doc.sections))
        print(f"{doc.name}: {score:.1%} of the words in its sections")
        assert score >= 0.9
        (file_name,) = doc.attachments
        assert doc.attachments[file_name] == files[file_name]  # the original, byte for byte


def test_without_tesseract_scans_land_attached_with_a_note_and_one_warning(
    itglue_emulator: Emulator,
    ingest_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source, files = drop(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tesseract-here"))

    with caplog.at_level(logging.WARNING):
        landed = RunOnce(itglue_emulator, ingest_settings)(source, organizations=[ORG])

    assert landed.failures == {}
    assert len(landed.documents) == 2
    for doc in landed.documents:
        assert any("OCR skipped: Tesseract is not installed" in s for s in doc.sections)
        (file_name,) = doc.attachments
        assert doc.attachments[file_name] == files[file_name]
    warned = [r for r in caplog.records if "Tesseract is not installed" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
