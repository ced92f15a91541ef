"""Option fields that name a file or a folder.

A plugin's options model marks such a field ``PathField`` (or ``PathField | None``);
a relative value is then taken from the configuration file's folder, like every path of
the core settings, instead of from wherever the engine happens to be started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo

#: the pydantic validation-context key holding the configuration file's folder
CONFIG_DIR = "config_dir"


def _from_config_dir(value: Path, info: ValidationInfo) -> Path:
    context: Any = info.context
    base = context.get(CONFIG_DIR) if isinstance(context, dict) else None
    if base is None or value.is_absolute():
        return value
    return Path(base) / value


PathField = Annotated[Path, AfterValidator(_from_config_dir)]
"""A path option; relative values are taken from the configuration file's folder."""


def validation_context(config_dir: Path | None) -> dict[str, Any]:
    """The context to validate options with so that ``PathField`` values resolve."""
    return {CONFIG_DIR: config_dir}
