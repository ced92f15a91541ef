"""Fixtures for the built-in transform and sink tests (helpers: plugin_test_helpers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.testing import API_KEY_ENV, EngineContexts, emulator_settings
from tests.plugins.plugin_test_helpers import fast_client


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[[str, bytes], Path]:
    """Write ``data`` to ``tmp_path/name`` and return the path."""

    def make(name: str, data: bytes) -> Path:
        p = tmp_path / "files" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    return make


@pytest.fixture
def demo_emulator() -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="test-key", tls=True, seed="demo") as emu:
        yield emu


@pytest.fixture
def contexts(
    demo_emulator: Any, ingest_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EngineContexts]:
    monkeypatch.setenv(API_KEY_ENV, demo_emulator.api_key)
    c = EngineContexts(emulator_settings(demo_emulator, ingest_state_dir), fast_client)
    yield c
    c.close()
