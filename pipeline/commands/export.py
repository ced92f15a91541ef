"""``itglue-ingest export --organization NAME DIR``: a resumable local copy of one
organization's documents (HTML) and attachments, checksummed in ``DIR/manifest.json``.

The work is in :mod:`pipeline.export`; this module resolves the organization, shows
progress (rich on a terminal, a line per file otherwise) and turns errors into messages.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from itglue_common import escape_controls, human_size
from pipeline.settings import Settings

from .common import build_client, client_errors, is_tty, settings_options


class _ExportProgress:
    """Files written / unchanged / failed: a rich line on a TTY, a line per file otherwise."""

    def __init__(self) -> None:
        self.counts = {"written": 0, "unchanged": 0, "failed": 0}
        self._rich: Any = None
        if is_tty():
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._rich = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._rich.add_task("export", total=None)

    def __enter__(self) -> _ExportProgress:
        if self._rich is not None:
            self._rich.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.__exit__(*exc)

    def __call__(self, event: str, path: str) -> None:
        self.counts[event] += 1
        if self._rich is not None:
            c = self.counts
            self._rich.update(
                self._task,
                description=f"{c['written']} fetched, {c['unchanged']} unchanged, "
                f"{c['failed']} failed: {escape_controls(path)[-60:]}",
            )
        elif event != "unchanged":
            click.echo(f"{event}: {escape_controls(path)}", err=True)


@click.command("export")
@settings_options
@click.option("--organization", "organization", required=True, help="Organization name (or id).")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export(settings: Settings, organization: str, directory: Path) -> None:
    """Copy an organization's documents (HTML) and attachments into DIRECTORY.

    Every document's sections become one sanitized HTML file; every attachment of the
    organization's documents, configurations, contacts, locations, passwords, domains,
    SSL certificates, checklists, tickets and flexible assets is downloaded (streamed).
    DIRECTORY/manifest.json records sha256, size, updated_at and source of each file; a
    re-run fetches only what changed, and an interrupted one resumes. Exit code 1 when
    some file failed (the others are kept).
    """
    from core_client.exceptions import AmbiguousNameError, ITGlueError, UnknownNameError
    from pipeline.export import ExportError, OrganizationExport

    with client_errors():
        client = build_client(settings)
    started = time.monotonic()
    try:
        try:
            org_id = client.names.id_for("organizations", organization)
            org = client.organizations.get(org_id)
        except (UnknownNameError, AmbiguousNameError) as e:
            raise click.ClickException(str(e)) from None
        with _ExportProgress() as progress:
            job = OrganizationExport(client, org, directory, progress)
            report = job.run()
    except ExportError as e:
        raise click.ClickException(str(e)) from None
    except ITGlueError as e:
        raise click.ClickException(f"export stopped: {escape_controls(str(e))}") from None
    except OSError as e:
        raise click.ClickException(f"export stopped: {e}") from None
    finally:
        client.close()
    click.echo(
        f"{org.attr('name')}: {len(report.written)} files fetched "
        f"({human_size(report.bytes_written)}), {report.unchanged} unchanged, "
        f"{len(report.failed)} failed in {time.monotonic() - started:.1f} s -> {directory}"
    )
    for collection in report.skipped_collections:
        click.echo(f"skipped: {collection} (not available on this account)", err=True)
    for line in report.failed:
        click.echo(f"failed: {escape_controls(line)}", err=True)
    if report.failed:
        sys.exit(1)


COMMANDS = (export,)
