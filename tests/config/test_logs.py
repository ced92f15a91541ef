"""Logging output: JSON lines with extras for daemons, registered secrets redacted."""

from __future__ import annotations

import json
import logging

import pytest

from pipeline.logs import TEXT_WIDTH, register_secret, setup_logging


@pytest.fixture(autouse=True)
def _restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_format_carries_extras(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "json")
    logging.getLogger("itglue_ingest.test").info(
        "uploaded %s", "a.pdf", extra={"request_id": "r-1", "record_id": 7}
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    doc = json.loads(line)
    assert doc["msg"] == "uploaded a.pdf"
    assert doc["request_id"] == "r-1"
    assert doc["record_id"] == 7
    assert doc["level"] == "INFO"


def test_registered_secret_never_reaches_the_output(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "ITG.canary-logs-5b1e"
    register_secret(secret)
    for fmt in ("text", "json"):
        setup_logging("DEBUG", fmt)
        log = logging.getLogger("itglue_ingest.test")
        log.debug("key is %s", secret, extra={"detail": f"x-api-key={secret}"})
        try:
            raise RuntimeError(f"boom {secret}")
        except RuntimeError:
            log.exception("failed")
    err = capsys.readouterr().err
    assert "key is ***" in err
    assert secret not in err


def test_text_format_is_one_line_with_extras(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("DEBUG", "text")
    logging.getLogger("itglue_ingest.test").warning("slow", extra={"duration_ms": 12})
    err = capsys.readouterr().err.strip()
    assert err.endswith("duration_ms=12")
    assert "WARNING" in err


def test_text_lines_below_debug_are_short(capsys: pytest.CaptureFixture[str]) -> None:
    """Below DEBUG a text line keeps the record id and source of its extra fields and is
    cut at TEXT_WIDTH; the JSON format keeps everything."""
    setup_logging("INFO", "text")
    log = logging.getLogger("itglue_ingest.test")
    extra = {"record_id": 7, "source": "drop", "request_id": "abc123", "duration_ms": 12}
    log.warning("slow", extra=extra)
    log.warning("x" * 500 + "\x1b[2J", extra=extra)
    first, second = capsys.readouterr().err.splitlines()
    assert first.endswith("slow record_id=7 source=drop"), first
    assert len(second) == TEXT_WIDTH and second.endswith("x…"), second
    setup_logging("INFO", "json")
    log.warning("x" * 500, extra=extra)
    doc = json.loads(capsys.readouterr().err)
    assert doc["msg"] == "x" * 500 and doc["request_id"] == "abc123"
