"""The real-world corpus (``tests/data/corpus``, files the project did not write) goes
drop folder -> the real engine (default pipeline: mime, extract, route, title) -> the
emulator. For each file: known phrases in the document's sections, its pictures as
document images, and the original attached byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from itglue_emulator import Emulator
from pipeline.settings import Settings
from pipeline.testing import LandedDocument, RunOnce, with_sections

DATA = Path(__file__).resolve().parent.parent / "data"
ORG = "Acme Corp"

# dropped file name -> (file under tests/data, phrases its sections hold, pictures)
CORPUS: dict[str, tuple[str, list[str], int]] = {
    "test.docx": (
        "corpus/python-docx/test.docx",
        ["python-docx was here!", "<p>python-docx was here too!</p>"],
        0,
    ),
    "shp-inline-shape-access.docx": ("corpus/python-docx/shp-inline-shape-access.docx", [], 2),
    "par-hyperlinks.docx": (
        "corpus/python-docx/par-hyperlinks.docx",
        ['<a href="http://python.org/" rel="noopener noreferrer nofollow">second one</a>'],
        0,
    ),
    "tbl-having-applied-style.docx": (
        "corpus/python-docx/tbl-having-applied-style.docx",
        ["<td><p>and a hearty foo to you too sir!</p></td>"],
        0,
    ),
    "sheets.xlsx": (
        "corpus/csvkit/sheets.xlsx",
        ["data", "<td>Chicago Reader</td><td>1971-01-01</td>", "ʤ"],
        0,
    ),
    "ne_1033_data.xlsx": (
        "corpus/csvkit/ne_1033_data.xlsx",
        ["RIFLE,7.62 MILLIMETER", "cut at 1,000 of 1,037 rows"],
        0,
    ),
    "FY09_EDU_Recipients_by_State.csv": (
        "corpus/csvkit/FY09_EDU_Recipients_by_State.csv",
        ["<td>ALABAMA</td><td>AL</td><td>01</td><td>6,718</td>"],
        0,
    ),
    "test_latin1.csv": ("corpus/csvkit/test_latin1.csv", ["<td>©</td>"], 0),
    "test.pptx": (
        "corpus/python-pptx/test.pptx",
        ["Slide 1: Presentation Title Text", "<p>Subtitle Text</p>"],
        0,
    ),
    "sld-notes.pptx": ("corpus/python-pptx/sld-notes.pptx", ["<em>Notes:</em>"], 0),
    "shp-picture.pptx": ("corpus/python-pptx/shp-picture.pptx", ["Slide 1", "Slide 2"], 4),
    "tbl-cell.pptx": ("corpus/python-pptx/tbl-cell.pptx", ["<td>unladen swallows</td>"], 0),
    "simple1.pdf": ("corpus/pdfminer.six/simple1.pdf", ["<p>Hello</p><p>World</p>"], 0),
    "2b.pdf": ("corpus/pdfminer.six/2b.pdf", ["Booked balance", "01/14/2016"], 0),
    "jo.pdf": ("corpus/pdfminer.six/jo.pdf", ["みんなのおのおののなかのすべてですから"], 0),
    "aes-128.pdf": ("corpus/pdfminer.six/aes-128.pdf", ["encrypted PDF"], 0),
    "dingus-fish.eml": (
        "mail/cpython/msg_07.txt",
        ["<th>From</th><td>Barry &lt;barry@digicool.com&gt;</td>", "This is the dingus fish."],
        1,
    ),
    "sample-nonspam.eml": (
        "mail/spamassassin/sample-nonspam.txt",
        ["TBTF ping for 2001-04-20: Reviving"],
        0,
    ),
}


def images_of(emulator: Emulator, doc: LandedDocument) -> list[dict[str, Any]]:
    return [
        image
        for image in emulator.state()["records"].get("document_images", [])
        if str(image.get("document-id")) == doc.id
    ]


def test_the_corpus_lands_as_readable_documents(
    itglue_emulator: Emulator, ingest_settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    for name, (source, _, _) in CORPUS.items():
        shutil.copyfile(DATA / source, folder / name)
    source_options = {
        "type": "filesystem",
        "path": str(folder),
        "organization": ORG,
        "after": "keep",
        "stability_delay": 0,
    }
    extract = {"timeout": 60, "workers": 2}
    run_once = RunOnce(
        itglue_emulator, with_sections(ingest_settings, transforms={"extract": extract})
    )
    landed = run_once(source_options, organizations=[ORG])
    assert landed.failures == {}
    by_file = {name: doc for doc in landed.documents for name in doc.attachments}
    assert sorted(by_file) == sorted(CORPUS)
    for name, (source, phrases, pictures) in CORPUS.items():
        doc = by_file[name]
        assert doc.attachments == {name: (DATA / source).read_bytes()}, name
        content = "\n".join(doc.sections)
        missing = [p for p in phrases if p not in content]
        assert not missing, f"{name}: {missing} not in its sections:\n{content[:2000]}"
        assert len(images_of(itglue_emulator, doc)) == pictures, name
