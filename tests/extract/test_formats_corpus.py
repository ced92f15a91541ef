"""The format extractors on real-world files the project did not write
(``tests/data/corpus``, sources in ``tests/data/SOURCES.md``): known phrases, headings,
pictures, tables and notes. The extractors are plain functions, called directly here; the
drop folder to emulator path is ``test_formats_e2e.py``."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pptx
import pytest
from pptx.util import Inches

from pipeline import Extracted, ExtractionError, ExtractLimits, Heading, Html, Picture
from plugins.extract.eml import extract_eml
from plugins.extract.pdf import extract_pdf_text
from plugins.extract.sheets import extract_csv, extract_xlsx
from plugins.extract.slides import extract_pptx
from plugins.extract.word import extract_docx

DATA = Path(__file__).resolve().parent.parent / "data"
CORPUS = DATA / "corpus"
LIMITS = ExtractLimits()


def html_of(extracted: Extracted) -> str:
    return "".join(b.html for b in extracted.blocks if isinstance(b, Html))


def headings(extracted: Extracted) -> list[tuple[str, int]]:
    return [(b.text, b.level) for b in extracted.blocks if isinstance(b, Heading)]


def pictures(extracted: Extracted) -> list[Picture]:
    return [b for b in extracted.blocks if isinstance(b, Picture)]


# --------------------------------------------------------------------------- DOCX


def test_docx_heading_becomes_a_heading_block_and_titles_the_document() -> None:
    got = extract_docx(CORPUS / "python-docx/test.docx", LIMITS)
    assert got.blocks[0] == Heading("python-docx was here!", 1)
    assert "<p>python-docx was here too!</p>" in html_of(got)
    assert got.title == "python-docx was here!"  # core title empty: the first heading


def test_docx_pictures_stand_where_they_stood() -> None:
    got = extract_docx(CORPUS / "python-docx/shp-inline-shape-access.docx", LIMITS)
    found = pictures(got)
    # three pictures in the file; the second is linked to a file on its author's Mac,
    # which mammoth (rightly) does not open
    assert [p.mime for p in found] == ["image/png", "image/jpeg"]
    assert found[0].data.startswith(b"\x89PNG") and found[1].data.startswith(b"\xff\xd8")
    assert len({p.name for p in found}) == 2


def test_docx_links_lists_tables_and_bold() -> None:
    links = html_of(extract_docx(CORPUS / "python-docx/par-hyperlinks.docx", LIMITS))
    assert '<a href="http://python.org/">second one</a>' in links
    listed = html_of(extract_docx(CORPUS / "python-docx/num-having-numbering-part.docx", LIMITS))
    assert "<ol><li>Paragraph having List Number style.</li></ol>" in listed
    tables = extract_docx(CORPUS / "python-docx/tbl-having-applied-style.docx", LIMITS)
    assert html_of(tables).count("<table>") >= 2
    assert "and a hearty foo to you too sir!" in tables.text
    bold = html_of(extract_docx(CORPUS / "python-docx/run-char-style.docx", LIMITS))
    assert "<strong>Last run having Strong style.</strong>" in bold


def test_docx_title_from_core_properties() -> None:
    assert extract_docx(CORPUS / "python-docx/doc-coreprops.docx", LIMITS).title == "Title"


# --------------------------------------------------------------------------- PDF


def test_pdf_text_layer_paragraphs() -> None:
    got = extract_pdf_text(CORPUS / "pdfminer.six/simple1.pdf", LIMITS)
    assert got.pages == 1 and got.note is None
    assert "<p>Hello</p><p>World</p>" in html_of(got)
    statement = extract_pdf_text(CORPUS / "pdfminer.six/2b.pdf", LIMITS)
    assert "Booked balance" in statement.text and "01/14/2016" in statement.text


def test_pdf_japanese_lines_join_without_spaces() -> None:
    got = extract_pdf_text(CORPUS / "pdfminer.six/jo.pdf", LIMITS)
    assert "みんなのおのおののなかのすべてですから" in got.text


def test_pdf_scan_without_text_layer_is_left_to_ocr() -> None:
    got = extract_pdf_text(CORPUS / "pdfminer.six/pdf-with-jbig2.pdf", LIMITS)
    assert got == Extracted(blocks=(), text="", title=None, note=None, pages=1)


def test_pdf_encrypted_with_a_user_password_is_refused() -> None:
    with pytest.raises(ExtractionError, match=r"^encrypted PDF$"):
        extract_pdf_text(CORPUS / "pdfminer.six/aes-128.pdf", LIMITS)
    # the same document unencrypted
    assert extract_pdf_text(CORPUS / "pdfminer.six/base.pdf", LIMITS).text == "Secret!"


# --------------------------------------------------------------------------- XLSX, CSV


def test_xlsx_a_heading_and_a_table_per_sheet() -> None:
    got = extract_xlsx(CORPUS / "csvkit/sheets.xlsx", LIMITS)
    assert headings(got) == [("not this one", 2), ("data", 2), ("ʤ", 2)]
    markup = html_of(got)
    assert "<th>text</th><th>date</th><th>integer</th>" in markup
    assert "<td>Chicago Reader</td><td>1971-01-01</td><td>40</td><td>TRUE</td>" in markup
    assert "Extra data beyond headers will be trimmed" in got.text
    assert got.note is None


def test_xlsx_real_data_is_cut_at_max_rows_with_a_note() -> None:
    got = extract_xlsx(CORPUS / "csvkit/ne_1033_data.xlsx", LIMITS)
    assert html_of(got).count("<tr>") == 1000
    assert got.note == (
        "NE data: cut at 1,000 of 1,037 rows (max_rows/max_columns);"
        " the attached file has all of it"
    )
    assert "RIFLE,7.62 MILLIMETER" in got.text
    narrow = extract_xlsx(CORPUS / "csvkit/ne_1033_data.xlsx", ExtractLimits(max_columns=3))
    assert "<th>state</th><th>county</th><th>fips</th></tr>" in html_of(narrow)
    assert "3 of 14 columns" in (narrow.note or "")


def test_xlsx_embedded_in_a_presentation() -> None:
    got = extract_xlsx(CORPUS / "python-pptx/shp-embedded-xlsx.xlsx", LIMITS)
    assert "<th>1</th>" in html_of(got) and "<td>3</td>" in html_of(got)


def test_csv_encodings_and_real_data() -> None:
    latin1 = extract_csv(CORPUS / "csvkit/test_latin1.csv", LIMITS)
    assert "<td>©</td>" in html_of(latin1)
    utf16 = extract_csv(CORPUS / "csvkit/test_utf16_little.csv", LIMITS)
    assert "<td>ʤ</td>" in html_of(utf16)
    grants = extract_csv(CORPUS / "csvkit/FY09_EDU_Recipients_by_State.csv", LIMITS)
    assert "<th>Montgomery GI Bill-Active Duty</th>" in html_of(grants)
    assert "<td>ALABAMA</td><td>AL</td><td>01</td><td>6,718</td>" in html_of(grants)
    big = extract_csv(CORPUS / "csvkit/ks_1033_data.csv", LIMITS)
    assert big.note is not None and big.note.startswith("the table: cut at 1,000 of 1,")


def test_csv_semicolons_as_european_excel_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("Kunde;Straße;Betrag\nMüller GmbH;Hauptstraße 5;1.234,50\n".encode("cp1252"))
    got = extract_csv(path, LIMITS)
    assert "<td>Müller GmbH</td><td>Hauptstraße 5</td><td>1.234,50</td>" in html_of(got)


# --------------------------------------------------------------------------- PPTX


def test_pptx_a_heading_per_slide_with_its_text_and_notes() -> None:
    deck = extract_pptx(CORPUS / "python-pptx/test.pptx", LIMITS)
    assert headings(deck) == [("Slide 1: Presentation Title Text", 2)]
    assert "<p>Subtitle Text</p>" in html_of(deck)
    assert deck.title == "Presentation Title Text"  # core title is the default one
    notes = extract_pptx(CORPUS / "python-pptx/sld-notes.pptx", LIMITS)
    assert headings(notes) == [("Slide 1", 2), ("Slide 2", 2)]
    assert "<p><em>Notes:</em></p><p>Notes</p>" in html_of(notes)
    assert notes.pages == 2


def test_pptx_pictures_and_tables() -> None:
    deck = extract_pptx(CORPUS / "python-pptx/shp-picture.pptx", LIMITS)
    assert [type(b).__name__ for b in deck.blocks] == [
        "Heading", "Picture", "Picture", "Heading", "Picture", "Picture"
    ]  # fmt: skip
    assert all(p.mime == "image/png" and p.data.startswith(b"\x89PNG") for p in pictures(deck))
    tables = extract_pptx(CORPUS / "python-pptx/tbl-cell.pptx", LIMITS)
    assert "<td>unladen swallows</td>" in html_of(tables)
    text = extract_pptx(CORPUS / "python-pptx/txt-text.pptx", LIMITS)
    assert "<td>Text run in table cell</td>" in html_of(text)
    assert "<p>Foo Bar</p><p>Baz Zoo</p>" in html_of(text)  # a vertical tab is a line break


def test_pptx_slides_beyond_max_pages_are_noted() -> None:
    got = extract_pptx(CORPUS / "python-pptx/sld-notes.pptx", ExtractLimits(max_pages=1))
    assert headings(got) == [("Slide 1", 2)]
    assert got.note is not None and got.note.startswith("the first 1 of 2 slides")


# --------------------------------------------------------------------------- EML


def test_eml_reads_like_a_mail_from_the_mailbox() -> None:
    got = extract_eml(DATA / "mail/cpython/msg_07.txt", LIMITS)
    assert got.title == "Here is your dingus fish"
    markup = html_of(got)
    assert "<th>From</th><td>Barry &lt;barry@digicool.com&gt;</td>" in markup
    assert "This is the dingus fish." in got.text
    [fish] = pictures(got)
    assert fish.mime == "image/gif" and fish.data.startswith(b"GIF8")
    digest = extract_eml(DATA / "mail/cpython/msg_02.txt", LIMITS)
    assert digest.note is not None and "attached message.eml" in digest.note


@pytest.mark.parametrize(
    ("extractor", "source", "phrase"),
    [
        (extract_docx, "python-docx/test.docx", "python-docx was here too!"),
        (extract_xlsx, "csvkit/sheets.xlsx", "Chicago Reader"),
        (extract_pptx, "python-pptx/test.pptx", "Subtitle Text"),
        (extract_csv, "csvkit/FY09_EDU_Recipients_by_State.csv", "ALABAMA"),
        (extract_pdf_text, "pdfminer.six/base.pdf", "Secret!"),
    ],
)
def test_the_file_name_does_not_matter(
    tmp_path: Path, extractor: Callable[[Path, ExtractLimits], Extracted], source: str, phrase: str
) -> None:
    """The engine hands extractors spooled files whose names are not the dropped ones."""
    blob = tmp_path / "3f1c0a9e"
    shutil.copy(CORPUS / source, blob)
    assert phrase in extractor(blob, LIMITS).text


def test_pptx_picture_between_two_texts_stays_between_them(tmp_path: Path) -> None:
    """(A deck made here: the corpus has no slide with text above and below a picture.)"""
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank
    slide.shapes.add_textbox(Inches(1), Inches(5), Inches(4), Inches(1)).text = "below"
    png = pictures(extract_pptx(CORPUS / "python-pptx/shp-picture.pptx", LIMITS))[0].data
    slide.shapes.add_picture(io.BytesIO(png), Inches(1), Inches(2))
    slide.shapes.add_textbox(Inches(1), Inches(0.5), Inches(4), Inches(1)).text = "above"
    slide.notes_slide.notes_text_frame.text = "say this"
    path = tmp_path / "deck.pptx"
    deck.save(str(path))
    got = extract_pptx(path, LIMITS)
    assert [type(b).__name__ for b in got.blocks] == ["Heading", "Html", "Picture", "Html"]
    assert got.blocks[1] == Html("<p>above</p>")
    assert got.blocks[3] == Html("<p>below</p><p><em>Notes:</em></p><p>say this</p>")
