"""The source contract: how a plugin hands documents to the engine.

A source is a class registered by name through ``ingest_register_sources``; the
configuration's ``[[sources]]`` table with ``type = "<name>"`` instantiates it. The
engine gives it a :class:`SourceContext` to emit drafts, look up what the ledger
already knows and keep checkpoints.

Exactly-once rests on two rules the source must keep:

* Emit first, act later: a post-action (move the file, flag the mail) happens only in
  :meth:`Source.ack` (delivered or duplicate) or :meth:`Source.nack` (failed for good),
  which the engine calls after the ledger recorded the outcome.
* ``ack``/``nack`` are idempotent: after a crash the engine may call them again.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from .records import DocumentRecord, RecordDraft

RecordState = Literal["received", "ready", "duplicate", "delivering", "delivered", "done", "failed"]


@dataclass(frozen=True)
class EmitResult:
    """What became of an emitted draft.

    ``accepted``: new; spooled and in the ledger as ``received`` (record_id set), or
    -- its content landed before -- recorded as ``duplicate`` without being spooled.
    ``known``: the ledger already has this ``(source, source_ref, version)``; ``state``
    says how far it got. Nothing was read.
    ``failed``: the input could not be read (vanished, permission, over the size limit);
    recorded as failed with ``reason``; the original was not touched.
    """

    status: Literal["accepted", "known", "failed"]
    record_id: int | None = None
    state: RecordState | None = None
    reason: str | None = None


class SourceContext(Protocol):
    """What the engine offers a running source."""

    source_name: str
    stopping: threading.Event  # set on shutdown: return from scan/watch promptly
    log: logging.Logger
    max_file_size: int  # bytes; larger files fail with a clear reason
    # `once --dry-run`: take nothing away while scanning (no claim, no move, no flag);
    # ack and nack are not called at all
    dry_run: bool

    def emit(self, draft: RecordDraft) -> EmitResult:
        """Spool the draft's files and record it as ``received``.

        Durable when it returns (the source may advance its checkpoint). Blocks while
        the spool is full (back-pressure). Idempotent per ``(source_ref, version)``.
        """
        ...

    def emit_many(self, drafts: Sequence[RecordDraft]) -> list[EmitResult | Exception]:
        """``emit`` of each draft, in order, for a source that finds many at once (a
        backlog): the ledger is asked and written a few times for the whole batch, not a
        few times per draft. Where ``emit`` would raise, the exception is in the list
        instead (as ``asyncio.gather(..., return_exceptions=True)``); each result is
        durable when the call returns."""
        ...

    def known(self, source_ref: str, version: str = "") -> RecordState | None:
        """The ledger state of ``(source, source_ref, version)``, or None if never seen."""
        ...

    def fail(self, draft: RecordDraft, reason: str) -> None:
        """Record a draft that cannot even be spooled as failed, with its reason."""
        ...

    def get_checkpoint(self, key: str) -> str | None:
        """A value this source saved with :meth:`set_checkpoint` (e.g. a feed cursor)."""
        ...

    def set_checkpoint(self, key: str, value: str) -> None:
        """Save a value durably in the ledger database (only after emit returned)."""
        ...

    def access_token(self, account: str) -> str | None:
        """An OAuth2 access token for ``account`` from the ``ingest_access_token`` hook
        (registered for redaction), or None when no plugin answers."""
        ...

    def secret(self, key: str, env: str | None = None) -> str:
        """A secret for this source: from the environment variable ``env`` when set,
        else from the keyring (service ``itglue-ingest``, user ``source:<name>:<key>``).
        Raises a clear ``PermanentError`` when it is missing."""
        ...

    def report_scan(self, error: str | None = None) -> None:
        """Tell the engine how the latest look at the input went: ``None`` when it
        succeeded (the source is connected; the time is its last successful scan), else
        why it could not reach what it reads (an unmounted folder, a refused login).
        ``status``, ``/readyz`` and the metrics show it. The engine reports every
        ``scan()`` that returns (success) or raises (the error) by itself: call this
        only from inside :meth:`Source.watch`, and from ``scan()`` for a problem it
        does not raise."""
        ...


class SourceOptions(BaseModel):
    """Base of a source type's own configuration keys (the rest of its [[sources]] table)."""

    model_config = ConfigDict(extra="forbid")

    def secrets(self) -> list[tuple[str, str | None]]:
        """The ``(key, env)`` of each secret a source with these options reads through
        :meth:`SourceContext.secret` (``itglue-ingest validate`` checks that each is set)."""
        return []

    def endpoints(self) -> list[tuple[str, int]]:
        """The ``(host, port)`` of each server the source connects to (``itglue-ingest
        validate --online`` checks that each accepts a connection)."""
        return []


class Source(ABC):
    """Base class of source plugins.

    Subclasses set ``options_model`` to a :class:`SourceOptions` subclass that validates
    their own keys, and implement :meth:`scan`; sources that can wait for news
    (inotify, IMAP IDLE) override :meth:`watch`.
    """

    options_model: ClassVar[type[SourceOptions]] = SourceOptions
    poll_interval: float = 60.0

    def __init__(self, name: str, options: Any, context: SourceContext) -> None:
        self.name = name
        self.options = options
        self.context = context

    @abstractmethod
    def scan(self) -> None:
        """Emit everything currently waiting (the backlog), then return.

        Called by ``itglue-ingest once`` and at daemon start. Must return early when
        ``context.stopping`` is set. Raise a :class:`~pipeline.errors.PipelineError` when
        the source could not scan (server unreachable, bad credentials): ``once`` reports
        the reason and exits 3; the daemon logs it and tries again.
        """

    def watch(self) -> None:
        """Emit new items until ``context.stopping`` is set (the daemon).

        The engine calls :meth:`scan` once before ``watch``; the default then polls
        :meth:`scan` every ``poll_interval`` seconds (and reports each one).
        """
        while not self.context.stopping.wait(self.poll_interval):
            try:
                self.scan()
            except Exception as e:
                self.context.report_scan(getattr(e, "reason", None) or f"{type(e).__name__}: {e}")
                raise
            self.context.report_scan()

    def ack(self, record: DocumentRecord, outcome: Literal["delivered", "duplicate"]) -> None:  # noqa: B027
        """The record landed (or was already there): do the post-action. Idempotent."""

    def nack(self, record: DocumentRecord, reason: str) -> None:  # noqa: B027
        """The record failed for good: move it aside, flag it. Idempotent."""

    def close(self) -> None:  # noqa: B027
        """Release connections and observers."""
