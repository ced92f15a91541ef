"""What a real run leaves on disk: modes of the state directory, and the drop folder's files.

A drop folder goes through the real engine to the emulator over HTTPS with a canary API
key: files delivered (moved to ``processed/``), a file for an organization that does not
exist (moved to ``failed/`` with its ``.error.txt``); ``health --json`` with the key and
with a wrong one, ``status --json``. The run happens under umask 000, so a mode that is
right only because of a careful umask shows up. Afterwards:

* everything under the state directory is 0600 (files) or 0700 (folders): the SQLite
  database and its -wal/-shm, the rate-limit file, ``engine.lock``, spool files and
  folders;
* a delivered file keeps the user's mode in ``processed/``;
* no ``.error.txt`` (nor any file in the state directory, nor ``status --json``) holds
  the API key.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itglue_emulator import run_emulator
from pipeline.commands.client import health
from pipeline.commands.engine import status
from pipeline.runner import Engine
from pipeline.settings import Settings, parse_settings

CANARY = "ITG.canary-state-2b7d9f1e3a5c7e9b0d2f4a6c"
WRONG = "ITG.canary-state-wrong-8e6c4a2f0d1b3e5a"
FRAGMENTS = [CANARY, WRONG] + [
    key[i : i + 10]
    for key in (CANARY.split("state-")[1], WRONG.split("wrong-")[1])
    for i in range(len(key) - 9)
]
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _leaks(data: str | bytes) -> list[str]:
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "backslashreplace")
    return [f for f in FRAGMENTS if f.encode() in raw]


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def emu() -> Iterator[Any]:
    with run_emulator(api_key=CANARY, tls=True, seed="demo", random_seed=7) as e:
        yield e


def _settings(emu: Any, drop: Path, state: Path) -> Settings:
    return parse_settings(
        {
            "itglue": {
                "instance": "sec",
                "base_url": emu.base_url,
                "api_key_env": "ITGLUE_SEC_KEY",
                "ca_bundle": str(emu.ca_file),
            },
            "state": {"dir": str(state)},
            "pipeline": {"workers": 2, "retry_base": 0.05, "retry_max": 0.2, "once_timeout": 50},
            "sources": [
                {
                    "name": "drop",
                    "type": "filesystem",
                    "path": str(drop),
                    "organization_from": "subfolder",
                    "stability_delay": 0,
                    "after": "move",
                }
            ],
        }
    )


def _modes(root: Path) -> dict[str, str]:
    """Relative path -> octal mode of ``root`` and everything below it."""
    out = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for p in root.rglob("*"):
        out[str(p.relative_to(root))] = oct(stat.S_IMODE(p.lstat().st_mode))
    return out


def _drop(drop: Path, org: str, name: str, data: bytes, mode: int) -> None:
    (drop / org).mkdir(parents=True, exist_ok=True)
    path = drop / org / name
    path.write_bytes(data)
    path.chmod(mode)


def test_state_modes_and_drop_folder_files(
    emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_umask: None
) -> None:
    drop, state = tmp_path / "drop", tmp_path / "state"
    monkeypatch.setenv("ITGLUE_SEC_KEY", CANARY)
    _drop(drop, "Acme Corp", "private.pdf", PDF + b"%a\n", 0o600)
    _drop(drop, "Globex", "shared.pdf", PDF + b"%b\n", 0o644)
    _drop(drop, "No Such Org", "orphan.pdf", PDF + b"%c\n", 0o640)
    settings = _settings(emu, drop, state)
    engine = Engine(settings)
    try:
        summary = engine.run_once()
        modes = _modes(state)  # while the database is open: its -wal and -shm exist
    finally:
        engine.close()
    assert (summary.delivered, summary.failed) == (2, 1), summary
    modes.update(_modes(state))
    names = set(modes)
    assert {"sec.db", "sec.db-wal", "sec.db-shm", "sec.ratelimit", "engine.lock", "spool"} <= names
    assert any(n.startswith("spool/") and len(Path(n).name) == 64 for n in names), names
    wrong = {
        name: mode
        for name, mode in modes.items()
        if mode != ("0o700" if (state / name).is_dir() else "0o600")
    }
    assert wrong == {}

    # the user's files: delivered ones keep their mode in processed/
    processed = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in drop.rglob("*.pdf")}
    assert processed == {
        "private.pdf": "0o600",
        "shared.pdf": "0o644",
        "orphan.pdf": "0o640",
    }
    assert all("processed" in str(p) for p in drop.rglob("private.pdf"))
    notes = sorted(drop.rglob("*.error.txt"))
    assert [n.name for n in notes] == ["orphan.pdf.error.txt"]
    texts = {n.name: n.read_text() for n in notes}
    assert "No Such Org" in texts["orphan.pdf.error.txt"]

    # status --json and health --json (right and wrong key)
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[itglue]\ninstance = "sec"\nbase_url = "{emu.base_url}"\n'
        f'api_key_env = "ITGLUE_SEC_KEY"\nca_bundle = "{emu.ca_file}"\n'
        f'[state]\ndir = "{state}"\n'
    )
    runner = CliRunner()
    outputs = [runner.invoke(status, ["--json", "-c", str(cfg)])]
    assert json.loads(outputs[0].stdout)["failed"]
    outputs.append(runner.invoke(health, ["--json", "-c", str(cfg)]))
    assert json.loads(outputs[-1].stdout)["status"] == "healthy", outputs[-1].output
    monkeypatch.setenv("ITGLUE_SEC_KEY", WRONG)
    outputs.append(runner.invoke(health, ["--json", "-c", str(cfg)]))
    assert json.loads(outputs[-1].stdout)["status"] != "healthy"  # 401

    found = {f"note {name}": _leaks(text) for name, text in texts.items()}
    found.update({f"cli {i}": _leaks(r.output) for i, r in enumerate(outputs)})
    for p in state.rglob("*"):
        if p.is_file():
            found[f"file {p.relative_to(state)}"] = _leaks(p.read_bytes())
    assert {k: v for k, v in found.items() if v} == {}


def test_an_existing_state_dir_is_made_private(
    emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop, state = tmp_path / "drop", tmp_path / "state"
    drop.mkdir()
    state.mkdir(mode=0o755)
    state.chmod(0o755)  # made by an installer or by hand, before the first run
    monkeypatch.setenv("ITGLUE_SEC_KEY", CANARY)
    engine = Engine(_settings(emu, drop, state))
    try:
        assert engine.run_once().ok
    finally:
        engine.close()
    assert oct(stat.S_IMODE(state.stat().st_mode)) == "0o700"
