"""Log and terminal injection (issue 10, defect 6): file names, subjects and reasons are
printed escaped. A name with a newline must not forge a log line ("delivered
FORGED.pdf"), an escape sequence must not retitle or clear the terminal: the real CLI in
a subprocess, its raw bytes inspected."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.logs import setup_logging
from tests.child_process import child_env
from tests.pipeline.test_engine_cli import config

FORGED_LINE = "\n2026-01-01 00:00:00,000 INFO    itglue_ingest.engine: delivered FORGED.pdf"
TERMINAL = "\x1b]0;pwned\x07\x1b[2J"
# C0 and C1 controls, DEL, line/paragraph separators, bidi embeddings/overrides/isolates
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """``itglue-ingest ARGS`` as a process: (exit code, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        env=child_env(),
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def assert_clean(text: str) -> None:
    assert not RAW_CONTROL.search(text), [m.group() for m in RAW_CONTROL.finditer(text)]
    for line in text.splitlines():
        assert "FORGED.pdf" not in line or "\\n2026-01-01" in line, line


def test_hostile_names_and_reasons_print_escaped(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    inbox = tmp_path / "inbox"
    # "reject" fails the record in the picky transform with its name in the reason,
    # "permanent" in the sink; the others are delivered (logged with their names)
    (inbox / f"reject{FORGED_LINE}.txt").write_text("1")
    (inbox / f"permanent{TERMINAL}.txt").write_text("2")
    (inbox / f"ok{FORGED_LINE}{TERMINAL}\u202etxt.exe").write_text("3")

    # DEBUG: lines are not cut, the whole escaped name shows
    code, out, err = cli(
        tmp_path, "--log-format", "text", "--log-level", "debug", "once", "-c", str(cfg)
    )
    assert code == 3, out + err
    assert "2 failed" in out
    assert_clean(out)
    assert_clean(err)
    # the delivered record is one log line, its name visible in escaped form
    delivered = [line for line in err.splitlines() if " delivered ok" in line]
    assert len(delivered) == 1, err
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\u202etxt.exe" in delivered[0]
    assert not any(line.startswith("2026-01-01") for line in err.splitlines()), err

    code, out, err = cli(tmp_path, "status", "-c", str(cfg))
    assert code == 3, out + err  # failed records
    assert_clean(out)
    assert "reject\\n2026-01-01" in out and "permanent\\x1b]0;pwned" in out
    assert not any(line.startswith("2026-01-01") for line in out.splitlines()), out

    # --json stays exact: the names come back as they are
    code, out, _ = cli(tmp_path, "status", "-c", str(cfg), "--json")
    refs = {f["source_ref"] for f in json.loads(out)["failed"]}
    assert refs == {f"reject{FORGED_LINE}.txt", f"permanent{TERMINAL}.txt"}
    assert_clean(out)


def test_a_record_is_one_text_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("DEBUG", "text")  # not cut at TEXT_WIDTH
    log = logging.getLogger("itglue_ingest.engine")
    name = f"a{FORGED_LINE}{TERMINAL}\u2028\x85.pdf"
    log.info("delivered %s -> %s %s", name, "documents", "7", extra={"source": f"s{TERMINAL}"})
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert_clean(err)
    assert "delivered a\\n2026-01-01" in err and "source=s\\x1b]0;pwned\\x07" in err


def test_a_traceback_keeps_its_lines_but_forges_none(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "text")
    log = logging.getLogger("itglue_ingest.engine")
    try:
        raise ValueError(f"bad name{FORGED_LINE}{TERMINAL}")
    except ValueError:
        log.exception("record 3: %s", f"x{FORGED_LINE}")
    lines = capsys.readouterr().err.splitlines()
    assert not RAW_CONTROL.search("\n".join(lines))
    # the exception's own newline stays a line break, indented: no line passes for a record
    assert lines[0].endswith(
        "record 3: x\\n2026-01-01 00:00:00,000 INFO    itglue_ingest.engine: delivered FORGED.pdf"
    )
    assert len(lines) > 3 and all(line.startswith("  ") for line in lines[1:])
    assert any("Traceback (most recent call last)" in line for line in lines)


def test_json_log_lines_escape_what_json_leaves_raw(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "json")
    name = f"a{FORGED_LINE}{TERMINAL}\u2028\x85\x9b\u202e.pdf"
    logging.getLogger("itglue_ingest.engine").info("delivered %s", name, extra={"ref": name})
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err.splitlines()) == 1, err
    assert_clean(err)
    doc = json.loads(err)
    assert doc["msg"] == f"delivered {name}" and doc["ref"] == name


def test_the_demo_report_shows_names_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """rich markup in a name is shown, not applied (and "[/]" cannot raise MarkupError)."""
    from types import SimpleNamespace

    from pipeline.commands.demo import print_report
    from pipeline.settings import Settings

    rows = [
        {
            "organization": "[/]Acme",
            "document": f"[b]Doc{TERMINAL}",
            "id": 1,
            "files": [{"name": "[i]a.pdf", "size": 1, "identical": True}],
            "published": False,
        }
    ]
    summary = SimpleNamespace(
        delivered=1,
        duplicate=0,
        failed=1,
        elapsed=0.1,
        failures=[{"source_ref": f"[/]x{FORGED_LINE}", "reason": "[red]no[/red]"}],
    )
    print_report(rows, summary, tmp_path / "[demo]", Settings(), tmp_path / "drop")
    out = capsys.readouterr().out
    assert_clean(out)
    for shown in ("[/]Acme", "[b]Doc\\x1b]0;pwned", "[i]a.pdf", "[red]no[/red]", "[demo]"):
        assert shown in out, out


def test_health_prints_the_servers_error_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.commands.client import _print_health

    _print_health({"status": "down", "error": f"HTTP 502: <html>{TERMINAL}{FORGED_LINE}"})
    out = capsys.readouterr().out
    assert_clean(out)
    assert "error:           HTTP 502: <html>\\x1b]0;pwned" in out
