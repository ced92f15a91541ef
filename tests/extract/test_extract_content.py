"""How extracted content becomes sections (pure logic, in-process): fewest sections,
headings on their own, long HTML split between elements, the output cap, and the text
extractors' decoding."""

from __future__ import annotations

from pathlib import Path

from pipeline import Extracted, ExtractLimits, Heading, Html, Picture, sanitize_html
from plugins.extract import htmltree
from plugins.extract.content import SectionBuilder
from plugins.extract.text import extract_html, extract_markdown, extract_text


def build(tmp_path: Path, extracted: Extracted, *, section: int = 1000, total: int = 10**6):
    builder = SectionBuilder(
        pictures=tmp_path / "pics", max_section_bytes=section, max_output_bytes=total
    )
    return builder.add(extracted)


def test_consecutive_html_shares_one_section_and_headings_stand_alone(tmp_path: Path) -> None:
    sections = build(
        tmp_path,
        Extracted(
            blocks=(Html("<p>a</p>"), Html("<p>b</p><h3>Sub</h3><p>c</p>"), Heading("End", 2)),
            text="",
        ),
    )
    assert [(s.kind, s.level, s.content) for s in sections] == [
        ("text", None, "<p>a</p><p>b</p>"),
        ("heading", 3, "Sub"),
        ("text", None, "<p>c</p>"),
        ("heading", 2, "End"),
    ]


def test_html_too_large_for_one_section_is_split_between_elements(tmp_path: Path) -> None:
    rows = "".join(f"<tr><td>row {i}</td><td>{'x' * 40}</td></tr>" for i in range(100))
    paragraphs = "".join(f"<p>paragraph {i}</p>" for i in range(50))
    sections = build(
        tmp_path, Extracted((Html(f"<table>{rows}</table>{paragraphs}"),), ""), section=1200
    )
    assert len(sections) > 5
    for s in sections:
        assert htmltree.size(s.content) <= 1200
        assert sanitize_html(s.content) == s.content  # each piece is whole, valid HTML
    tables = [s.content for s in sections if s.content.startswith("<table>")]
    assert len(tables) > 2 and all(t.count("<table>") == t.count("</table>") for t in tables)
    joined = "".join(s.content for s in sections)
    assert all(f"<td>row {i}</td>" in joined for i in range(100))
    assert all(f"<p>paragraph {i}</p>" in joined for i in range(50))


def test_a_long_paragraph_is_cut_at_spaces_never_inside_an_entity(tmp_path: Path) -> None:
    text = " ".join(["AT&amp;T"] * 400)
    sections = build(tmp_path, Extracted((Html(f"<p>{text}</p>"),), ""), section=1000)
    assert len(sections) > 2
    for s in sections:
        assert s.content.startswith("<p>") and s.content.endswith("</p>")
        assert "&amp" not in s.content.replace("&amp;", "")


def test_output_over_the_cap_is_cut_with_a_note_and_pictures_are_stored(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    blocks = (Picture(png, "image/png", "../../etc/x.png"), *(Html(f"<p>{'y' * 500}</p>"),) * 10)
    sections = build(tmp_path, Extracted(blocks, "", note="from the extractor"), total=2000)
    image = sections[0].image
    assert image is not None and image.path.read_bytes() == png
    assert image.file_name == "x.png" and image.path.parent == tmp_path / "pics"
    assert image.path.stat().st_mode & 0o777 == 0o600
    assert sections[-1].kind == "text"
    assert "from the extractor" in sections[-1].content
    assert "cut at 2,000 bytes" in sections[-1].content
    assert sum(htmltree.size(s.content) for s in sections[:-1]) + len(png) <= 2000


def test_text_files_decode_utf8_a_bom_or_windows_1252(tmp_path: Path) -> None:
    limits = ExtractLimits()
    cases = {
        "utf8.txt": "Grüße <b>\n".encode(),
        "bom.txt": "Grüße <b>\n".encode("utf-16"),  # with its byte order mark
        "cp1252.txt": "Grüße <b>\n".encode("cp1252"),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        got = extract_text(tmp_path / name, limits)
        assert got.blocks == (Html("<p>Grüße &lt;b&gt;</p>"),), name


def test_markdown_and_html_titles_and_sanitizing(tmp_path: Path) -> None:
    (tmp_path / "a.markdown").write_text("# Title *one*\n\n<img src=x onerror=alert(1)>text\n")
    md = extract_markdown(tmp_path / "a.markdown", ExtractLimits())
    assert md.title == "Title one"
    assert "onerror" not in md.blocks[0].html and "text" in md.text  # type: ignore[union-attr]
    (tmp_path / "a.html").write_text("<title> Page &amp; co </title><body><p>x</p>")
    page = extract_html(tmp_path / "a.html", ExtractLimits())
    assert page.title == "Page & co" and page.blocks == (Html("<p>x</p>"),)
