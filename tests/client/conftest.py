"""Helpers for the client's integration tests (real emulator over HTTPS)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core_client import ITGlueClient
from core_client.postgres import PostgresDatabase
from core_client.rate_limiter import RateLimiter
from tests.conftest import DatabaseFactory

ClientFactory = Callable[..., ITGlueClient]
LimiterFactory = Callable[..., RateLimiter]


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


# -- the shared budget on both stores ----------------------------------------------------
# Backend "sqlite" keeps the budget in the machine's state file, "postgresql" in one row
# of the shared database: each suite below runs on both (state_backend is parametrized).


@pytest.fixture
def rate_state(state_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where this test's shared budget lives: the state file's path or the database's DSN."""
    if state_backend == "postgresql":
        return str(request.getfixturevalue("state_location"))
    return str(tmp_path / "state" / "test.ratelimit")


def limiter_on(backend: str, where: str, *args: Any, **kw: Any) -> RateLimiter:
    """A limiter drawing from the budget at ``where`` (see :func:`rate_state`)."""
    if backend == "postgresql":
        return RateLimiter(
            *args, state_database=PostgresDatabase(where, component="ratelimit"), **kw
        )
    return RateLimiter(*args, state_path=Path(where), **kw)


@pytest.fixture
def make_limiter(state_backend: str, rate_state: str) -> Iterator[LimiterFactory]:
    """``make_limiter(limit, window, **kw)``: a limiter on this test's shared budget; each
    call is another process's (or collector's) view of it. All are closed at the end."""
    made: list[RateLimiter] = []

    def factory(*args: Any, **kw: Any) -> RateLimiter:
        limiter = limiter_on(state_backend, rate_state, *args, **kw)
        made.append(limiter)
        return limiter

    yield factory
    for limiter in made:
        limiter.close()


@pytest.fixture
def make_shared_client(
    make_client: ClientFactory, state_backend: str, rate_state: str
) -> ClientFactory:
    """Like ``make_client``, the budget on this test's store (the state dir's file, or
    the PostgreSQL row of the instance)."""

    def factory(emu: Any, **kw: Any) -> ITGlueClient:
        if state_backend == "postgresql":
            kw.setdefault("rate_database", PostgresDatabase(rate_state, component="ratelimit"))
        return make_client(emu, **kw)

    return factory


@pytest.fixture
def make_cached_client(make_client: ClientFactory, make_database: DatabaseFactory) -> ClientFactory:
    """:func:`make_client` whose metadata cache is in this test's state database: the
    tests where the cache is the point run on both backends (``state_backend``)."""

    def factory(emu: Any, **kw: Any) -> ITGlueClient:
        kw.setdefault("cache_database", lambda: make_database("cache"))
        return make_client(emu, **kw)

    return factory
