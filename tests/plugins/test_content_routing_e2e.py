"""Content routing end to end: 20 files in a drop folder that names no organization go
through the real engine (mime, extract, route, title) to the emulator and land in the
organization their text names; ``status --records`` says why each went where.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from itglue_emulator import Emulator
from pipeline.commands.engine import status
from pipeline.settings import Settings
from pipeline.testing import RunOnce
from plugins.title import clean_title
from tests.plugins.ocr_samples import render_page

ORGS = ["Acme Corp", "Globex", "Initech", "Umbrella Corporation", "Stark Industries"]
ROUTING = {
    "fallback_organization": "Umbrella Corporation",
    "rules": [{"name": "tps", "match": {"text": r"TPS\s+report"}, "organization": "Initech"}],
    "auto": {
        "enabled": True,
        "organizations": {
            "Stark Industries": {"domains": ["stark.example"], "aliases": ["Stark Ind."]},
            "Acme Corp": {"aliases": ["ACME"], "match": '"road runner" anvil', "algorithm": "all"},
        },
    },
}

# file -> (its text, the organization it must land in, what status must say)
CASES: dict[str, tuple[str, str, str]] = {
    "note-01.txt": ("Firewall review for Acme Corp.", "Acme Corp", "name 'Acme Corp'"),
    "note-02.txt": ("Invoice to ACME\ncorp, net 30", "Acme Corp", "name 'Acme Corp'"),
    "note-03.txt": ("Order 12 for ACME, shipped", "Acme Corp", "alias 'ACME'"),
    "note-04.txt": ("The anvil for the Road Runner", "Acme Corp", "all of"),
    "note-05.txt": ("Globex: new VPN profile", "Globex", "name 'Globex'"),
    "note-06.txt": ("globex printer toner levels", "Globex", "name 'Globex'"),
    "note-07.txt": ("Initech quarterly patch list", "Initech", "name 'Initech'"),
    "note-08.txt": ("Globex asked about the TPS report", "Initech", "rule 1 (tps)"),
    "note-09.txt": ("Umbrella Corporation lab network", "Umbrella Corporation", "name 'Umbrella"),
    "note-10.txt": ("From: tony@mail.stark.example", "Stark Industries", "domain stark.example"),
    "note-11.txt": ("Stark Ind. badge readers", "Stark Industries", "alias 'Stark Ind.'"),
    "note-12.txt": ("Stark Industries and Globex. Globex!", "Globex", "next best"),
    "note-13.txt": ("Initech and Globex meeting", "Initech", "next best 'Globex'"),
    "note-14.txt": ("Nothing about anyone", "Umbrella Corporation", "fallback_organization"),
    "note-15.markdown": ("# Globex runbook\n\nRestart the NAS.", "Globex", "name 'Globex'"),
    "note-16.markdown": ("# Backups\n\nStark Industries site", "Stark Industries", "name 'Stark"),
    "note-17.html": ("<p>Renewal for <b>Initech</b></p>", "Initech", "name 'Initech'"),
    "note-18.txt": ("Acmeco and Globexia are no clients", "Umbrella Corporation", "fallback"),
    "note-19.txt": ("Globexx typo is not Globex? It is.", "Globex", "name 'Globex'"),
}
SCAN = ("IMG_2041.png", "Stark Industries reactor inventory", "Stark Industries")


def test_twenty_documents_land_in_the_organization_their_text_names(
    itglue_emulator: Emulator, ingest_settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    for name, (text, _, _) in CASES.items():
        (folder / name).write_text(text, "utf-8")
    render_page(SCAN[1]).save(folder / SCAN[0], dpi=(300, 300))  # read by OCR
    source = {"type": "filesystem", "path": str(folder), "after": "keep", "stability_delay": 0}

    landed = RunOnce(itglue_emulator, ingest_settings)(source, organizations=ORGS, routing=ROUTING)

    assert landed.failures == {}
    where = {doc.name: doc.organization for doc in landed.documents}
    expected = {clean_title(n): org for n, (_, org, _) in CASES.items()}
    expected["IMG 2041"] = SCAN[2]
    assert where == expected
    assert len(where) == 20

    config = tmp_path / "ingest.toml"
    config.write_text(
        f'[itglue]\ninstance = "test"\nbase_url = "{itglue_emulator.base_url}"\n'
        f'[state]\ndir = "{ingest_settings.state.dir}"\n'
    )
    shown = CliRunner().invoke(status, ["-c", str(config), "--records", "30", "--json"])
    records = {r["source_ref"]: r for r in json.loads(shown.output)["records"]}
    for name, (_, org, why) in CASES.items():
        (ref,) = [r for r in records if r.endswith(name)]
        assert records[ref]["organization"] == org
        assert why in records[ref]["routing_reason"], (name, records[ref]["routing_reason"])
    text = CliRunner().invoke(status, ["-c", str(config), "--records", "30"]).output
    assert "latest records (where each went and why):" in text
    line = next(line for line in text.splitlines() if "note-10.txt" in line)
    assert line.endswith(
        "done -> Stark Industries: auto: 'Stark Industries' named in the text:"
        " domain stark.example 1x (score 1.00)"
    )
