"""The mime transform on real files through real libmagic."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline import Rejected
from pipeline.testing import make_blob, make_record
from plugins.mime import MimeOptions, MimeTransform, extension_mismatch
from tests.plugins.plugin_test_helpers import DATA
from tests.plugins.sample_files import make_csv, make_docx, make_pdf, make_png

PDF = make_pdf(["hello"])
PNG = make_png(8, 8)


def transform(**options: object) -> MimeTransform:
    return MimeTransform("mime", MimeOptions.model_validate(options), None)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.pdf", PDF, "application/pdf"),
        ("b.png", PNG, "image/png"),
        (
            "c.csv",
            make_csv(
                [["host", "ip", "role"]] + [[f"h{i}", f"10.0.0.{i}", "server"] for i in range(6)]
            ),
            "text/csv",
        ),
        ("d.txt", b"just some notes\nabout the firewall\n", "text/plain"),
        (
            "e.docx",
            make_docx(["hello"]),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
    ],
)
def test_sniffs_real_files(make_file, name, data, expected) -> None:
    path = make_file(name, data)
    out = transform().apply(make_record(make_blob(path, claimed_mime="application/octet-stream")))
    blob = out.files[0]
    assert blob.mime_type == expected
    assert blob.claimed_mime == "application/octet-stream"  # the claim is kept
    assert "extension_mismatch" not in blob.metadata


def test_legacy_ole_is_sniffed_from_the_whole_file(tmp_path: Path) -> None:
    import magic

    path = DATA / "legacy-word.doc"
    head = path.read_bytes()[:8192]
    assert magic.from_buffer(head, mime=True) == "application/x-ole-storage"  # why: see docs
    out = transform().apply(make_record(make_blob(path)))
    assert out.files[0].mime_type == "application/msword"
    assert out.files[0].claimed_mime == "application/msword"  # from the extension


def test_elf_executable_is_denied_by_default(make_file) -> None:
    path = make_file("tool", Path(shutil.which("true") or "/bin/true").read_bytes())
    with pytest.raises(Rejected) as e:
        transform().apply(make_record(make_blob(path)))
    assert "'tool'" in e.value.reason
    assert "application/x-pie-executable" in e.value.reason or "x-executable" in e.value.reason
    assert "[transforms.mime] deny" in e.value.reason


def test_executable_named_pdf_is_rejected_whatever_it_claims(make_file) -> None:
    path = make_file("invoice.pdf", Path("/bin/true").read_bytes())
    with pytest.raises(Rejected) as e:
        transform().apply(make_record(make_blob(path, claimed_mime="application/pdf")))
    reason = e.value.reason
    assert "'invoice.pdf'" in reason and "claimed application/pdf" in reason
    assert "executable" in reason


def test_empty_file_is_rejected(make_file) -> None:
    path = make_file("scan.pdf", b"")
    with pytest.raises(Rejected, match="inode/x-empty"):
        transform().apply(make_record(make_blob(path)))


def test_allow_list_with_wildcards(make_file) -> None:
    t = transform(allow=["application/pdf", "image/*"])
    png = make_file("p.png", PNG)
    pdf = make_file("p.pdf", PDF)
    out = t.apply(make_record(make_blob(png), make_blob(pdf)))
    assert [b.mime_type for b in out.files] == ["image/png", "application/pdf"]
    txt = make_file("notes.txt", b"plain text notes\n")
    with pytest.raises(Rejected) as e:
        t.apply(make_record(make_blob(pdf), make_blob(txt)))
    assert "'notes.txt' is text/plain" in e.value.reason
    assert "not allowed by [transforms.mime] allow" in e.value.reason


def test_deny_wins_over_allow(make_file) -> None:
    t = transform(allow=["*/*"], deny=["IMAGE/*"])  # patterns are case-insensitive
    with pytest.raises(Rejected, match="denied"):
        t.apply(make_record(make_blob(make_file("p.png", PNG))))


def test_misleading_extension_is_recorded_and_optionally_fixed(make_file) -> None:
    path = make_file("report.pdf", PNG)
    out = transform().apply(make_record(make_blob(path)))
    blob = out.files[0]
    assert blob.mime_type == "image/png"
    assert blob.file_name == "report.pdf"
    assert blob.metadata["extension_mismatch"] == {
        "extension": ".pdf",
        "extension_type": "application/pdf",
        "suggested_extension": ".png",
    }
    fixed = transform(fix_extension=True).apply(make_record(make_blob(path))).files[0]
    assert fixed.file_name == "report.pdf.png"
    assert fixed.metadata["original_file_name"] == "report.pdf"


def test_generic_types_do_not_flag_extensions() -> None:
    assert extension_mismatch("data.csv", "text/plain") is None
    assert extension_mismatch("x.docx", "application/zip") is None
    assert extension_mismatch("scan.PDF", "application/pdf") is None
    assert extension_mismatch("scan", "application/pdf") == {
        "extension": None,
        "extension_type": None,
        "suggested_extension": ".pdf",
    }


def test_invalid_pattern_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="not a MIME pattern"):
        MimeOptions.model_validate({"allow": ["pdf"]})


def test_unreadable_spool_file_is_rejected(tmp_path: Path) -> None:
    from pipeline import Blob

    blob = Blob(file_name="gone.pdf", path=tmp_path / "gone", size=1, sha256="0" * 64)
    with pytest.raises(Rejected, match="could not be read"):
        transform().apply(make_record(blob))


def test_record_without_files_passes_unchanged() -> None:
    record = make_record()
    assert transform().apply(record) is record
