"""Fixtures for the metadata cache tests: a fresh cache in a private state folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core_client.cache import MetadataCache


@pytest.fixture
def db_path(ingest_state_dir: Path) -> Path:
    return ingest_state_dir / "test.db"


@pytest.fixture
def cache(db_path: Path) -> Iterator[MetadataCache]:
    c = MetadataCache(db_path)
    try:
        yield c
    finally:
        c.close()
