"""The IMAP password and the XOAUTH2 token never leave the source: a DEBUG session with
canaries against the real Dovecot.

Like ``tests/client/test_canary_key.py`` for the API key: every log record of every
logger at DEBUG (``imapclient`` and ``imapclient.imaplib`` print the protocol, LOGIN and
AUTHENTICATE lines included), stdout/stderr at the file-descriptor level, reprs of the
source and its connections, every exception (with its traceback and local variables),
and every byte of every file in the state directory (ledger database, WAL, spool) are
searched for the secrets. The session covers IMAPS and STARTTLS logins, a wrong password,
XOAUTH2 with a token from ``token_command`` (right and wrong) and from a hook.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

import pipeline
from pipeline import PermanentError, PipelineError
from pipeline.logs import redact
from tests.imap.imap_helpers import make_message
from tests.secret_canary import CaptureAll, capture_debug_logs, describe

WRONG_PASSWORD = "wrong-canary-5b1e9d0c7a3f2e8d"
# passwords LOGIN cannot carry: imaplib raises UnicodeEncodeError holding the whole
# command line, and a line break would end the command inside the password
UNSENDABLE = ["s\u00e4kret-canary-0e7d3b9a1c", "newline-canary-8f2a4c6e0d\n"]
WRONG_TOKEN = "ya29.wrong-canary-token-4c8e2a6f0b9d"
TOKEN_ENV = "IMAP_SECRETS_TOKEN"


class TokenPlugin:
    def __init__(self, token: str) -> None:
        self.token = token

    @pipeline.hookimpl
    def ingest_access_token(self, source: str, account: str) -> str | None:
        return self.token


def _fragments(*secrets: str) -> list[str]:
    """Each secret, and every 8-character piece of it (a truncated secret is a leak too)."""
    out: list[str] = []
    for s in secrets:
        out.append(s)
        out += [s[i : i + 8] for i in range(len(s) - 7)]
    return sorted(set(out))


def _leaks(data: str | bytes, fragments: list[str]) -> list[str]:
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "backslashreplace")
    return [f for f in fragments if f.encode() in raw]


@pytest.fixture
def debug_logs() -> Iterator[CaptureAll]:
    with capture_debug_logs(CaptureAll()) as handler:
        yield handler


def test_password_and_token_never_appear(
    dovecot, mailbox, make_engine, delivered, monkeypatch, tmp_path, capfd, debug_logs
) -> None:
    password = mailbox.password
    script = tmp_path / "token.py"
    script.write_text(f"import os\nprint(os.environ[{TOKEN_ENV!r}])\n")
    command = [sys.executable, str(script)]
    texts: list[str] = []
    errors: list[BaseException] = []

    def scan_fails(engine: Any) -> None:
        try:
            engine.sources["mail"].scan()
        except PipelineError as e:
            errors.append(e)
        else:
            raise AssertionError("the scan did not fail")

    def inspect(engine: Any) -> None:
        src = engine.sources["mail"]
        texts.extend([repr(src), str(src), repr(vars(src)), repr(src.options)])
        for box in (src._sync_box, src._action_box):
            if box is not None:
                texts.extend(
                    [repr(vars(box)), repr(vars(box.client)), repr(vars(box.client._imap))]
                )

    # a password login over IMAPS with a delivery and its post-actions (a second connection)
    mailbox.append(
        make_message("Over IMAPS", attachments=[("a.pdf", b"%PDF-1.4 x", "application/pdf")])
    )
    engine = make_engine()
    assert engine.run_once().ok
    inspect(engine)
    # STARTTLS, and a failed record (the failure keyword: nack on the action connection)
    mailbox.append(make_message("Over STARTTLS"))
    engine = make_engine(security="starttls", port=dovecot.port, sink={"fail_pattern": "STARTTLS"})
    engine.run_once()
    inspect(engine)
    # a wrong password
    monkeypatch.setenv("IMAP_TEST_PASSWORD", WRONG_PASSWORD)
    engine = make_engine()
    scan_fails(engine)
    inspect(engine)
    # passwords that cannot be sent: a clear error, and the password not in it
    for bad in UNSENDABLE:
        monkeypatch.setenv("IMAP_TEST_PASSWORD", bad)
        engine = make_engine()
        scan_fails(engine)
        assert "cannot be sent" in str(errors[-1]), errors[-1]
        inspect(engine)
    monkeypatch.delenv("IMAP_TEST_PASSWORD")
    # XOAUTH2: the token from a command (the test server takes the password as token)
    monkeypatch.setenv(TOKEN_ENV, password)
    mailbox.append(make_message("Over XOAUTH2"))
    engine = make_engine(auth="xoauth2", token_command=command)
    assert engine.run_once().ok
    inspect(engine)
    # ... a wrong token from the command, and from a hook
    monkeypatch.setenv(TOKEN_ENV, WRONG_TOKEN)
    engine = make_engine(auth="xoauth2", token_command=command)
    scan_fails(engine)
    inspect(engine)
    # a token from the command is registered for redaction, like one from the hook
    assert redact(f"token={WRONG_TOKEN}") == "token=***"
    engine = make_engine(auth="xoauth2", extra=(TokenPlugin(WRONG_TOKEN),))
    scan_fails(engine)
    inspect(engine)
    engine.close()

    assert [d["name"] for d in delivered()] == ["Over IMAPS", "Over XOAUTH2"]
    assert len(errors) == 5 and all(isinstance(e, PermanentError) for e in errors), errors
    assert sum("was refused" in str(e) for e in errors) == 3, errors
    texts += [describe(e) for e in errors]
    logs = "\n".join(debug_logs.texts)
    # the session really logged the protocol (imapclient's imaplib logger at DEBUG)
    assert "LOGIN" in logs and "AUTHENTICATE" in logs and "> b'" in logs
    out, err = capfd.readouterr()
    fragments = _fragments(password, WRONG_PASSWORD, WRONG_TOKEN, *UNSENDABLE)
    found = {
        "logs": _leaks(logs, fragments),
        "stdout": _leaks(out, fragments),
        "stderr": _leaks(err, fragments),
        "objects/exceptions": _leaks("\n".join(texts), fragments),
    }
    state = tmp_path / "state"
    files = sorted(p for p in state.rglob("*") if p.is_file())
    assert any(p.suffix == ".db" for p in files), files
    for p in files:
        found[f"file {p.relative_to(state)}"] = _leaks(p.read_bytes(), fragments)
    assert {k: v for k, v in found.items() if v} == {}
