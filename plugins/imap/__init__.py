"""The mailbox source (``type = "imap"``): shared mailboxes into IT Glue, exactly once.

The plugin module is ``plugins.imap``; it registers like any third-party plugin::

    @hookimpl
    def ingest_register_sources(register):
        register("imap", ImapSource)

Its parts, one job each: :mod:`.options` (the configuration keys), :mod:`.credentials`
(password or OAuth2 token), :mod:`.connection` (TLS, login, round-trip counting),
:mod:`.parse` (hostile MIME into headers, body and files), :mod:`.rules` (filters,
organization, the record draft), :mod:`.drafts` (one mail into its drafts),
:mod:`.checkpoints` (the sync state in the ledger), :mod:`.post_actions` (what happens
to a mail after delivery), :mod:`.source` (UID sync, IDLE, ack/nack).
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline import Source, hookimpl

from .options import ImapOptions, RuleOptions
from .source import ImapSource

__all__ = ["ImapOptions", "ImapSource", "RuleOptions"]


@hookimpl
def ingest_register_sources(register: Callable[[str, type[Source]], None]) -> None:
    register("imap", ImapSource)
