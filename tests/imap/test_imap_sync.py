"""Syncing a real Dovecot mailbox through the real engine: exactly once, cheaply."""

from __future__ import annotations

import threading
from typing import Any

from tests.imap.imap_helpers import make_message


def _source(engine: Any) -> Any:
    return engine.sources["mail"]


def test_first_sync_takes_body_attachments_and_metadata(mailbox, make_engine, delivered):
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    mailbox.append(
        make_message(
            "Invoice 4711",
            html="<p>Dear team,</p><script>alert(1)</script><p onclick='x()'>see attached</p>",
            body="Dear team, see attached",
            attachments=[("invoice.pdf", pdf, "application/pdf")],
            message_id="<invoice-4711@vendor.example>",
        )
    )
    mailbox.append(make_message("Plain note", body="line one\nline <two>\n\npara 2"))
    engine = make_engine()
    summary = engine.run_once()
    assert summary.ok, summary.to_dict()
    got = {d["name"]: d for d in delivered()}
    assert set(got) == {"Invoice 4711", "Plain note"}
    inv = got["Invoice 4711"]
    assert [(f["file_name"], f["data"]) for f in inv["files"]] == [("invoice.pdf", pdf)]
    section = inv["sections"][0]
    assert "<script>" not in section and "onclick" not in section and "see attached" in section
    email_meta = inv["metadata"]["email"]
    assert email_meta["message_id"] == "<invoice-4711@vendor.example>"
    assert email_meta["from"] == "Alice Vendor <alice@vendor.example>"
    assert email_meta["to"] == ["docs@msp.example"] and email_meta["date"]
    assert inv["source_ref"].startswith("INBOX/") and inv["metadata"]["imap"]["uid"] == 1
    note = got["Plain note"]
    assert note["files"] == []  # no attachment; the body is the document
    assert "<p>line one<br>line &lt;two&gt;</p>" in note["sections"][0]
    # post-action after delivery: seen + keyword (the defaults)
    flags = mailbox.flags_by_subject()
    assert all({"\\Seen", "$Ingested"} <= f for f in flags.values()), flags


def test_nothing_is_marked_seen_before_delivery(mailbox, make_engine, delivered):
    mailbox.append(make_message("Unread stays unread"))
    engine = make_engine(sink={"fail_pattern": "Unread"}, on_success=[], on_failure=[])
    summary = engine.run_once()
    assert summary.failed == 1
    assert delivered() == []
    assert mailbox.flags_by_subject() == {"Unread stays unread": set()}


def test_no_news_poll_costs_one_round_trip_whatever_the_size(mailbox, make_engine, delivered):
    for i in range(40):
        mailbox.server.save(mailbox.user, make_message(f"Bulk {i}", body=f"body {i}"))
    engine = make_engine(on_success=[], on_failure=[], batch_size=15)
    assert engine.run_once().ok
    assert len(delivered()) == 40
    src = _source(engine)
    before = src.total_round_trips
    src.scan()
    assert src.total_round_trips - before == 1  # SELECT, whose UIDNEXT says "nothing new"
    # one more message: SELECT + UID SEARCH + FETCH headers + FETCH body
    mailbox.append(make_message("One more"))
    before = src.total_round_trips
    assert engine.run_once().ok
    assert src.total_round_trips - before == 4
    assert len(delivered()) == 41
    # a second engine on the same state: nothing is fetched or delivered again
    engine.close()
    again = make_engine(on_success=[], on_failure=[], batch_size=15)
    assert again.run_once().ok
    assert len(delivered()) == 41


def test_uidvalidity_change_does_not_duplicate(mailbox, make_engine, delivered, caplog):
    mailbox.append(make_message("With id 1"))
    mailbox.append(make_message("With id 2", attachments=[("a.txt", b"aaa", "text/plain")]))
    mailbox.append(make_message("No message id", message_id=False, body="unique body 3"))
    engine = make_engine()
    assert engine.run_once().ok
    assert len(delivered()) == 3
    old = mailbox.server.status(mailbox.user)["uidvalidity"]
    mailbox.server.set_uidvalidity(mailbox.user, "INBOX", old + 1000)
    mailbox.append(make_message("New after reset"))
    caplog.set_level("INFO", logger="itglue_ingest.source.mail")
    assert engine.run_once().ok
    # the two with a Message-ID were recognised without downloading them again
    assert len([r for r in caplog.records if "already ingested as" in r.getMessage()]) == 2
    names = [d["name"] for d in delivered()]
    assert sorted(names) == sorted(["With id 1", "With id 2", "No message id", "New after reset"])
    cp = _source(engine).context.get_checkpoint("folder:INBOX")
    assert str(old + 1000) in cp
    # the mail without Message-ID was re-read and caught by the engine's content dedupe
    states = engine.ledger.counts()["mail"]
    assert states.get("duplicate") == 1, states
    # the post-actions stay applied to the renumbered messages
    assert all("$Ingested" in f for f in mailbox.flags_by_subject().values())
    # a second change: the index carried over, still nothing is ingested twice
    mailbox.server.set_uidvalidity(mailbox.user, "INBOX", old + 2000)
    assert engine.run_once().ok
    assert len(delivered()) == 4


def test_overlapping_scans_do_not_import_twice(mailbox, make_engine, delivered):
    for i in range(12):
        mailbox.server.save(mailbox.user, make_message(f"Overlap {i}"))
    engine = make_engine(batch_size=3)
    src = _source(engine)
    threads = [threading.Thread(target=src.scan) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert engine.run_once().ok  # and a third, engine-driven scan on top
    names = sorted(d["name"] for d in delivered())
    assert names == sorted(f"Overlap {i}" for i in range(12))
    assert sum(engine.ledger.counts()["mail"].values()) == 12
