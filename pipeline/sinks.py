"""The sink contract: deliver a ready record somewhere, resumably.

A multi-request delivery (create the document, add a section, attach file k) writes each
finished step to the :class:`StepJournal` before moving on; after a crash the engine
calls :meth:`Sink.deliver` again with the same journal, and the sink skips what is done.
Before retrying a create whose answer was lost, the sink reconciles (lists what exists
and matches by name and size) instead of creating blindly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from .context import EngineContext
from .records import DocumentRecord


class StepJournal(Protocol):
    """Durable per-record notes of finished delivery steps (ledger-backed)."""

    def get(self, step: str) -> str | None:
        """The value recorded for ``step`` (e.g. ``"document"`` -> its id), or None."""
        ...

    def record(self, step: str, value: str) -> None:
        """Commit ``step = value`` durably before the next request is made."""
        ...

    def steps(self) -> dict[str, str]:
        """Every recorded step."""
        ...

    def taken_by_another(self, step: str, value: str) -> bool:
        """Whether another record's journal holds ``value`` under a step matching ``step``
        (a GLOB pattern, e.g. ``"attachment:*"``): what another record made must not be
        adopted by this one's reconciliation, even after a restart."""
        ...


class _InstanceJournal:
    """A record's journal with its steps under its instance's name (``prod/document``):
    ids of two IT Glue instances may be equal, and another instance's document must
    never count as "taken" by :meth:`StepJournal.taken_by_another`."""

    def __init__(self, journal: StepJournal, instance: str) -> None:
        self._journal = journal
        self._prefix = f"{instance}/"  # instance names hold no GLOB characters

    def get(self, step: str) -> str | None:
        return self._journal.get(self._prefix + step)

    def record(self, step: str, value: str) -> None:
        self._journal.record(self._prefix + step, value)

    def steps(self) -> dict[str, str]:
        n = len(self._prefix)
        return {k[n:]: v for k, v in self._journal.steps().items() if k.startswith(self._prefix)}

    def taken_by_another(self, step: str, value: str) -> bool:
        return self._journal.taken_by_another(self._prefix + step, value)


def instance_journal(journal: StepJournal, instance: str | None) -> StepJournal:
    """The journal a sink gets for a record going to ``instance`` (None: unchanged)."""
    return journal if instance is None else _InstanceJournal(journal, instance)


@dataclass(frozen=True)
class DeliveryResult:
    """Where a record landed."""

    organization_id: str | None
    resource_type: str  # "documents" or the attachment target's type
    resource_id: str
    attachment_ids: list[str] = field(default_factory=list)
    url: str | None = None
    requests: int = 0  # API requests this delivery cost (this attempt)


class SinkOptions(BaseModel):
    """Base of a sink's own configuration (its ``[sinks.<name>]`` table).

    ``config_table``: the name of a top-level table the options are (also) read from,
    e.g. ``"routing"`` for ``[routing]``; its keys win over ``[sinks.<name>]``'s and
    errors name it. Fields typed ``pipeline.PathField`` take relative paths from the
    configuration file's folder.
    """

    model_config = ConfigDict(extra="forbid")
    config_table: ClassVar[str | None] = None


class Sink(ABC):
    """Base class of sinks."""

    options_model: ClassVar[type[SinkOptions]] = SinkOptions

    def __init__(self, name: str, options: Any, context: EngineContext) -> None:
        self.name = name
        self.options = options
        self.context = context

    def find_existing(self, record: DocumentRecord) -> str | None:
        """If the record's content is already at its target, a reference to it (it is
        then recorded as a duplicate and not uploaded). The engine checks its ledger
        first; this hook lets a sink consult its own knowledge (the metadata cache)."""
        return None

    @abstractmethod
    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        """Deliver the record; raise TransientError to retry later, PermanentError to fail."""

    def close(self) -> None:  # noqa: B027
        """Release resources."""


Options = dict[str, Any]
