"""Every path of a configuration, checked as the engine will use it.

The options models say what a path is (:mod:`pipeline.paths`): a ``FolderField`` is a
folder the engine reads and writes in (it must exist, unless the engine makes it), a
``FileField`` a file it reads, a ``PathField`` either (read when it exists).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo

from itglue_common import escape_controls

from ..paths import check_file, check_folder, resolve_from_config_dir

Kind = Literal["folder", "file", "path"]


def path_problems(model: BaseModel, prefix: str, *, made_when_missing: bool = False) -> list[str]:
    """One line per unusable path in ``model`` (and the models inside it), naming the key.

    :param made_when_missing: the engine makes the model's missing folders (the state
        folder): then a missing folder only needs a writable parent.
    """
    return [
        f"{key}: {escape_controls(why)}"
        for key, kind, path in _paths(model, prefix)
        if (why := _problem(kind, path, made_when_missing)) is not None
    ]


def _paths(model: BaseModel, prefix: str) -> Iterator[tuple[str, Kind, Path]]:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}.{name}" if prefix else name
        kind = _kind(info)
        if kind is not None and isinstance(value, Path):
            yield key, kind, value
        elif isinstance(value, BaseModel):
            yield from _paths(value, key)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _paths(item, f"{key}[{i}]")


def _kind(info: FieldInfo) -> Kind | None:
    """What the field's annotation marks it as (``FolderField | None`` too)."""
    found = _kind_of(info.metadata)
    if found is not None:
        return found
    for arg in get_args(info.annotation):
        if get_origin(arg) is Annotated:
            found = _kind_of(arg.__metadata__)
            if found is not None:
                return found
    return None


def _kind_of(metadata: Any) -> Kind | None:
    funcs = {m.func for m in metadata if isinstance(m, AfterValidator)}
    if check_folder in funcs:
        return "folder"
    if check_file in funcs:
        return "file"
    if resolve_from_config_dir in funcs:
        return "path"
    return None


def _problem(kind: Kind, path: Path, made_when_missing: bool) -> str | None:
    if not path.exists():
        if kind == "path":
            return None
        if kind == "folder" and made_when_missing:
            return _creatable(path)
        if kind == "folder":
            return f"{path}: no such folder (not mounted, or a typo?)"
        return f"{path}: no such file"
    if kind == "folder":
        if not path.is_dir():
            return f"{path} is not a folder"
        if not os.access(path, os.R_OK | os.X_OK):
            return f"{path}: this user (uid {os.getuid()}) cannot read the folder"
        if not os.access(path, os.W_OK):
            return f"{path}: this user (uid {os.getuid()}) cannot write in the folder"
        return None
    if kind == "file" and not path.is_file():
        return f"{path} is not a regular file"
    if not os.access(path, os.R_OK):
        return f"{path}: this user (uid {os.getuid()}) cannot read it"
    return None


def _creatable(path: Path) -> str | None:
    """None when the engine can make ``path``: its nearest existing parent is writable."""
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is None or not parent.is_dir():
        return f"{path}: cannot be made (nothing on the way is a folder)"
    if not os.access(parent, os.W_OK | os.X_OK):
        uid = os.getuid()
        return f"{path}: does not exist, and this user (uid {uid}) cannot make it in {parent}"
    return None
