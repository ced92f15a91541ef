"""Project-wide test setup. The reusable fixtures live in ``pipeline.testing`` (pytest11)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.testing import MemoryKeyring


@pytest.fixture(autouse=True)
def _hermetic_environment(
    memory_keyring: MemoryKeyring,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """Every test gets an in-memory keyring and private XDG folders; nothing writes to ~."""
    home = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(Path(home) / var.lower()))
    monkeypatch.delenv("ITGLUE_API_KEY", raising=False)
    yield
