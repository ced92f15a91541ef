"""``itglue-ingest release-claims``: a dead collector's claimed files back into the drop folder."""

from __future__ import annotations

from pathlib import Path

import click

from .claims import claimed_counts, release_claims, valid_collector_id


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
