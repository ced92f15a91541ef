"""The engine tests' plugins as a module, for ``[plugins] modules`` in a configuration."""

from __future__ import annotations

from typing import Any

import pipeline
from tests.pipeline.pipeline_engine_helpers import EnginePlugins

_plugins = EnginePlugins()


@pipeline.hookimpl
def ingest_register_sources(register: Any) -> None:
    _plugins.ingest_register_sources(register)


@pipeline.hookimpl
def ingest_register_transforms(register: Any) -> None:
    _plugins.ingest_register_transforms(register)


@pipeline.hookimpl
def ingest_register_sinks(register: Any) -> None:
    _plugins.ingest_register_sinks(register)
