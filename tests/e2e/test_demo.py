"""``itglue-ingest demo``: runs with no account, lands every sample, reports, exits 0."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import magic
import pytest
from click.testing import CliRunner

from pipeline.commands.demo import PLACEMENT, demo, load_demo_config, samples_root
from pipeline.commands.engine import once
from pipeline.settings import load_settings
from tests.child_process import child_env, python_module
from tests.plugins.sample_files import demo_samples


def test_demo_lands_every_sample(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = CliRunner().invoke(demo, ["--state-dir", str(folder)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "5 delivered, 1 duplicate" in out and "0 failed" in out
    for org in ("Acme Corp", "Globex", "Initech", "Umbrella Corporation"):
        assert org in out
    assert out.count("byte-identical") == 5
    assert "DIFFERENT" not in out
    assert str(folder) in out
    processed = sorted(p.name for p in (folder / "drop" / "processed").rglob("*") if p.is_file())
    assert len(processed) == len(PLACEMENT)
    assert (folder / "state" / "demo.db").stat().st_mode & 0o077 == 0
    written = load_settings(folder / "config.toml")
    assert written.state.dir == folder / "state"

    # again in the same folder: it is an earlier demo's, so it is emptied and reused
    again = CliRunner().invoke(demo, ["--state-dir", str(folder)])
    assert again.exit_code == 0, again.output
    assert "5 delivered, 1 duplicate" in again.output


def test_demo_leaves_a_runnable_setup(tmp_path: Path) -> None:
    """The folder's config.toml runs again as it is, against the emulator that
    ``itglue-ingest emulator --state-dir`` serves from the same folder (CA, port, key)."""
    folder = tmp_path / "demo"
    result = CliRunner().invoke(demo, ["--state-dir", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"itglue-ingest emulator --state-dir '{folder}'" in result.output
    assert (folder / "api-key").stat().st_mode & 0o077 == 0
    assert (folder / "emulator" / "ca-key.pem").stat().st_mode & 0o077 == 0
    emulator = subprocess.Popen(
        [*python_module("pipeline", "emulator", "--state-dir", folder)],
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        ready = json.loads(emulator.stdout.readline())
        assert ready["ca_file"] == str(folder / "emulator" / "ca.pem")  # the kept CA
        assert ready["base_url"] == load_settings(folder / "config.toml").itglue.base_url
        (folder / "drop" / "Globex" / "new scan.txt").write_text("dropped after the demo\n")
        again = CliRunner().invoke(once, ["-c", str(folder / "config.toml")])
        assert again.exit_code == 0, again.output
        assert again.output.startswith("1 delivered, 0 duplicate, 0 failed"), again.output
    finally:
        emulator.terminate()
        emulator.communicate(timeout=30)  # closes its stdout too
    # the emulator kept what it was sent: the demo's documents and the new one
    stored = json.loads((folder / "emulator.json").read_text())["tables"]["documents"]
    names = {d["name"] for d in stored}
    assert "new scan" in names and "asset-inventory" in names


def test_demo_refuses_a_folder_with_other_content(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(demo, ["--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "not empty and not an earlier demo folder" in result.output
    assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Quarterly network review.pdf", "application/pdf"),
        ("rack_diagram.png", "image/png"),
        ("asset-inventory.csv", "text/csv"),
        (
            "Onboarding checklist.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
    ],
)
def test_samples_are_genuine_files(name: str, expected: str) -> None:
    data = samples_root().joinpath(name).read_bytes()
    assert magic.from_buffer(data, mime=True) == expected
    assert data == demo_samples()[name]  # the committed bytes are what the generator makes


def test_demo_config_is_the_documented_one() -> None:
    repo_copy = Path(__file__).parents[2] / "config" / "demo.toml"
    assert tomllib.loads(repo_copy.read_text()) == load_demo_config()
    assert {sample for sample, _ in PLACEMENT} == set(demo_samples())
