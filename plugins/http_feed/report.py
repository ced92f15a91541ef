"""What one poll did: counted as items go, logged at the end, kept as ``last_poll``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PollReport:
    """What one poll did (logged at the end of each poll; kept as ``last_poll``)."""

    pages: int = 0
    items: int = 0
    emitted: int = 0
    known: int = 0
    failed: int = 0
    deferred: int = 0
    downloads: int = 0
    complete: bool = False
    error: str | None = None
    checkpoints: list[str] = field(default_factory=list)
