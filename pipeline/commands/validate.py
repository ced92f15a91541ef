"""``itglue-ingest validate -c FILE [--online]``: every problem of a configuration at once.

Exit 0 when the configuration is fine, 2 (a configuration error, as for every command)
with one line per problem otherwise. ``--online`` also asks IT Glue and the sources'
servers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from itglue_common import escape_controls
from pipeline.exit_codes import ExitCode

from .common import CONFIG_ENVVAR


@click.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=CONFIG_ENVVAR,
    required=True,
    help=f"TOML configuration file (or ${CONFIG_ENVVAR}).",
)
@click.option(
    "--online",
    is_flag=True,
    help="Also check that IT Glue accepts the key and that the sources' servers answer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
def validate(config_path: Path, online: bool, as_json: bool) -> None:
    """Check a configuration without running it: the schema, the plugins, the source
    types and options, every path (exists, readable, writable where the engine writes),
    every secret (the API key, mailbox passwords, feed tokens). Every problem is listed,
    not only the first; exit 0 when there is none, 2 otherwise."""
    from pipeline.validate import validate_config

    _, problems = validate_config(config_path, online=online)
    if as_json:
        click.echo(json.dumps({"config": str(config_path), "problems": problems}, indent=2))
    elif problems:
        click.echo(f"{escape_controls(str(config_path))}: {len(problems)} problem(s)", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
    else:
        checked = "offline and online" if online else "offline; --online also asks the servers"
        click.echo(f"{escape_controls(str(config_path))}: ok ({checked})")
    if problems:
        sys.exit(ExitCode.USAGE)


COMMANDS: tuple[click.Command, ...] = (validate,)
