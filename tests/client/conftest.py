"""Helpers for the client's integration tests (real emulator over HTTPS)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core_client import ITGlueClient

ClientFactory = Callable[..., ITGlueClient]


def requests_seen(
    emu: Any, method: str | None = None, route: str | None = None, status: int | None = None
) -> int:
    """How many requests the emulator logged, optionally by method / route / status."""
    total = 0
    for row in emu.state()["requests"]:
        if method and row["method"] != method:
            continue
        if route and row["route"] != route:
            continue
        if status is not None and row["status"] != status:
            continue
        total += int(row["count"])
    return total


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[ClientFactory]:
    """Build clients against an emulator; all are closed at the end of the test."""
    made: list[ITGlueClient] = []

    def factory(emu: Any, **kw: Any) -> ITGlueClient:
        kw.setdefault("api_key", emu.api_key)
        kw.setdefault("ca_bundle", emu.ca_file)
        kw.setdefault("state_dir", tmp_path / "state")
        kw.setdefault("backoff_base", 0.01)
        kw.setdefault("backoff_max", 0.05)
        client = ITGlueClient.from_instance(kw.pop("instance", "test"), base_url=emu.base_url, **kw)
        made.append(client)
        return client

    yield factory
    for c in made:
        c.close()
