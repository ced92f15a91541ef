"""The ``itglue-ingest`` command line.

The built-in commands live in ``pipeline.commands.*`` (one module per group); plugins
add theirs through the ``ingest_register_commands`` hook. What goes to stderr goes
through logging (errors included), so that ``--log-format json`` makes every line JSON.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from itglue_common import APP_NAME

from .logs import log_format, setup_logging

log = logging.getLogger("itglue_ingest.cli")
_deferred: list[str] = []  # warnings from before logging is set up

# Each module defines click commands/groups listed in its COMMANDS tuple.
_COMMAND_MODULES = (
    "pipeline.commands.demo",
    "pipeline.commands.engine",
    "pipeline.commands.client",
    "pipeline.commands.emulator",
    "pipeline.commands.validate",
    "pipeline.commands.export",
    "pipeline.commands.extract",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="DEBUG shows every API request (never its key or body).",
    envvar="ITGLUE_INGEST_LOG_LEVEL",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per line, for daemons and log shippers.",
    envvar="ITGLUE_INGEST_LOG_FORMAT",
)
@click.version_option(package_name=APP_NAME)
def cli(log_level: str, log_format: str) -> None:
    """Land scanned files, emails and exported documents in IT Glue, exactly once."""
    setup_logging(level=log_level.upper(), fmt=log_format)
    for message in _deferred:
        log.warning("%s", message)
    _deferred.clear()


def build_cli() -> click.Group:
    for module_name in _COMMAND_MODULES:
        module = importlib.import_module(module_name)
        for command in module.COMMANDS:
            cli.add_command(command)
    try:
        from .hooks import HookFacade
        from .plugins import get_plugin_manager

        HookFacade(get_plugin_manager()).register_commands(cli)
    except Exception as e:  # a broken plugin must not take the whole CLI down
        _deferred.append(f"plugin commands not loaded: {e}")
    return cli


def main() -> None:
    """Click's standalone mode, except that errors are log lines under ``--log-format json``."""
    try:
        build_cli().main(standalone_mode=False)
    except click.ClickException as e:
        if log_format() == "json":
            log.error("%s", e.format_message(), extra={"exit_code": e.exit_code})
        else:
            e.show()
        sys.exit(e.exit_code)
    except (click.Abort, KeyboardInterrupt, EOFError):
        if log_format() == "json":
            log.error("aborted", extra={"exit_code": 1})
        else:
            click.echo("Aborted!", err=True)
        sys.exit(1)
    except click.exceptions.Exit as e:  # --help, --version
        sys.exit(e.exit_code)
    sys.exit(0)
