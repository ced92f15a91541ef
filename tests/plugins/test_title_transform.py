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
