"""``itglue-ingest validate``: every problem of a configuration at once, before a run.

The checks use what the engine uses (the settings models, the plugin manager, the
plugins' options models, the key and secret lookups) without starting anything: no
state folder is made, no source is opened, nothing is sent.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from ..hooks import HookFacade
from ..runner.assembly import Assembly, load_plugins
from ..settings import ConfigError, Settings
from ..sources import SourceOptions
from .online import endpoint_problems, itglue_problems
from .paths import path_problems
from .secrets import api_key_problems, instance_key, source_secret_problems, uses_itglue
from .settings import read_leniently


def validate_config(path: Path, *, online: bool = False) -> tuple[Settings | None, list[str]]:
    """The settings (None unless every check passed) and every problem, one line each,
    starting with the key it is about. ``online``: also ask IT Glue whether it accepts
    the key, and connect to each source's servers."""
    settings, index, problems = read_leniently(path)
    problems = [p.strip() for p in problems]
    if settings is None:
        return None, problems
    for name, instance in settings.itglue.named.items():
        problems += path_problems(instance, instance_key(settings, name))
    problems += path_problems(settings.state, "state", made_when_missing=True)
    # the [itglue] table as a whole was refused: its key settings are not known
    if uses_itglue(settings) and not any(p.startswith("itglue: ") for p in problems):
        key_problems = api_key_problems(settings)
        if not key_problems and online:
            key_problems = itglue_problems(settings)
        problems += key_problems
    pm, plugin_problems = load_plugins(settings)
    problems += plugin_problems
    if pm is not None:
        found = _plugin_problems(settings, HookFacade(pm), online)
        problems += [_renumber(p, index) for p in found]
    return (None if problems else settings), problems


def _plugin_problems(settings: Settings, hook: HookFacade, online: bool) -> list[str]:
    try:
        assembly = Assembly(settings, hook, check=False)
    except ConfigError as e:  # two plugins register one name
        return str(e).splitlines()
    problems = assembly.problems()
    plugins: list[tuple[str, str, type[BaseModel]]] = [
        ("transforms", name, assembly.transform_types[name].options_model)
        for name in settings.pipeline.transforms
        if name in assembly.transform_types
    ]
    if settings.pipeline.sink in assembly.sink_types:
        sink = assembly.sink_types[settings.pipeline.sink]
        plugins.append(("sinks", settings.pipeline.sink, sink.options_model))
    for kind, name, model in plugins:
        try:
            options, prefix = assembly.plugin_options(model, kind, name)
        except ConfigError as e:
            problems += str(e).splitlines()
        else:
            problems += path_problems(options, prefix)
    for i, src in enumerate(settings.sources):
        if src.type not in assembly.source_types:
            continue
        key = f"sources[{i}]"
        model = assembly.source_types[src.type].options_model
        try:
            source_options = assembly.options(model, src.options, key)
        except ConfigError as e:
            problems += str(e).splitlines()
            continue
        problems += path_problems(source_options, key)
        if src.enabled and isinstance(source_options, SourceOptions):
            problems += source_secret_problems(key, src.name, source_options)
            problems += endpoint_problems(key, source_options) if online else []
    return problems


def _renumber(problem: str, index: dict[int, int]) -> str:
    """``sources[i]`` of the kept sources as the file numbers them."""
    if not problem.startswith("sources[") or not index:
        return problem
    head, rest = problem[len("sources[") :].split("]", 1)
    return f"sources[{index.get(int(head), int(head))}]{rest}"
