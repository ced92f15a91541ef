"""config/example.toml documents every key the code accepts, and the engine accepts it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from pipeline.hooks import HookFacade
from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import (
    ItglueSettings,
    ObservabilitySettings,
    PipelineSettings,
    SourceSettings,
    StateSettings,
    load_settings,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example.toml"
DEMO = ROOT / "config" / "demo.toml"


def documented(text: str, key: str) -> bool:
    """The key is set, shown commented out (``# key = ...``) or is a table (``[x.key]``)."""
    k = re.escape(key)
    return (
        re.search(rf"^\s*#?\s*{k}\s*=", text, re.MULTILINE) is not None
        or re.search(rf"^\[\[?([\w-]+\.)*{k}\]\]?", text, re.MULTILINE) is not None
    )


def fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def test_example_is_accepted_by_the_engine(tmp_path: Path) -> None:
    settings = load_settings(EXAMPLE)
    settings.state.dir = tmp_path / "state"
    with Engine(settings, get_plugin_manager(load_entrypoints=False)) as engine:
        assert set(engine.sources) == {"scans", "docs-mailbox", "psa-reports"}
        assert [t.name for t in engine.transforms] == ["mime", "extract", "route", "title"]


def test_demo_config_is_accepted_by_the_engine(tmp_path: Path) -> None:
    settings = load_settings(DEMO)
    settings.state.dir = tmp_path / "state"
    (tmp_path / "drop").mkdir()
    settings.sources[0].model_extra["path"] = str(tmp_path / "drop")  # type: ignore[index]
    with Engine(settings, get_plugin_manager(load_entrypoints=False)) as engine:
        assert set(engine.sources) == {"drop"}


@pytest.mark.parametrize(
    "model",
    [ItglueSettings, StateSettings, PipelineSettings, ObservabilitySettings],
    ids=lambda m: m.__name__,
)
def test_every_core_key_is_documented(model: type[BaseModel]) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = [k for k in fields(model) if not documented(text, k)]
    assert not missing, f"config/example.toml does not document {model.__name__}: {missing}"


def test_every_option_of_every_built_in_plugin_is_documented() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    hook = HookFacade(get_plugin_manager(load_entrypoints=False))
    missing: list[str] = []
    registries = {"source": hook.sources(), "transform": hook.transforms(), "sink": hook.sinks()}
    for kind, registry in registries.items():
        for name, cls in registry.items():
            for key in fields(cls.options_model):
                if not documented(text, key):
                    missing.append(f"{kind} {name}: {key}")
    common = [k for k in fields(SourceSettings) if not documented(text, k)]
    assert not missing + common, f"config/example.toml does not document: {missing + common}"
