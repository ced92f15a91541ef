"""Fixtures for the emulator tests: a fresh emulator per test and a tiny HTTP helper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from itglue_emulator import Emulator, run_emulator
from tests.emulator.emulator_helpers import Api


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with run_emulator(api_key="test-key", tls=True, random_seed=1234) as emulator:
        yield emulator


@pytest.fixture
def api(emu: Emulator) -> Iterator[Api]:
    client = Api(emu)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def make_api() -> Iterator[Callable[..., AbstractContextManager[Api]]]:
    """Start an emulator with custom options: ``with make_api(retry_after=True) as api``."""

    @contextmanager
    def factory(**options: Any) -> Iterator[Api]:
        options.setdefault("api_key", "test-key")
        with run_emulator(**options) as emulator:
            client = Api(emulator)
            try:
                yield client
            finally:
                client.close()

    yield factory
