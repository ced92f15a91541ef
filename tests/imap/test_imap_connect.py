"""Connecting: TLS verified (IMAPS, STARTTLS), plain only on loopback by opt-in, password
from the environment or the keyring, XOAUTH2 tokens from a hook or a command, and clear
errors for a wrong password, a wrong CA and an unknown folder."""

from __future__ import annotations

import sys

import pytest
import trustme

import pipeline
from pipeline import PermanentError
from pipeline.settings import ConfigError
from tests.imap.imap_helpers import make_message


def _scan_error(engine) -> str:
    with pytest.raises(PermanentError) as err:
        engine.sources["mail"].scan()
    return err.value.reason


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_imaps_and_starttls_with_verification(security, dovecot, mailbox, make_engine, delivered):
    mailbox.append(make_message(f"Over {security}"))
    port = dovecot.ssl_port if security == "ssl" else dovecot.port
    engine = make_engine(security=security, port=port)
    assert engine.run_once().ok
    assert [d["name"] for d in delivered()] == [f"Over {security}"]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_an_unknown_ca_is_refused_clearly(security, dovecot, mailbox, make_engine, tmp_path):
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    port = dovecot.ssl_port if security == "ssl" else dovecot.port
    engine = make_engine(security=security, port=port, ca_file=str(other))
    reason = _scan_error(engine)
    assert "certificate verification failed" in reason and "ca_file" in reason


def test_plain_needs_loopback_and_opt_in(dovecot, mailbox, make_engine, delivered):
    with pytest.raises(ConfigError, match="allow_insecure_loopback"):
        make_engine(security="plain", port=dovecot.port)
    with pytest.raises(ConfigError, match="only allowed for a loopback host"):
        make_engine(security="plain", host="mail.example.com", allow_insecure_loopback=True)
    mailbox.append(make_message("Plain on loopback"))
    engine = make_engine(security="plain", port=dovecot.port, allow_insecure_loopback=True)
    assert engine.run_once().ok
    assert [d["name"] for d in delivered()] == ["Plain on loopback"]


def test_wrong_password_is_a_clear_error(mailbox, make_engine, monkeypatch):
    monkeypatch.setenv("IMAP_TEST_PASSWORD", "not-the-password")
    engine = make_engine()
    reason = _scan_error(engine)
    assert f"as {mailbox.user!r} was refused" in reason and "AUTHENTICATIONFAILED" in reason
    assert "not-the-password" not in reason


def test_missing_password_names_the_variable_and_keyring(mailbox, make_engine, monkeypatch):
    monkeypatch.delenv("IMAP_TEST_PASSWORD")
    reason = _scan_error(make_engine())
    assert "IMAP_TEST_PASSWORD" in reason and "keyring" in reason


def test_password_from_the_keyring(mailbox, make_engine, delivered, monkeypatch, memory_keyring):
    monkeypatch.delenv("IMAP_TEST_PASSWORD")
    memory_keyring.set_password("itglue-ingest", "source:mail:password", mailbox.password)
    mailbox.append(make_message("Keyring login"))
    assert make_engine().run_once().ok
    assert [d["name"] for d in delivered()] == ["Keyring login"]


def test_unknown_folder_lists_the_folders_that_exist(mailbox, make_engine):
    mailbox.create("Archive")
    mailbox.create("Clients")
    reason = _scan_error(make_engine(folders=["INBOX", "Invoices"]))
    assert "'Invoices' does not exist" in reason
    assert "folders: Archive, Clients, INBOX" in reason


class TokenPlugin:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, str]] = []

    @pipeline.hookimpl
    def ingest_access_token(self, source: str, account: str) -> str | None:
        self.calls.append((source, account))
        return self.token


def test_xoauth2_token_from_a_hook(mailbox, make_engine, delivered, monkeypatch):
    monkeypatch.delenv("IMAP_TEST_PASSWORD")
    plugin = TokenPlugin(mailbox.password)  # the test server takes the token as password
    mailbox.append(make_message("OAuth via hook"))
    engine = make_engine(extra=(plugin,), auth="xoauth2")
    assert engine.run_once().ok
    assert [d["name"] for d in delivered()] == ["OAuth via hook"]
    assert plugin.calls and plugin.calls[0] == ("mail", mailbox.user)


def test_xoauth2_token_from_a_command(mailbox, make_engine, delivered, monkeypatch, tmp_path):
    monkeypatch.delenv("IMAP_TEST_PASSWORD")
    script = tmp_path / "token.py"
    script.write_text(f"print({mailbox.password!r})\n")
    mailbox.append(make_message("OAuth via command"))
    engine = make_engine(auth="xoauth2", token_command=[sys.executable, str(script)])
    assert engine.run_once().ok
    assert [d["name"] for d in delivered()] == ["OAuth via command"]


def test_xoauth2_bad_token_and_failing_command(mailbox, make_engine, monkeypatch, tmp_path):
    engine = make_engine(extra=(TokenPlugin("expired-token"),), auth="xoauth2")
    reason = _scan_error(engine)
    assert "was refused" in reason and "access token" in reason
    assert "expired-token" not in reason
    engine = make_engine(
        auth="xoauth2", token_command=[sys.executable, "-c", "raise SystemExit(3)"]
    )
    assert "exited with 3" in _scan_error(engine)
    assert "token_command" in _scan_error(make_engine(auth="xoauth2"))
