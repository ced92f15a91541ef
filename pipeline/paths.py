"""Option fields that name a file or a folder.

A plugin's options model marks such a field ``FolderField`` (a folder the program
writes in), ``FileField`` (a file it reads) or ``PathField`` (either), optionally
``| None``; ``~`` is expanded and a relative value is taken from the configuration
file's folder, like every path of the core settings, instead of from wherever the
engine happens to be started (``itglue-ingest validate`` checks each such path). A folder
that is a file (or lies below one), or a file that is a folder, is refused when the
configuration is validated: one line naming the key, not a traceback when it is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo

#: the pydantic validation-context key holding the configuration file's folder
CONFIG_DIR = "config_dir"


def resolve_from_config_dir(value: Path, info: ValidationInfo) -> Path:
    """``value`` with ``~`` expanded, taken from the configuration file's folder when
    relative."""
    value = value.expanduser()  # a shell would have; TOML does not
    context: Any = info.context
    base = context.get(CONFIG_DIR) if isinstance(context, dict) else None
    if base is None or value.is_absolute():
        return value
    return Path(base) / value


def check_folder(value: Path) -> Path:
    """``value`` when it is a folder or can be made one (nothing that is not a folder on
    the way), else ``ValueError`` saying what is in the way."""
    for p in (value, *value.parents):
        if p.is_dir():
            return value
        if p.exists() or p.is_symlink():
            what = "is" if p == value else f"lies below {p}, which is"
            raise ValueError(f"{value} {what} not a folder")
    return value


def check_file(value: Path) -> Path:
    """``value`` unless it is a folder (a missing file is for its user to report)."""
    if value.is_dir():
        raise ValueError(f"{value} is a folder, not a file")
    return value


PathField = Annotated[Path, AfterValidator(resolve_from_config_dir)]
"""A path option; relative values are taken from the configuration file's folder."""

FolderField = Annotated[Path, AfterValidator(resolve_from_config_dir), AfterValidator(check_folder)]
"""A folder option (relative to the configuration file's folder); refused when a file."""

FileField = Annotated[Path, AfterValidator(resolve_from_config_dir), AfterValidator(check_file)]
"""A file option (relative to the configuration file's folder); refused when a folder."""


def validation_context(
    config_dir: Path | None, instances: list[str] | None = None
) -> dict[str, Any]:
    """The context to validate options with so that ``PathField`` values resolve and
    ``InstanceField`` values are checked against the configuration's ``instances``."""
    from .instance_names import INSTANCES

    return {CONFIG_DIR: config_dir, INSTANCES: instances}
