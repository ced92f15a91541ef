"""Rules (filters, organization, what to take) and post-actions, against real Dovecot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.imap.imap_helpers import make_message

PDF = b"%PDF-1.4\n%test\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
TAG = r"\[org:\s*([^\]]+?)\s*\]"


def _by_name(delivered):
    return {d["name"]: d for d in delivered()}


def test_filters_and_organization_first_match(mailbox, make_engine, delivered):
    rules = [
        {
            "name": "invoices",
            "from": r"@vendor\.example",
            "subject": "invoice",
            "has_attachments": True,
            "attachment_patterns": ["*.pdf"],
            "organization": "Acme",
        },
        {"name": "tagged", "subject": r"\[org:", "subject_tag": TAG},
        {
            "name": "mapped",
            "to": "support@",
            "organization_map": {
                "contoso.com": "Contoso",
                "boss@fabrikam.example": "Fabrikam HQ",
                "@fabrikam.example": "Fabrikam",
            },
        },
        {"name": "urgent", "body": r"\burgent\b", "max_age_days": 30, "organization": "Urgent"},
    ]
    old = datetime.now(UTC) - timedelta(days=90)
    m = mailbox.append
    m(
        make_message(
            "Invoice 1",
            attachments=[("invoice.pdf", PDF, "application/pdf"), ("logo.png", PNG, "image/png")],
        )
    )
    m(make_message("Invoice 2 (no attachment)"))
    m(make_message("[org: Globex Corp] Network diagram", sender="x@random.example"))
    m(make_message("Contoso ticket", sender="bob@mail.contoso.com", to="support@msp.example"))
    m(make_message("Fabrikam boss", sender="boss@fabrikam.example", to="support@msp.example"))
    m(make_message("Fabrikam staff", sender="eve@fabrikam.example", to="support@msp.example"))
    m(make_message("Fresh", sender="c@d.example", body="this is urgent, really"))
    m(make_message("Stale", sender="c@d.example", body="this is urgent, really", date=old))
    engine = make_engine(rules=rules)
    assert engine.run_once().ok
    got = _by_name(delivered)
    assert set(got) == {
        "Invoice 1",
        "Network diagram",
        "Contoso ticket",
        "Fabrikam boss",
        "Fabrikam staff",
        "Fresh",
    }
    assert got["Invoice 1"]["organization"] == "Acme"
    assert [f["file_name"] for f in got["Invoice 1"]["files"]] == ["invoice.pdf"]
    assert got["Invoice 1"]["metadata"]["imap"]["rule"] == "invoices"
    assert got["Network diagram"]["organization"] == "Globex Corp"
    assert got["Network diagram"]["metadata"]["organization_from"] == "subject tag"
    assert got["Contoso ticket"]["organization"] == "Contoso"
    assert got["Fabrikam boss"]["organization"] == "Fabrikam HQ"
    assert got["Fabrikam staff"]["organization"] == "Fabrikam"
    assert got["Fresh"]["organization"] == "Urgent"
    flags = mailbox.flags_by_subject()
    # mails no rule matched are left exactly as they were
    assert flags["Invoice 2 (no attachment)"] == set() and flags["Stale"] == set()
    assert "$Ingested" in flags["Invoice 1"]


def test_all_matches_make_one_record_per_rule_and_move_once(mailbox, make_engine, delivered):
    rules = [
        {"name": "vendor", "from": "vendor", "organization": "Acme"},
        {"name": "reports", "subject": "report", "organization": "Globex"},
        {"name": "never", "subject": "no such subject", "organization": "Nobody"},
    ]
    mailbox.append(make_message("Monthly report", attachments=[("r.pdf", PDF, "application/pdf")]))
    engine = make_engine(rules=rules, match="all", on_success=["move"], success_folder="Done")
    assert engine.run_once().ok
    orgs = sorted(d["organization"] for d in delivered())
    assert orgs == ["Acme", "Globex"]
    refs = sorted(d["source_ref"] for d in delivered())
    assert refs[0].endswith("/1") and refs[1].endswith("/1#reports")
    assert mailbox.messages("INBOX") == {}
    assert [m["subject"] for m in mailbox.messages("Done").values()] == ["Monthly report"]


def test_what_to_ingest_and_inline_parts(mailbox, make_engine, delivered):
    rules = [
        {"name": "eml", "subject": "^eml", "ingest": "eml"},
        {"name": "both", "subject": "^both", "ingest": "both"},
        {"name": "inline", "subject": "^inline", "include_inline": True},
        {"name": "rest"},
    ]
    atts = [("a.pdf", PDF, "application/pdf")]
    inl = [("logo.png", PNG, "image/png")]
    for subject in ("eml only", "both kinds", "inline wanted", "default"):
        mailbox.append(make_message(subject, html="<p>hi</p>", attachments=atts, inline=inl))
    engine = make_engine(rules=rules)
    assert engine.run_once().ok
    files = {d["name"]: sorted(f["file_name"] for f in d["files"]) for d in delivered()}
    assert files == {
        "eml only": ["eml only.eml"],
        "both kinds": ["a.pdf", "both kinds.eml"],
        "inline wanted": ["a.pdf", "logo.png"],
        "default": ["a.pdf"],
    }
    eml = next(d for d in delivered() if d["name"] == "eml only")["files"][0]
    assert eml["claimed_mime"] == "message/rfc822" and b"Subject: eml only" in eml["data"]


def test_post_actions_after_delivery(mailbox, make_engine, delivered):
    rules = [
        {"name": "seen", "subject": "^seen", "on_success": ["seen"]},
        {"name": "flag", "subject": "^flag", "on_success": ["flag"]},
        {
            "name": "kw",
            "subject": "^keyword",
            "on_success": ["keyword"],
            "success_keyword": "Filed",
        },
        {
            "name": "move",
            "subject": "^move",
            "on_success": ["seen", "move"],
            "success_folder": "Filed by IT Glue",
        },
        {"name": "delete", "subject": "^delete", "on_success": ["delete"]},
    ]
    for subject in ("seen me", "flag me", "keyword me", "move me", "delete me"):
        mailbox.append(make_message(subject))
    engine = make_engine(rules=rules)
    assert engine.run_once().ok
    assert len(delivered()) == 5
    inbox = mailbox.flags_by_subject()
    assert inbox == {
        "seen me": {"\\Seen"},
        "flag me": {"\\Flagged"},
        "keyword me": {"Filed"},
    }
    moved = mailbox.flags_by_subject("Filed by IT Glue")
    assert moved == {"move me": {"\\Seen"}}
    # acks are idempotent: acking the moved and the deleted record again changes nothing
    src = engine.sources["mail"]
    for d in delivered():
        src.ack(engine.ledger.get(d["id"]).record(), "delivered")
    assert mailbox.flags_by_subject() == inbox
    assert mailbox.flags_by_subject("Filed by IT Glue") == moved


def test_move_happens_when_the_flag_is_already_set(mailbox, make_engine, delivered):
    """A daemon killed between its STORE +FLAGS and its MOVE leaves the mail flagged in
    the folder; the restarted daemon's ack must still move it (Dovecot answers a STORE
    that changes nothing without the untagged FETCH, which used to read as "gone")."""
    mailbox.append(make_message("flagged before"), flags=(b"\\Flagged",))
    engine = make_engine(on_success=["flag", "move"], success_folder="Processed")
    assert engine.run_once().ok
    assert [d["name"] for d in delivered()] == ["flagged before"]
    assert mailbox.flags_by_subject() == {}
    assert mailbox.flags_by_subject("Processed") == {"flagged before": {"\\Flagged"}}
