"""Fixtures for the metadata cache tests, on both state backends (``state_backend``):
a fresh cache, and more caches on the same state (as other processes would open)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core_client.cache import MetadataCache
from tests.conftest import DatabaseFactory

CacheFactory = Callable[[], MetadataCache]


@pytest.fixture
def db_path(ingest_state_dir: Path) -> Path:
    """A SQLite file, for the tests of what only SQLite has (the file, its WAL)."""
    return ingest_state_dir / "test.db"


@pytest.fixture
def open_cache(make_database: DatabaseFactory) -> Iterator[CacheFactory]:
    """``open_cache()``: a cache on this test's state database (SQLite or PostgreSQL);
    each call another one on the same data, as another process would see it."""
    opened: list[MetadataCache] = []

    def make() -> MetadataCache:
        c = MetadataCache(make_database("cache"))
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


@pytest.fixture
def cache(open_cache: CacheFactory) -> MetadataCache:
    return open_cache()
