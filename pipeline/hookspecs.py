"""The itglue-ingest plugin contract.

Every hook is prefixed ``ingest_``. Plugins implement them with
``@pipeline.hookimpl``; built-in plugins (``pipeline.plugins.DEFAULT_PLUGINS``) use
exactly the same hooks and public API as third-party plugins, which are loaded from the
``itglue_ingest`` entry-point group.

Hooks are grouped by phase:

* Registration: called once when the engine or the CLI starts; plugins register named
  sources, transforms, sinks and CLI commands.
* Processing: called per record while it moves through the pipeline.
* Outcome: notifications after the ledger recorded what happened to a record.
* Credentials: secrets a plugin can supply at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .context import EngineContext
    from .extraction import RegisterExtractor
    from .records import DocumentRecord, Route
    from .sinks import DeliveryResult, Sink
    from .sources import Source
    from .transforms import Transform

PROJECT_NAME = "itglue_ingest"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -------------------------------------------------------------------------
# Registration hooks
# -------------------------------------------------------------------------


@hookspec
def ingest_register_sources(register: Callable[[str, type[Source]], None]) -> None:
    """Register source types.

    Called once per plugin manager when the engine builds its registries. Call
    ``register("mytype", MySource)`` for each source type the plugin offers; a
    ``[[sources]]`` table with ``type = "mytype"`` then instantiates ``MySource``.
    Registering a name twice is an error naming both plugins.

    :return: ignored.
    """


@hookspec
def ingest_register_transforms(register: Callable[[str, type[Transform]], None]) -> None:
    """Register transforms by name.

    Called once when the engine builds its registries. Transforms run in the order of
    ``[pipeline] transforms`` in the configuration, not in plugin order.

    :return: ignored.
    """


@hookspec
def ingest_register_sinks(register: Callable[[str, type[Sink]], None]) -> None:
    """Register sinks by name (``[pipeline] sink`` picks one; default ``itglue``).

    :return: ignored.
    """


@hookspec
def ingest_register_extractors(register: RegisterExtractor) -> None:
    """Register content extractors by MIME type.

    Called once when the engine (or ``itglue-ingest extract``) builds its registries.
    Call ``register(["application/vnd.visio"], extract_visio, name="visio")``: the
    built-in ``extract`` transform then runs ``extract_visio(path, limits)`` for files
    whose sniffed type is one of those (``"image/*"`` patterns allowed; an exact type
    wins). The extractor is a top-level function (it runs in a worker process) returning
    a :class:`pipeline.Extracted`, or raising :class:`pipeline.ExtractionError`.
    Registering a type twice is an error naming both extractors.

    :return: ignored.
    """


@hookspec
def ingest_register_commands(cli: click.Group) -> None:
    """Add commands to the ``itglue-ingest`` command line.

    Called once when the CLI starts, after the built-in commands exist. Use
    ``@cli.command()`` to add a command.

    :return: ignored.
    """


# -------------------------------------------------------------------------
# Processing hooks
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def ingest_route(record: DocumentRecord, context: EngineContext) -> Route | None:
    """Decide the organization and target of a record.

    Called by the ``route`` transform for each record. The first non-None result wins;
    the built-in router is ``trylast``, so any plugin's answer overrides it. Raise
    :class:`pipeline.errors.Rejected` to fail the record as unroutable.

    :return: a :class:`pipeline.records.Route`, or None to let the next router decide.
    """


# -------------------------------------------------------------------------
# Outcome hooks
# -------------------------------------------------------------------------


@hookspec
def ingest_record_delivered(record: DocumentRecord, result: DeliveryResult) -> None:
    """Called after a record was delivered and the ledger recorded it (before the
    source's post-action). For logging, metrics and alerts; exceptions are logged, not
    propagated.

    :return: ignored.
    """


@hookspec
def ingest_record_duplicate(record: DocumentRecord, existing: str) -> None:
    """Called when a record was found to be a duplicate of ``existing`` (a ledger
    record or an IT Glue reference) and was not uploaded again (before the source's
    post-action). A duplicate found as it arrived was never spooled: its files'
    ``path`` names no file.

    :return: ignored.
    """


@hookspec
def ingest_record_failed(record: DocumentRecord, reason: str, permanent: bool) -> None:
    """Called when a record failed: ``permanent`` True means it went to "failed" (the
    source is nacked); False means it will be retried.

    :return: ignored.
    """


# -------------------------------------------------------------------------
# Credential hooks
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def ingest_access_token(source: str, account: str) -> str | None:
    """Supply an OAuth2 access token (e.g. for IMAP XOAUTH2 with Microsoft 365 or
    Gmail) for ``account`` of the source named ``source``.

    Called each time a source authenticates, so a plugin can refresh tokens.

    :return: the token, or None to let the next plugin (or the configured command) answer.
    """
