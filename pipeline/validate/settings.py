"""The configuration read leniently: every schema problem, and settings to check further.

:func:`pipeline.settings.load_settings` stops at the first invalid file; ``validate``
must go on to the plugins, paths and secrets. Pydantic already lists every problem of
the core schema; what failed is then replaced by its default (a section) or left out
(a source), so that the rest can still be checked.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ..settings import ConfigError, Settings, load_settings, parse_settings

SECTIONS = ("itglue", "state", "pipeline", "transforms", "sinks", "plugins")


def read_leniently(path: Path) -> tuple[Settings | None, dict[int, int], list[str]]:
    """``(settings, index, problems)``: settings of what is valid (None when the file
    cannot be read as TOML), ``index`` maps a kept source's position to its position in
    the file, and one line per schema problem."""
    try:
        return load_settings(path), {}, []
    except ConfigError as e:
        first = str(e)
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None, {}, [first]  # unreadable, not UTF-8, not TOML: nothing to go on
    problems = first.splitlines()[1:]  # the first line says which file is invalid
    kept = dict(data)
    for problem in problems:
        _drop(kept, _key(problem))
    sources = data.get("sources")
    index: dict[int, int] = {}
    if isinstance(sources, list):
        sources = [dict(t) if isinstance(t, dict) else t for t in sources]
        bad: set[int | None] = set()
        for problem in problems:
            i = _source_index(problem)
            if i is not None and isinstance(sources[i], dict) and _key(problem)[1:] == ["name"]:
                sources[i]["name"] = f"source-{i}"  # a bad name: its options still count
            else:
                bad.add(i)
        good = [i for i in range(len(sources)) if i not in bad and isinstance(sources[i], dict)]
        names = [sources[i].get("name") for i in good]
        good = [i for i, n in zip(good, names, strict=True) if names.count(n) == 1]
        kept["sources"] = [sources[i] for i in good]
        index = dict(enumerate(good))
    elif "sources" in kept:
        del kept["sources"]
    for key in [k for k in kept if k not in (*SECTIONS, "sources")]:
        if not isinstance(kept[key], dict):
            del kept[key]
    try:
        settings = parse_settings(kept, str(path), config_dir=path.parent)
    except ConfigError:
        return None, {}, problems
    return settings, index, problems


def _key(problem: str) -> list[str]:
    """The key a problem line (``  pipeline.workers: ...``) is about, as its parts."""
    return problem.strip().split(":", 1)[0].split(".")


def _drop(data: dict[str, Any], key: list[str]) -> None:
    """Leave out what failed: the key in its section (the section's other keys are still
    checked), or the whole section when the problem is about the section itself."""
    section = key[0].split("[", 1)[0]
    if section not in SECTIONS:
        return
    table = data.get(section)
    if len(key) >= 2 and isinstance(table, dict) and key[1] in table:
        data[section] = {k: v for k, v in table.items() if k != key[1]}
    else:
        data.pop(section, None)


def _source_index(problem: str) -> int | None:
    key = problem.strip().split(":", 1)[0]
    if not key.startswith("sources["):
        return None
    try:
        return int(key[len("sources[") :].split("]", 1)[0])
    except ValueError:
        return None
