"""Hostile and huge files against the format extractors: each gives a clear
ExtractionError or a capped result, and only does bounded work."""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pypdf
import pytest

from pipeline import ExtractionError, ExtractLimits, Html
from plugins.extract.pdf import extract_pdf_text
from plugins.extract.sheets import extract_csv, extract_xlsx
from plugins.extract.slides import extract_pptx
from plugins.extract.word import extract_docx
from plugins.extract.zipguard import check_zip

from .pdf_samples import report_pages, text_pdf

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"


def bomb_docx(path: Path, member_bytes: int, members: int = 1) -> None:
    """A real DOCX (python-docx's test.docx) with zero-filled members added: a few KB
    on disk, ``member_bytes`` each unzipped."""
    shutil.copy(CORPUS / "python-docx/test.docx", path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        zeros = bytes(member_bytes)
        for i in range(members):
            z.writestr(f"word/media/bomb{i}.bin", zeros)


def test_zip_bomb_docx_is_refused_by_ratio_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "bomb.docx"
    bomb_docx(path, 32 << 20)  # 32 MiB of zeros deflate ~1000:1
    assert path.stat().st_size < 200_000
    with pytest.raises(ExtractionError, match=r"zip bomb suspected: 'word/media/bomb0.bin'"):
        extract_docx(path, ExtractLimits())


def test_zip_bomb_by_total_size(tmp_path: Path) -> None:
    path = tmp_path / "many.docx"
    bomb_docx(path, 900_000, members=4)  # each member small enough for the ratio check
    limits = ExtractLimits(max_unzipped_bytes=2_000_000)
    with pytest.raises(ExtractionError, match="more than 2,000,000 bytes unzipped"):
        check_zip(path, limits)
    for extractor in (extract_docx, extract_xlsx, extract_pptx):
        with pytest.raises(ExtractionError, match="zip bomb suspected"):
            extractor(path, limits)
    assert extract_docx(path, ExtractLimits()).title == "python-docx was here!"


@pytest.mark.parametrize("extractor", [extract_docx, extract_xlsx, extract_pptx])
def test_office_files_that_are_not_zips(tmp_path: Path, extractor: object) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ExtractionError, match="broken zip"):
        extractor(path, ExtractLimits())  # type: ignore[operator]


def test_office_zip_without_its_parts(tmp_path: Path) -> None:
    path = tmp_path / "empty.docx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(ExtractionError, match="not a readable Word document"):
        extract_docx(path, ExtractLimits())
    with pytest.raises(ExtractionError, match="not a readable Excel workbook"):
        extract_xlsx(path, ExtractLimits())
    with pytest.raises(ExtractionError, match="not a readable PowerPoint file"):
        extract_pptx(path, ExtractLimits())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"%PDF-1.4\ngarbage without objects",
        text_pdf([[(11, "cut short")]])[:300],  # truncated mid-file
        # a page tree whose only kid is itself
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 >> endobj\n"
        b"trailer << /Root 1 0 R >>\n%%EOF",
    ],
    ids=["empty", "garbage", "truncated", "looping-page-tree"],
)
def test_malformed_pdf(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(data)
    with pytest.raises(ExtractionError, match=r"^malformed PDF"):
        extract_pdf_text(path, ExtractLimits())


def encrypted(source: Path, user: str, owner: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=str(source))
    writer.encrypt(user_password=user, owner_password=owner, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_encrypted_pdf_without_password(tmp_path: Path) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(encrypted(CORPUS / "pdfminer.six/base.pdf", "s3cret", "owner"))
    with pytest.raises(ExtractionError, match=r"^encrypted PDF$"):
        extract_pdf_text(path, ExtractLimits())


def test_pdf_with_only_an_owner_password_is_read(tmp_path: Path) -> None:
    """Restrictions (no printing, no copying) without a password to open: readable."""
    path = tmp_path / "restricted.pdf"
    path.write_bytes(encrypted(CORPUS / "pdfminer.six/base.pdf", "", "owner"))
    assert extract_pdf_text(path, ExtractLimits()).text == "Secret!"


def test_5000_page_pdf_stops_at_max_pages(tmp_path: Path) -> None:
    path = tmp_path / "huge.pdf"
    path.write_bytes(text_pdf([[(11, f"Page {i} of the archive")] for i in range(1, 5001)]))
    got = extract_pdf_text(path, ExtractLimits(max_pages=50))
    assert got.pages == 5000
    assert got.note == (
        "text of the first 50 of 5,000 pages (max_pages); the rest is only in the attached file"
    )
    assert "Page 50 of the archive" in got.text and "Page 51 " not in got.text


def test_pdf_reading_stops_at_its_time_allowance(tmp_path: Path) -> None:
    path = tmp_path / "long.pdf"
    path.write_bytes(text_pdf(report_pages(30)))
    got = extract_pdf_text(path, ExtractLimits(), seconds=0)
    assert got.pages == 30 and "Page 1 paragraph 8" in got.text and "Page 2 " not in got.text
    assert got.note == (
        "text of the first 1 of 30 pages (time or size); the rest is only in the attached file"
    )


def test_pdf_headings_from_font_size_and_title_from_metadata(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(text_pdf(report_pages(6), title="Quarterly maintenance report"))
    got = extract_pdf_text(path, ExtractLimits())
    assert got.title == "Quarterly maintenance report"
    heads = [b for b in got.blocks if not isinstance(b, Html)]
    assert [(h.text, h.level) for h in heads] == [  # type: ignore[union-attr]
        ("Chapter 1: Network maintenance", 1),
        ("Chapter 2: Network maintenance", 1),
    ]
    assert sum(isinstance(b, Html) for b in got.blocks) == 6  # one per page


def test_huge_csv_is_cut_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("id,host,status\n")
        for i in range(50_000):
            f.write(f"{i},srv{i},ok\n")
    got = extract_csv(path, ExtractLimits(max_rows=10))
    assert got.note == (
        "the table: cut at 10 of 50,001 rows (max_rows/max_columns);"
        " the attached file has all of it"
    )


def test_csv_with_nul_bytes_and_binary_noise(tmp_path: Path) -> None:
    path = tmp_path / "noise.csv"
    path.write_bytes(b"a,b\x00,c\n1,\xff\xfe2,3\n")
    got = extract_csv(path, ExtractLimits())
    assert "<th>a</th><th>b</th><th>c</th>" in "".join(
        b.html for b in got.blocks if isinstance(b, Html)
    )


def test_xlsx_declaring_the_largest_sheet_is_read_by_its_cells(tmp_path: Path) -> None:
    """A sheet may declare A1:XFD1048576 (17 billion cells) and hold three: openpyxl
    would pad every row to 16,384 cells and every gap with such rows."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["A1"], sheet["B1"], sheet["A200000"] = "host", "status", "srv-last"
    plain = io.BytesIO()
    book.save(plain)
    path = tmp_path / "declared.xlsx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', data)
            dst.writestr(info, data)
    got = extract_xlsx(path, ExtractLimits())
    markup = "".join(b.html for b in got.blocks if isinstance(b, Html))
    assert markup == (
        "<table><thead><tr><th>host</th><th>status</th></tr></thead>"
        "<tbody><tr><td>srv-last</td><td></td></tr></tbody></table>"
    )
