"""OCR extractors (plugins/extract/ocr.py) with the real Tesseract: pages rendered from a
known text, a real scan, German, searchable PDFs, and a machine without Tesseract.

OCR is CPU-heavy: every test OCRs as little as shows its point (about 20 s of CPU in all).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from pipeline import ExtractLimits, Heading, Html
from pipeline.extraction import ExtractorRegistry, RegisterExtractor
from plugins.extract import ocr
from plugins.extract.ocr import extract_image, extract_pdf, paragraphs
from tests.extract.pdf_samples import text_pdf
from tests.extract.test_formats_hostile import encrypted
from tests.plugins.ocr_samples import (
    ENGLISH,
    GERMAN,
    REAL_SCAN,
    REAL_SCAN_TEXT,
    render_page,
    save_pages,
    word_score,
)


def html_text(blocks: tuple[object, ...]) -> str:
    return " ".join(b.html for b in blocks if isinstance(b, Html))


def test_a_multi_page_tiff_rendered_from_a_known_text_gives_its_words(tmp_path: Path) -> None:
    half = len(ENGLISH) // 2
    cut = ENGLISH.rindex(" ", 0, half)
    first, second = ENGLISH[:cut], ENGLISH[cut + 1 :]
    tiff = save_pages([render_page(first), render_page(second)], tmp_path / "IMG_2041.tiff")

    got = extract_image(tiff, ExtractLimits())

    score = word_score(ENGLISH, got.text)
    print(f"rendered multi-page TIFF: {score:.1%} of the words")
    assert score >= 0.9
    assert got.pages == 2
    # a heading per page, so a technician finds the page in the attachment
    assert [b.text for b in got.blocks if isinstance(b, Heading)] == ["Page 1", "Page 2"]
    assert word_score(first, html_text(got.blocks[:2])) >= 0.9
    assert word_score(second, html_text(got.blocks[2:])) >= 0.9


def test_a_scanned_pdf_is_rendered_and_ocrd(tmp_path: Path) -> None:
    pdf = save_pages([render_page(ENGLISH)], tmp_path / "scan_0001.pdf")

    got = extract_pdf(pdf, ExtractLimits())

    score = word_score(ENGLISH, got.text)
    print(f"rendered scanned PDF: {score:.1%} of the words")
    assert score >= 0.9
    assert got.pages == 1 and got.replacement is None and got.note is None
    assert not any(isinstance(b, Heading) for b in got.blocks)  # one page: no page heading


def test_ocr_out_of_time_keeps_the_pages_read_and_says_so(tmp_path: Path) -> None:
    """A long scan stops at the time budget with the text read so far (not a worker
    killed at the timeout with no text at all); at least one page is always read."""
    pages = [render_page("First page of the contract"), render_page("Second page")]
    tiff = save_pages(pages, tmp_path / "scan.tiff")
    pdf = save_pages(pages, tmp_path / "scan.pdf")
    out_of_time = ExtractLimits(seconds=0.0)

    for got in (extract_image(tiff, out_of_time), extract_pdf(pdf, out_of_time)):
        assert "contract" in got.text and "Second" not in got.text
        assert got.note == (
            "OCR stopped after 1 of 2 pages: the time budget ran out ([transforms.extract] timeout)"
        )
    assert "Second" in extract_image(tiff, ExtractLimits()).text  # the default budget suffices


def test_the_budget_is_three_quarters_of_the_timeout() -> None:
    from plugins.extract.options import ExtractOptions

    assert ExtractOptions(timeout=100).limits().seconds == 75.0
    assert ExtractOptions().timeout == 180.0


def test_german_needs_and_gets_the_german_language_data(tmp_path: Path) -> None:
    png = tmp_path / "IMG_0007.png"
    render_page(GERMAN).save(png, dpi=(300, 300))

    got = extract_image(png, ExtractLimits(ocr_languages=("deu",)))

    score = word_score(GERMAN, got.text)
    print(f"German (ocr_languages=['deu']): {score:.1%} of the words")
    assert score >= 0.9
    assert "Größe" in got.text and "Übermorgen" in got.text


def test_a_real_scan_becomes_text_and_a_searchable_pdf(tmp_path: Path) -> None:
    original = REAL_SCAN.read_bytes()
    reference = REAL_SCAN_TEXT.read_text("utf-8")

    got = extract_pdf(REAL_SCAN, ExtractLimits(searchable_pdf=True))

    score = word_score(reference, got.text)
    print(f"real scan (linn.pdf, via ocrmypdf): {score:.1%} of the words")
    assert score >= 0.9
    assert "LinnSequencer" in html_text(got.blocks)
    assert REAL_SCAN.read_bytes() == original  # the input is left alone
    # the replacement is the same page with a text layer
    assert got.replacement is not None and got.replacement.startswith(b"%PDF")
    searchable = pdfium.PdfDocument(got.replacement)
    assert len(searchable) == 1
    layer = searchable[0].get_textpage().get_text_range()
    assert word_score(reference, layer) >= 0.9
    assert searchable[0].get_size() == pdfium.PdfDocument(original)[0].get_size()


def test_the_searchable_copy_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    """A record retried after a crash must get the same file (it is part of what makes a
    duplicate): ocrmypdf's run-time stamps, random layer names and /ID are normalised."""
    scan = save_pages([render_page("Patch panel B")], tmp_path / "scan_0002.pdf")
    first = extract_pdf(scan, ExtractLimits(searchable_pdf=True))
    again = extract_pdf(scan, ExtractLimits(searchable_pdf=True))
    assert first.replacement is not None and first.replacement == again.replacement
    assert (
        "Patch panel B" in pdfium.PdfDocument(first.replacement)[0].get_textpage().get_text_range()
    )


def test_without_tesseract_ocr_is_skipped_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    png = tmp_path / "IMG_0001.png"
    render_page("Nothing will read this").save(png)
    scanned = save_pages([render_page("Nor this")], tmp_path / "scan.pdf")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # tesseract is not on it
    registry = ExtractorRegistry()

    with caplog.at_level(logging.WARNING, logger="itglue_ingest.extract.ocr"):
        ocr.ingest_register_extractors(register=RegisterExtractor(registry))
        results = [extract_image(png, ExtractLimits()), extract_pdf(scanned, ExtractLimits())]

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Tesseract is not installed" in warnings[0] and "tesseract-ocr" in warnings[0]
    for got in results:
        assert got.blocks == () and got.text == ""
        assert got.note is not None and got.note.startswith("OCR skipped: Tesseract is not")
    assert registry.lookup("image/png") is not None  # still registered: files get the note


def test_a_missing_language_is_named_with_its_package(tmp_path: Path) -> None:
    png = tmp_path / "IMG_0002.png"
    render_page("Bonjour").save(png)

    got = extract_image(png, ExtractLimits(ocr_languages=("eng", "fra")))

    assert got.note is not None
    assert "no language data for fra" in got.note and "tesseract-ocr-fra" in got.note


def test_ocr_off_in_the_options_reads_nothing_and_notes_nothing(tmp_path: Path) -> None:
    png = tmp_path / "IMG_0003.png"
    render_page("Unread").save(png)
    got = extract_image(png, ExtractLimits(ocr=False))
    assert got == type(got)(blocks=(), text="", title=None, note=None, pages=1)


def test_an_unreadable_image_is_an_extraction_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    with pytest.raises(ocr.ExtractionError, match="image"):
        extract_image(bad, ExtractLimits())


def no_tesseract(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tesseract-here"))


def test_a_pdf_with_a_text_layer_is_read_not_ocrd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(text_pdf([[(18, "Backup policy")], [(11, "Nightly to the NAS.")]]))
    no_tesseract(monkeypatch, tmp_path)  # OCR would leave a note: none is needed

    got = extract_pdf(pdf, ExtractLimits())

    assert "Nightly to the NAS." in got.text and got.note is None and got.pages == 2


def test_a_mixed_pdf_gets_its_scanned_pages_ocrd_after_its_text(tmp_path: Path) -> None:
    typed = pdfium.PdfDocument(text_pdf([[(11, "Typed cover letter for the audit.")]]))
    scan = pdfium.PdfDocument(save_pages([render_page(GERMAN[:60])], tmp_path / "scan.pdf"))
    typed.import_pages(scan)
    mixed = tmp_path / "mixed.pdf"
    typed.save(mixed)

    got = extract_pdf(mixed, ExtractLimits(ocr_languages=("deu",)))

    assert got.text.startswith("Typed cover letter for the audit.")
    assert word_score(GERMAN[:60], got.text) >= 0.9
    assert [b.text for b in got.blocks if isinstance(b, Heading)][-1] == "Scanned page 2"


def test_blank_pages_are_not_ocrd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blank = pdfium.PdfDocument.new()
    for _ in range(3):
        blank.new_page(612, 792)
    path = tmp_path / "blank.pdf"
    blank.save(path)
    no_tesseract(monkeypatch, tmp_path)
    got = extract_pdf(path, ExtractLimits())
    assert (got.text, got.note, got.pages) == ("", None, 3)


def test_an_encrypted_or_broken_pdf_gets_the_text_layer_reason(tmp_path: Path) -> None:
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(encrypted(save_pages([render_page("x")], tmp_path / "s.pdf"), "pw", "o"))
    with pytest.raises(ocr.ExtractionError, match=r"^encrypted PDF$"):
        extract_pdf(locked, ExtractLimits())
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\ngarbage")
    with pytest.raises(ocr.ExtractionError, match=r"^malformed PDF"):
        extract_pdf(broken, ExtractLimits())


def test_paragraphs_join_lines_and_broken_words() -> None:
    text = "First line of a para-\ngraph goes on\n\n\nSecond one\f\nThird\n"
    assert paragraphs(text) == ["First line of a paragraph goes on", "Second one", "Third"]
    assert paragraphs("state-of-the-\nArt") == ["state-of-the- Art"]  # not a broken word
