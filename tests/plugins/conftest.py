"""Fixtures for the built-in transform and sink tests (helpers: plugin_test_helpers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from plugin_test_helpers import Contexts


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
) -> Iterator[Contexts]:
    monkeypatch.setenv("ITGLUE_TEST_API_KEY", demo_emulator.api_key)
    c = Contexts(demo_emulator, ingest_state_dir)
    yield c
    c.close()
