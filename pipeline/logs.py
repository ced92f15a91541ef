"""Logging for the CLI and daemon: readable text on a terminal, JSON lines for daemons.

Log records may carry ``extra`` fields (``request_id``, ``record_id``, ``source``...);
both formats show them. A redaction filter removes registered secrets from every
message as a last line of defence (the code never logs them in the first place).

Messages carry file names, subjects and feed fields as they came: the text format
escapes control characters in everything a record brings (one record, one line; a
traceback's lines are indented), the JSON format escapes what ``json.dumps`` leaves raw.

Text lines are for people: below DEBUG they show only the record's id and source of the
extra fields and are cut at :data:`TEXT_WIDTH` characters (at DEBUG, and in JSON, all
of it).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from itglue_common import escape_controls, json_safe

if TYPE_CHECKING:
    from rich.console import Console

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
TEXT_WIDTH = 160  # characters of a text line below DEBUG (then cut with "…")
_TEXT_EXTRAS = ("record_id", "source")  # the extra fields a short text line keeps
# Replaced (never mutated) under the lock, so a thread that logs while another registers
# a secret iterates a consistent snapshot; longest first, so that a secret containing
# another one is masked whole.
_secrets: tuple[str, ...] = ()
_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Never let ``value`` reach a log line (it is replaced by ``***``)."""
    global _secrets
    if value and len(value) >= 4:
        with _lock:
            if value not in _secrets:
                _secrets = tuple(sorted({*_secrets, value}, key=len, reverse=True))


def redact(text: str) -> str:
    for s in _secrets:
        if s in text:
            text = text.replace(s, "***")
    return text


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = redact(record.getMessage())
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        doc.update(
            {
                k: v if isinstance(v, int | float | bool | None) else redact(str(v))
                for k, v in _extras(record).items()
            }
        )
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        # the values are redacted before json.dumps: it escapes quotes, backslashes and
        # control characters, and the escaped form of a secret would not match any more
        return json_safe(redact(json.dumps(doc, ensure_ascii=False)))


class TextFormatter(logging.Formatter):
    """``width``: cut the first line of a record there (None: never; for DEBUG runs)."""

    def __init__(
        self,
        width: int | None = TEXT_WIDTH,
        fmt: str = "%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    ) -> None:
        super().__init__(fmt)
        self.width = width

    def format(self, record: logging.LogRecord) -> str:
        # not super().format(): it appends the traceback to the message, and the message
        # is escaped onto one line while the traceback keeps its lines (indented, so no
        # line of it can pass for a record of its own)
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        extras = _extras(record)
        if self.width is not None:
            extras = {k: extras[k] for k in _TEXT_EXTRAS if k in extras}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        line = escape_controls(redact(line))
        if self.width is not None and len(line) > self.width:
            line = line[: self.width - 1] + "…"
        lines = [line]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for block in (record.exc_text, record.stack_info and self.formatStack(record.stack_info)):
            if block:
                lines.extend("  " + escape_controls(redact(x)) for x in block.split("\n"))
        return redact("\n".join(lines))


_format = "text"


def log_format() -> str:
    """The format :func:`setup_logging` set last: ``text`` or ``json``."""
    return _format


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once (stderr); calling again replaces the handler."""
    global _format
    _format = fmt
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_itglue_ingest", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    width = None if logging.getLevelName(level) <= logging.DEBUG else TEXT_WIDTH
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(width))
    handler.addFilter(RedactingFilter())
    handler._itglue_ingest = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # urllib3 logs full URLs at DEBUG; keep it at INFO so query strings stay out of logs
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))


class _ConsoleHandler(logging.Handler):
    """Formatted lines printed through a rich console, as they are (JSON lines)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            self.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
        except Exception:
            self.handleError(record)


@contextmanager
def logs_through(console: Console) -> Iterator[None]:
    """While a rich live display (a progress bar) runs on ``console``, log lines print
    above it through the same console (a RichHandler) instead of tearing it apart."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_itglue_ingest", False)]
    if not ours:
        yield
        return
    handler: logging.Handler
    if _format == "json":
        handler = _ConsoleHandler(console)
        handler.setFormatter(JsonFormatter())
    else:
        handler = RichHandler(
            console=console,
            show_path=False,
            markup=False,
            rich_tracebacks=False,
            log_time_format="%H:%M:%S",
        )
        width = getattr(ours[0].formatter, "width", TEXT_WIDTH)
        handler.setFormatter(TextFormatter(width, "%(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    for h in ours:
        root.removeHandler(h)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for h in ours:
            root.addHandler(h)
