"""Built-in plugin: the drop-folder source (``type = "filesystem"``).

Scanners, staff and other systems drop files into a (often network) folder; each
complete file becomes one record, delivered once, then moved to ``processed/``
(or deleted, or kept). See :mod:`plugins.filesystem.source` for how a file travels and
what happens to odd input, and ``config/example.toml`` for the options.

A package rather than one module: the stability logic, the streaming walk, the safe
reader, name handling and the no-overwrite moves are each tested on their own, and
:mod:`.source` only wires the parts (see :class:`~.source.FilesystemSource`).
"""

from __future__ import annotations

from collections.abc import Callable

import click

from pipeline import Source, hookimpl

from .commands import release_claims_command
from .options import FilesystemOptions
from .source import FilesystemSource

__all__ = ["FilesystemOptions", "FilesystemSource", "release_claims_command"]


@hookimpl
def ingest_register_sources(register: Callable[[str, type[Source]], None]) -> None:
    register("filesystem", FilesystemSource)


@hookimpl
def ingest_register_commands(cli: click.Group) -> None:
    cli.add_command(release_claims_command)
