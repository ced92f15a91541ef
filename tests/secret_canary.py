"""Shared tools of the secret canary tests: capture every log record at DEBUG, and render
an exception every way an error reporter might (so a leaked secret has nowhere to hide)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager


class CaptureAll(logging.Handler):
    """Keeps every record's full content: formatted message, raw args, extras, exc text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.texts.append(logging.Formatter().format(record))
        self.texts.append(repr(record.args))
        self.texts.append(repr(sorted(record.__dict__.items(), key=lambda kv: kv[0])))


@contextmanager
def capture_debug_logs(handler: CaptureAll) -> Iterator[CaptureAll]:
    """``handler`` on the root logger, with the root logger at DEBUG, for the block."""
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def describe(exc: BaseException, *, with_locals: bool = True) -> str:
    """repr, str, args, attributes, the traceback, and (``with_locals``) the traceback with
    every frame's local variables (what error reporters such as Sentry show)."""
    parts = [repr(exc), str(exc), repr(exc.args), repr(vars(exc))]
    parts += traceback.format_exception(exc)
    if with_locals:
        tb = traceback.TracebackException.from_exception(exc, capture_locals=True)
        parts += list(tb.format())
    return "\n".join(parts)
