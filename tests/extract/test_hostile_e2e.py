"""Hostile files through the real engine (drop folder -> default pipeline -> emulator):
a zip-bomb DOCX, a PDF whose page tree points to itself, a 5,000-page PDF and an
encrypted PDF each land as a document with the file attached byte for byte and a note
saying what happened to its text, next to an ordinary file that lands with its text.
(The extractors' own reactions to these files are in ``test_formats_hostile.py``.)"""

from __future__ import annotations

import time
from pathlib import Path

from itglue_emulator import Emulator
from pipeline.settings import Settings
from pipeline.testing import RunOnce, with_sections

from .pdf_samples import text_pdf
from .test_formats_hostile import CORPUS, bomb_docx, encrypted

ORG = "Acme Corp"
LOOPING_PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF"
)


def test_hostile_files_land_with_their_attachment_and_a_note(
    itglue_emulator: Emulator, ingest_settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    bomb_docx(folder / "bomb.docx", 32 << 20)
    (folder / "looping.pdf").write_bytes(LOOPING_PDF)
    pages = [[(11, f"Page {i} of the archive")] for i in range(1, 5001)]
    (folder / "archive.pdf").write_bytes(text_pdf(pages))
    (folder / "locked.pdf").write_bytes(encrypted(CORPUS / "pdfminer.six/base.pdf", "pw", "o"))
    (folder / "ordinary.txt").write_text("An ordinary note about the backup of dc01.\n")
    dropped = {p.name: p.read_bytes() for p in folder.iterdir()}
    source = {
        "type": "filesystem",
        "path": str(folder),
        "organization": ORG,
        "after": "keep",
        "stability_delay": 0,
    }
    extract = {"timeout": 30, "workers": 2, "max_pages": 50}
    run_once = RunOnce(
        itglue_emulator, with_sections(ingest_settings, transforms={"extract": extract})
    )

    started = time.monotonic()
    landed = run_once(source, organizations=[ORG])
    took = time.monotonic() - started

    assert landed.failures == {}
    by_file = {name: doc for doc in landed.documents for name in doc.attachments}
    assert sorted(by_file) == sorted(dropped)
    for name, data in dropped.items():
        assert by_file[name].attachments == {name: data}, name
    text = {name: "\n".join(doc.sections) for name, doc in by_file.items()}
    for name, why in (
        ("bomb.docx", "The text could not be extracted"),
        ("looping.pdf", "malformed PDF"),
        ("locked.pdf", "encrypted PDF"),
        ("archive.pdf", "first 50 of 5,000 pages"),
    ):
        assert why in text[name], f"{name}: {text[name][:500]}"
    assert "Page 50 of the archive" in text["archive.pdf"]
    assert "Page 51 " not in text["archive.pdf"]
    assert "backup of dc01" in text["ordinary.txt"]
    print(f"5 files, 4 of them hostile, landed in {took:.1f} s")
