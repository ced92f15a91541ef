"""Helpers for the built-in transform and sink tests (imported by name: a module called
``conftest`` would clash with the other test folders'). The builders themselves are the
public ones in ``pipeline.testing``; this adds what only the project's tests need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.settings import Settings

DATA = Path(__file__).parent / "data"


def fast_client(settings: Settings) -> Any:
    """The client with one retry and a tiny backoff: fault tests stay quick."""
    from core_client.client import ITGlueClient

    it = settings.itglue
    return ITGlueClient.from_instance(
        it.instance,
        base_url=it.base_url,
        api_key_env=it.api_key_env,
        ca_bundle=it.ca_bundle,
        state_dir=settings.state.dir,
        max_retries=1,
        backoff_base=0.01,
    )
