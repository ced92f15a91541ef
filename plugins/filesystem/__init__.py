"""Built-in plugin: the drop-folder source (``type = "filesystem"``).

Scanners, staff and other systems drop files into a (often network) folder; each
complete file becomes one record, delivered once, then moved to ``processed/``
(or deleted, or kept). See :mod:`plugins.filesystem.source` for how a file travels and
what happens to odd input, and ``config/example.toml`` for the options.

A package rather than one module: the stability logic, the streaming walk, the safe
reader, name handling and the no-overwrite moves are each tested on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from pipeline import Source, hookimpl

from .claims import claimed_counts, release_claims, valid_collector_id
from .options import FilesystemOptions
from .source import FilesystemSource

__all__ = ["FilesystemOptions", "FilesystemSource"]


@hookimpl
def ingest_register_sources(register: Callable[[str, type[Source]], None]) -> None:
    register("filesystem", FilesystemSource)


@click.command("release-claims")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("collector", required=False)
def release_claims_command(folder: Path, collector: str | None) -> None:
    """List the collectors with files claimed in the drop folder FOLDER, or hand the
    files of COLLECTOR back to the drop folder (only for a collector that no longer
    runs: its host is retired or its state is lost)."""
    if collector is None:
        counts = claimed_counts(folder)
        if not counts:
            click.echo(f"no claimed files in {folder}")
        for name, n in counts.items():
            click.echo(f"{name}\t{n} file(s)")
        return
    if not valid_collector_id(collector):
        raise click.BadParameter(f"not a collector id: {collector!r}", param_hint="COLLECTOR")
    moved = release_claims(folder, collector)
    click.echo(f"{len(moved)} file(s) of collector {collector} moved back into {folder}")


@hookimpl
def ingest_register_commands(cli: click.Group) -> None:
    cli.add_command(release_claims_command)
