"""What a run reports: its summary, its progress, and the counters behind the progress."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunSummary:
    """What a run did: counts of the records that reached each outcome during the run,
    and the records still pending at its end (waiting for a retry, or cut by a stop)."""

    delivered: int = 0
    duplicate: int = 0
    failed: int = 0
    pending: int = 0
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    source_errors: dict[str, str] = field(default_factory=dict)  # sources whose scan failed
    # sources whose scan left items for the next one (deferred downloads, a page limit)
    deferred: dict[str, str] = field(default_factory=dict)
    key_refused: str | None = None  # why the destination refused the key (the run stopped)
    elapsed: float = 0.0
    timed_out: bool = False  # once_timeout: nothing finished for that long (records retrying)
    max_duration_reached: bool = False  # once_max_duration: the run was cut with work left
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Everything landed (delivered or duplicate): nothing failed, nothing left, and
        every source could scan."""
        from ..exit_codes import ExitCode, once_exit_code

        return once_exit_code(self) is ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Progress:
    """Progress of a ``run_once``: records received so far and how many are finished."""

    received: int
    finished: int
    delivered: int
    duplicate: int
    failed: int


class RunStats:
    """In-memory outcome counters of this process (progress without ledger scans)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def count(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] = self._counts.get(outcome, 0) + 1

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()

    def progress(self, backlog: int) -> Progress:
        """The progress, counting ``backlog`` unfinished records of earlier runs as received."""
        with self._lock:
            st = dict(self._counts)
        delivered, dup, failed = st.get("delivered", 0), st.get("duplicate", 0), st.get("failed", 0)
        return Progress(
            received=backlog + st.get("received", 0) + st.get("emit_failed", 0),
            finished=delivered + dup + failed,
            delivered=delivered,
            duplicate=dup,
            failed=failed,
        )
