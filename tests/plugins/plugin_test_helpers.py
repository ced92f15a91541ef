"""Helpers for the built-in transform and sink tests (imported by name: a module called
``conftest`` would clash with the other test folders'). The builders themselves are the
public ones in ``pipeline.testing``; this adds what only the project's tests need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.settings import Settings
from tests.fast_clients import fast_client as shared_fast_client

DATA = Path(__file__).parent / "data"


def fast_client(settings: Settings) -> Any:
    """The client with one retry and a tiny backoff: fault tests stay quick."""
    return shared_fast_client(settings, max_retries=1, backoff_base=0.01)
