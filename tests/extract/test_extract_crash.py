"""The daemon is SIGKILLed while it writes documents' sections and pictures (issue 13).

The real CLI ``run`` works a drop folder of files whose extraction gives several heading
and text sections and a picture each, against the emulator with lost answers
(commit-then-drop) and 5xx on every POST; it is killed right after sections start to
land. At the end every document has exactly one set of sections, in order, each picture
exactly once in its gallery, and the file attached once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from itglue_emulator import run_emulator
from tests.crash_loop import CrashLoop, ledger_counts, write_config

KILLS = 8
PER_ROUND = 3  # files dropped in each round: one before the daemon starts, two while it runs
FILES = KILLS * PER_ROUND

SOURCE = """
[[sources]]
name = "drop"
type = "filesystem"
path = "drop"
organization = "Acme Corp"
stability_delay = 0.1

[plugins]
modules = ["tests.extract.extract_plugins"]

[transforms.extract]
workers = 1
"""


def description(i: int) -> dict[str, Any]:
    return {
        "parts": [
            {"heading": f"Part A of {i}", "text": f"alpha {i}"},
            {"heading": f"Part B of {i}", "text": f"beta {i}", "picture": True},
            {"heading": f"Part C of {i}", "text": f"gamma {i}"},
        ]
    }


def expected(i: int) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for n, part in enumerate(description(i)["parts"]):
        out += [("heading", part["heading"]), ("text", f"<p>{part['text']}</p>")]
        if part.get("picture"):
            out.append(("gallery", [f"figure-{n}.png"]))
    return out


@pytest.fixture
def emulator() -> Iterator[Any]:
    with run_emulator(api_key="crash-key", seed="demo") as emu:
        yield emu


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_during_section_creation_leaves_one_set_of_sections(
    tmp_path: Path, emulator: Any
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    contents = {f"doc-{i:03}.json": json.dumps(description(i)).encode() for i in range(FILES)}
    pending = list(contents)

    def drop_files(n: int) -> None:
        for name in pending[:n]:
            (drop / name).write_bytes(contents[name])
        del pending[:n]

    loop = CrashLoop(
        write_config(tmp_path, emulator, SOURCE),
        emulator,
        lambda: len(emulator.state()["records"]["document_sections"]),
    )
    loop.crash(KILLS, before=lambda: drop_files(1), during=lambda: drop_files(PER_ROUND - 1))
    loop.finish(lambda: ledger_counts(tmp_path) == {"drop": {"done": FILES}})
    assert loop.hits == KILLS, f"only {loop.hits} kills hit a running daemon"

    state = emulator.state()
    lost = {
        r["route"] for r in state["requests"] if r["dropped"] and r["method"] == "POST"
    }  # answers lost after the emulator committed: reconciliation was needed
    assert any("sections" in route for route in lost), lost
    records = state["records"]
    assert len(records["documents"]) == FILES
    names = Counter(a["file-name"] for a in records["attachments"])
    assert names == Counter(list(contents)), "a file was lost or attached twice"
    images = Counter(str(i["target-id"]) for i in records["document_images"])
    assert [g for g, n in images.items() if n > 1] == [], "a picture was uploaded twice"
    for doc in records["documents"]:
        i = int(doc["name"].rsplit("-", 1)[-1])
        sections = sorted(
            (s for s in records["document_sections"] if s["document-id"] == int(doc["id"])),
            key=lambda s: (s.get("sort", 0), int(s["id"])),
        )
        got = [
            ("gallery", [img["file-name"] for img in s["images"]])
            if s["resource-type"] == "Document::Gallery"
            else (s["resource-type"].split("::")[1].lower(), s["content"])
            for s in sections
        ]
        assert got == expected(i), f"document {doc['name']!r}"
