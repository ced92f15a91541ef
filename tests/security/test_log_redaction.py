"""The last line of defence, ``pipeline.logs`` redaction, under the secrets people really have.

* A password with a quote or a backslash is escaped by ``json.dumps`` (``\\"``, ``\\\\``),
  so redacting the finished JSON line misses it unless the values are redacted first.
* A secret that contains another registered secret (a token that embeds the password)
  must not be left half visible.
* A secret registered while another thread logs (a source fetching a token while a
  worker logs) must not break the logging call: a failing handler prints the record's
  unredacted message and arguments to stderr (``Handler.handleError``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from pipeline import logs
from pipeline.logs import redact, register_secret, setup_logging


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_escaped_secrets_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    secret = 'pa"ss\\canary-7c1e\tq'
    register_secret(secret)
    setup_logging("DEBUG", "json")
    log = logging.getLogger("itglue_ingest.test")
    log.info("login with %s", secret, extra={"detail": f"password={secret}"})
    try:
        raise RuntimeError(f"refused: {secret}")
    except RuntimeError:
        log.exception("failed")
    err = capsys.readouterr().err
    assert err.count("***") >= 3
    for piece in ("canary-7c1e", secret):
        assert piece not in err
    # nor in the escaped forms json.dumps gives it
    assert 'pa\\"ss' not in err and "canary-7c1e\\t" not in err


def test_a_secret_inside_another_is_redacted_whole() -> None:
    password = "canary-inner-4d2f"
    token = f"tok-{password}-outer-9e8a"
    register_secret(password)
    register_secret(token)
    assert redact(f"x {token} y") == "x *** y"


def test_registering_while_logging_from_another_thread(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the registry is process-wide: restore it afterwards (hundreds of canaries would
    # slow every later test's logging down)
    monkeypatch.setattr(logs, "_secrets", logs._secrets)
    setup_logging("DEBUG", "text")
    log = logging.getLogger("itglue_ingest.test")
    stop = threading.Event()

    def register() -> None:
        n = 0
        while not stop.is_set():
            register_secret(f"canary-thread-{n:08d}")
            n += 1

    t = threading.Thread(target=register)
    t.start()
    lines = 3000
    try:
        for i in range(lines):
            log.debug("line %d", i)
    finally:
        stop.set()
        t.join()
    err = capsys.readouterr().err
    assert "Logging error" not in err
    assert f"line {lines - 1}" in err
