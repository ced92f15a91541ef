"""The title transform: clean, never-empty document names."""

from __future__ import annotations

import pytest

from pipeline import Blob, DocumentRecord
from pipeline.testing import make_record
from plugins.title import TitleOptions, TitleTransform, clean_title


def apply(record: DocumentRecord, **options: object) -> DocumentRecord:
    return TitleTransform("title", TitleOptions.model_validate(options), None).apply(record)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Scan_2024-03-01__0001.PDF", "Scan 2024-03-01 0001"),
        ("  Quarterly\treview \n notes.docx ", "Quarterly review notes"),
        ("report.final.pdf", "report.final"),
        ("invoice\u200b 42\u202e.pdf", "invoice 42"),  # zero-width space, bidi override
        ("bell\x07 and\x00 nul", "bell and nul"),
        ("a <b>bold</b> title", "a (b)bold(/b) title"),
        (".bashrc", "bashrc"),
        ("Re: Firewall change", "Re: Firewall change"),
        ("Ärzte GmbH \u2013 Übergabe.pdf", "Ärzte GmbH \u2013 Übergabe"),
    ],
)
def test_clean_title(raw: str, expected: str) -> None:
    assert clean_title(raw) == expected


def test_length_is_capped_at_a_word_boundary() -> None:
    raw = "word " * 100
    out = clean_title(raw, max_length=50)
    assert len(out) <= 50
    assert out.endswith("…") and not out.endswith(" …")


def test_options_keep_extension_and_underscores() -> None:
    record = make_record(name="my_file.pdf")
    out = apply(record, strip_extension=False, underscores_to_spaces=False)
    assert out is record  # nothing to change


def test_empty_name_falls_back_to_file_name_then_source_ref() -> None:
    blob = Blob(file_name="Scan_0007.pdf", path="/nonexistent", size=1, sha256="0" * 64)
    out = apply(DocumentRecord(source="s", source_ref="ref-1", name=" \u200b ", files=[blob]))
    assert out.name == "Scan 0007"
    assert out.metadata["original_name"] == " \u200b "
    out = apply(DocumentRecord(source="s", source_ref="inbox/42", name="\x00"))
    assert out.name == "inbox/42"
    out = apply(DocumentRecord(source="s", source_ref="...", name=""))
    assert out.name == "Untitled"


def test_max_length_option_is_validated() -> None:
    with pytest.raises(ValueError):
        TitleOptions.model_validate({"max_length": 3})


@pytest.mark.parametrize(
    "name",
    [
        "scan_0001.pdf",
        "IMG_2041.jpg",
        "IMG_E2041.HEIC",
        "Document1.docx",
        "Scan_2024-03-01__0001.PDF",
        "PXL_20230101_123456789.jpg",
        "Screenshot 2024-03-01 at 10.22.33.png",
        "20240301_123456.jpg",
        "3f2a9c0d1e4b5a6978695a4b3c2d1e0f.pdf",
        "d3b07384-d9a0-4c9f-8a1b-2c3d4e5f6a7b.pdf",
        "Untitled.pdf",
    ],
)
def test_a_name_that_says_nothing_gives_way_to_the_files_own_title(name: str) -> None:
    record = make_record(name=name, metadata={"extract": {"title": "  Firewall_runbook "}})
    out = apply(record)
    assert out.name == "Firewall runbook"
    assert out.metadata["original_name"] == name


@pytest.mark.parametrize("name", ["Invoice 4711.pdf", "Quarterly review.docx", "W10 setup.pdf"])
def test_a_name_that_says_something_is_kept(name: str) -> None:
    out = apply(make_record(name=name, metadata={"extract": {"title": "Firewall runbook"}}))
    assert out.name == clean_title(name)


def test_the_content_title_must_say_something_too() -> None:
    for junk in ("Microsoft Word - Document1.docx", "scan0001", "", None):
        out = apply(make_record(name="scan_0001.pdf", metadata={"extract": {"title": junk}}))
        assert out.name == "scan 0001"
    # Word's "print to PDF" prefix is dropped from a real title
    prefixed = {"extract": {"title": "Microsoft Word - Backup policy.docx"}}
    assert apply(make_record(name="Document1.pdf", metadata=prefixed)).name == "Backup policy"
    # without an extraction, or with from_content off, the name stays
    assert apply(make_record(name="IMG_2041.jpg")).name == "IMG 2041"
    record = make_record(name="IMG_2041.jpg", metadata={"extract": {"title": "Rack photo"}})
    assert apply(record, from_content=False).name == "IMG 2041"
