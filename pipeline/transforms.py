"""The transform contract: named steps run in the order the configuration lists.

pluggy cannot chain one implementation's output into the next, so transforms are not
hooks: a plugin registers a class by name through ``ingest_register_transforms`` and
``[pipeline] transforms = ["mime", "extract", "route", "title"]`` says which run, in what order.
A transform returns the (possibly changed) record, or raises
:class:`pipeline.errors.Rejected` to fail it with a reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from .context import EngineContext
from .records import DocumentRecord


class TransformOptions(BaseModel):
    """Base of a transform's own configuration (its ``[transforms.<name>]`` table).

    ``config_table``: the name of a top-level table the options are (also) read from,
    e.g. ``"routing"`` for ``[routing]``; its keys win over ``[transforms.<name>]``'s and
    errors name it. Fields typed ``pipeline.PathField`` take relative paths from the
    configuration file's folder.
    """

    model_config = ConfigDict(extra="forbid")
    config_table: ClassVar[str | None] = None


class Transform(ABC):
    """Base class of transforms."""

    options_model: ClassVar[type[TransformOptions]] = TransformOptions

    def __init__(self, name: str, options: Any, context: EngineContext) -> None:
        self.name = name
        self.options = options
        self.context = context

    @abstractmethod
    def apply(self, record: DocumentRecord) -> DocumentRecord:
        """Return the record to pass on (a changed copy or the same); raise Rejected to fail it."""

    def prepare(self) -> None:  # noqa: B027
        """Get ready for the first record without waiting for it (start worker
        processes...): called when the daemon starts, so that the first files dropped
        into an idle daemon do not wait for it. Errors are logged, not raised."""

    def routes_alone(self, before: Sequence[str]) -> bool:
        """Whether this transform sets where a record goes (organization, target) as it
        would in its place, when run on the record as it arrived, without the transforms
        named ``before`` (those configured ahead of it). The engine then routes a record
        whose content landed before, to find it a duplicate (``dedupe_scope =
        "organization"``) without transforming it; default False (never asked to)."""
        return False

    def close(self) -> None:  # noqa: B027
        """Release resources (worker processes...) when the engine closes."""
