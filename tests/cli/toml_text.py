"""A configuration file written from Python data (the tests' TOML writer: no new dependency)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def value(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, Path):
        return json.dumps(str(v))
    return json.dumps(v)  # str, int, float, bool: JSON's spelling is TOML's


def dumps(config: dict[str, Any]) -> str:
    """Tables of scalars and inline tables, plus ``sources`` as ``[[sources]]``; a key
    whose value is None is left out."""
    lines: list[str] = []
    for table, body in config.items():
        if table == "sources":
            continue
        lines.append(f"[{table}]")
        lines += [f"{json.dumps(k)} = {value(v)}" for k, v in body.items() if v is not None]
        lines.append("")
    for source in config.get("sources", []):
        lines.append("[[sources]]")
        lines += [f"{json.dumps(k)} = {value(v)}" for k, v in source.items()]
        lines.append("")
    return "\n".join(lines)


def write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(dumps(config))
    return path
