"""End to end: a real Dovecot mailbox, the daemon with IDLE, the built-in transforms and
the IT Glue sink, into the emulator (HTTPS on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import parse_settings
from tests.imap.conftest import PASSWORD_ENV, source_table
from tests.imap.imap_helpers import make_message, running
from tests.waiting import wait_for

PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.fixture
def emu() -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="test-key", tls=True, seed="demo") as e:
        yield e


def test_mail_lands_in_itglue_with_idle(emu, dovecot, mailbox, tmp_path, monkeypatch):
    monkeypatch.setenv("ITGLUE_IMAP_TEST_KEY", emu.api_key)
    rules = [
        {"name": "tagged", "subject": r"\[org:", "subject_tag": r"\[org:\s*([^\]]+?)\s*\]"},
        {"name": "globex", "organization_map": {"globex.example": "Globex"}},
    ]
    settings = parse_settings(
        {
            "itglue": {
                "instance": "imap",
                "base_url": emu.base_url,
                "api_key_env": "ITGLUE_IMAP_TEST_KEY",
                "ca_bundle": str(emu.ca_file),
            },
            "state": {"dir": str(tmp_path / "state")},
            "pipeline": {"workers": 2, "retry_base": 0.05, "retry_max": 0.5},
            "sources": [
                source_table(
                    dovecot,
                    mailbox,
                    rules=rules,
                    poll_interval=600,
                    idle=True,
                    password_env=PASSWORD_ENV,
                )
            ],
        }
    )
    # waiting before the daemon starts: the backlog
    mailbox.append(
        make_message(
            "[org: Acme Corp] Firewall config",
            html="<p>Config of <b>FW-01</b></p><script>steal()</script>",
            attachments=[("fw-01.pdf", PDF, "application/pdf")],
        )
    )
    engine = Engine(settings, get_plugin_manager(load_entrypoints=False))
    try:
        with running(engine):
            wait_for(lambda: len(emu.records("documents")) == 1, timeout=30)
            # arriving while the daemon IDLEs
            mailbox.append(
                make_message(
                    "Network diagram",
                    sender="Bob <bob@mail.globex.example>",
                    attachments=[("diagram.pdf", PDF, "application/pdf")],
                )
            )
            mailbox.append(make_message("[org: Nope Inc] lost"))
            wait_for(lambda: len(emu.records("documents")) == 2, timeout=30)
            wait_for(lambda: engine.ledger.failed("mail"), timeout=30)
            wait_for(
                lambda: mailbox.flags_by_subject().get("[org: Nope Inc] lost") == {"$IngestFailed"},
                timeout=15,
            )
            wait_for(
                lambda: all(
                    "$Ingested" in f
                    for s, f in mailbox.flags_by_subject().items()
                    if "Nope" not in s
                ),
                timeout=15,
            )
    finally:
        engine.close()
    records = emu.state()["records"]
    orgs = {o["id"]: o["name"] for o in records["organizations"]}
    docs = {d["id"]: d for d in records["documents"]}
    landed = {(orgs[str(d["organization-id"])], d["name"]) for d in docs.values()}
    assert landed == {("Acme Corp", "Firewall config"), ("Globex", "Network diagram")}
    for att in records["attachments"]:
        assert emu.attachment_content(att["id"]) == PDF
    assert sorted(a["name"] for a in records["attachments"]) == ["diagram.pdf", "fw-01.pdf"]
    sections = records["document_sections"]
    fw_doc = next(i for i, d in docs.items() if d["name"] == "Firewall config")
    (fw_section,) = [s for s in sections if str(s.get("document-id")) == fw_doc]
    content = str(fw_section.get("content"))
    assert "FW-01" in content and "steal" not in content
    (failed,) = engine_failed_reasons(settings)
    assert "Nope Inc" in failed


def engine_failed_reasons(settings: Any) -> list[str]:
    from pipeline.ledger import Ledger

    ledger = Ledger(settings.database_path)
    try:
        return [e.reason or "" for e in ledger.failed("mail")]
    finally:
        ledger.close()
