"""End-to-end setup: the emulator (demo organizations), a drop folder, the real engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.runner import Engine
from pipeline.settings import Settings
from pipeline.testing import API_KEY_ENV, emulator_settings
from tests.fast_clients import fast_client_factory


@pytest.fixture
def emu() -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="test-key", tls=True, seed="demo", random_seed=7) as e:
        yield e


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    d = tmp_path / "drop"
    d.mkdir()
    return d


@pytest.fixture
def e2e_settings(
    emu: Any, drop: Path, ingest_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Settings]:
    monkeypatch.setenv(API_KEY_ENV, emu.api_key)

    def make(**pipeline: Any) -> Settings:
        return emulator_settings(
            emu,
            ingest_state_dir,
            itglue={"instance": "e2e"},
            pipeline={
                "workers": 4,
                "retry_base": 0.05,
                "retry_max": 0.5,
                "once_timeout": 50,
                **pipeline,
            },
            sources=[
                {
                    "name": "drop",
                    "type": "filesystem",
                    "path": str(drop),
                    "organization_from": "subfolder",
                    "stability_delay": 0,
                    "after": "move",
                }
            ],
        )

    return make


def fast_factory(settings: Settings) -> Callable[[], Any]:
    """The real client with test-sized pauses, so a fault soak takes seconds."""
    return fast_client_factory(
        settings,
        max_retries=3,
        backoff_base=0.02,
        backoff_max=0.2,
        rate_penalty_seconds=0.1,
        breaker_cooldown=0.3,
    )


@pytest.fixture
def engine_for() -> Iterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def make(settings: Settings, fast: bool = False) -> Engine:
        engine = Engine(settings, client_factory=fast_factory(settings) if fast else None)
        engines.append(engine)
        return engine

    yield make
    for e in engines:
        e.close()
