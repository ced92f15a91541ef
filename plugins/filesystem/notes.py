"""Odd input logged once per file version: rescans meet the same odd file again and again."""

from __future__ import annotations

import collections
import logging
import threading

_NOTED_MAX = 10_000  # remembered notes; the oldest are forgotten (and may be logged again)


class OnceLog:
    """The source's log, saying each thing about a file version once."""

    def __init__(self, log: logging.Logger, source: str) -> None:
        self.log = log
        self.source = source
        self._noted: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def note(self, ref: str, version: str, level: int, msg: str, *args: object) -> None:
        """Log ``msg`` once per file version."""
        key = (ref, f"{version}:{msg}")
        with self._lock:
            if key in self._noted:
                return
            self._noted[key] = None
            if len(self._noted) > _NOTED_MAX:
                self._noted.popitem(last=False)
        self.log.log(level, msg, *args, extra={"source": self.source, "source_ref": ref})
