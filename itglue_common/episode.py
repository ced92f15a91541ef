"""Trouble that lasts (IT Glue down, a 429 storm, the engine's disk full), told in few
lines: once when it starts, at most once per interval while it lasts (how many failures,
the last one), once when it ends -- instead of a line per failed attempt.

:class:`Episode` only counts and decides *when* to speak; the caller logs the
:class:`Note` it gets back, in its own words or with :meth:`Note.text`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

REPORT_EVERY = 60.0  # seconds between "still failing" lines


@dataclass(frozen=True)
class Note:
    """What to say about an episode now."""

    kind: Literal["start", "still", "end"]
    seconds: float  # since the episode began
    failures: int  # failures counted in the episode
    last: str  # the last failure, short

    def text(self, subject: str, unit: str = "attempts") -> str:
        """The usual wording: ``IT Glue unavailable: still failing: 37 attempts over 60 s,
        last: GET /organizations -> 503``."""
        if self.kind == "start":
            return f"{subject}: {self.last}"
        if self.kind == "still":
            return (
                f"{subject}: still failing: {self.failures} {unit} over {self.seconds:.0f} s,"
                f" last: {self.last}"
            )
        return f"{subject}: recovered after {self.seconds:.0f} s, {self.failures} {unit}"


class Episode:
    """Counts the failures of one kind of trouble and says when to tell (thread-safe).

    ``every``: seconds between "still" notes. ``calm_after``: trouble that comes back
    within this long after it ended continues the same episode (no new "start" note),
    so a flapping service is not a pair of lines per blip; its end is told only when a
    note was told since the last end. ``clock``: injectable for tests.
    """

    def __init__(
        self,
        *,
        every: float = REPORT_EVERY,
        calm_after: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every = every
        self.calm_after = every if calm_after is None else calm_after
        self._clock = clock
        self._lock = threading.Lock()
        self._active = False
        self._since = 0.0
        self._told_at = 0.0
        self._ended_at: float | None = None
        self._failures = 0
        self._last = ""
        self._told = False  # a note was told since the last end: the end must be told

    @property
    def active(self) -> bool:
        return self._active

    @property
    def failures(self) -> int:
        return self._failures

    @property
    def last(self) -> str:
        return self._last

    def seconds(self) -> float:
        """How long the current (or last) episode has lasted."""
        return self._clock() - self._since

    def failure(self, detail: str) -> Note | None:
        """One more failure; a note when it starts an episode or a summary is due."""
        with self._lock:
            now = self._clock()
            self._last = detail
            if not self._active:
                self._active = True
                calm = self._ended_at is None or now - self._ended_at >= self.calm_after
                if calm:  # a new episode
                    self._since = self._told_at = now
                    self._failures = 1
                    self._told = True
                    return Note("start", 0.0, 1, detail)
            self._failures += 1
            if now - self._told_at >= self.every:
                self._told_at = now
                self._told = True
                return Note("still", now - self._since, self._failures, detail)
            return None

    def success(self) -> Note | None:
        """The trouble is over (for now): the "end" note, unless nothing was told."""
        with self._lock:
            if not self._active:
                return None
            now = self._clock()
            self._active = False
            self._ended_at = now
            told, self._told = self._told, False
            return Note("end", now - self._since, self._failures, self._last) if told else None
