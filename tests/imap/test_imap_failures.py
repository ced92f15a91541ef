"""Permanent failures keep the mail (flagged, keyword, or moved aside) with the reason in
the ledger; ``retry`` (the ledger's requeue, as ``itglue-ingest retry`` does) delivers it
later and the post-action then finds the mail wherever the failure put it."""

from __future__ import annotations

from tests.imap.imap_helpers import make_message


def _failed(engine):
    return {e.source_ref: e.reason for e in engine.ledger.failed("mail")}


def test_failure_flags_then_retry_delivers_and_clears(mailbox, make_engine, delivered, tmp_path):
    fail_file = tmp_path / "fail-pattern"
    fail_file.write_text("^Broken")
    mailbox.append(make_message("Broken upload"))
    mailbox.append(make_message("Fine upload"))
    sink = {"fail_file": str(fail_file)}
    engine = make_engine(sink=sink, on_failure=["keyword", "flag"])
    summary = engine.run_once()
    assert summary.failed == 1 and summary.delivered == 1
    reasons = list(_failed(engine).values())
    assert reasons == ["the recording sink refuses 'Broken upload' (test)"]
    flags = mailbox.flags_by_subject()
    assert flags["Broken upload"] == {"$IngestFailed", "\\Flagged"}
    assert flags["Fine upload"] == {"\\Seen", "$Ingested"}
    # the cause is fixed; `itglue-ingest retry` requeues the record (bytes from the spool)
    fail_file.write_text("")
    assert engine.ledger.requeue(source="mail") == 1
    assert engine.run_once().ok
    assert sorted(d["name"] for d in delivered()) == ["Broken upload", "Fine upload"]
    # ack cleared the failure keyword (the \\Flagged stays: people flag mail too)
    assert mailbox.flags_by_subject()["Broken upload"] == {"\\Seen", "$Ingested", "\\Flagged"}


def test_failed_mail_moved_aside_is_found_again_after_retry(
    mailbox, make_engine, delivered, tmp_path
):
    fail_file = tmp_path / "fail-pattern"
    fail_file.write_text("Quarterly")
    mailbox.append(make_message("Quarterly numbers", message_id="<q-numbers@vendor.example>"))
    options = {
        "sink": {"fail_file": str(fail_file)},
        "on_failure": ["move"],
        "failure_folder": "Ingest failed",
        "on_success": ["seen", "move"],
        "success_folder": "Ingested",
    }
    engine = make_engine(**options)
    assert engine.run_once().failed == 1
    assert mailbox.messages("INBOX") == {}
    assert [m["subject"] for m in mailbox.messages("Ingest failed").values()] == [
        "Quarterly numbers"
    ]
    # nack is idempotent: a second nack finds it (by Message-ID) and leaves it there
    src = engine.sources["mail"]
    entry = engine.ledger.failed("mail")[0]
    src.nack(entry.record(), entry.reason or "")
    assert len(mailbox.messages("Ingest failed")) == 1
    fail_file.write_text("")
    engine.ledger.requeue(source="mail")
    assert engine.run_once().ok
    assert [d["name"] for d in delivered()] == ["Quarterly numbers"]
    assert mailbox.messages("Ingest failed") == {}
    assert mailbox.flags_by_subject("Ingested") == {"Quarterly numbers": {"\\Seen"}}


def test_oversize_message_is_not_downloaded_and_can_be_retried(mailbox, make_engine, delivered):
    big = make_message(
        "Big scan", attachments=[("scan.pdf", b"%PDF-1.4\n" + b"x" * 20_000, "application/pdf")]
    )
    mailbox.append(big)
    mailbox.append(make_message("Small note"))
    engine = make_engine(max_message_size=10_000)
    summary = engine.run_once()
    assert summary.failed == 1 and summary.delivered == 1
    (reason,) = _failed(engine).values()
    assert "over the limit of 10000 bytes (max_message_size)" in reason
    assert "stays in the mailbox" in reason
    assert mailbox.flags_by_subject()["Big scan"] == {"$IngestFailed"}
    src = engine.sources["mail"]
    assert src.total_round_trips < 20
    # raise the limit and retry: the source fetches the message again
    engine = make_engine(max_message_size=100_000)
    assert engine.ledger.requeue(source="mail") == 1
    assert engine.run_once().ok
    names = sorted(d["name"] for d in delivered())
    assert names == ["Big scan", "Small note"]
    assert mailbox.flags_by_subject()["Big scan"] == {"\\Seen", "$Ingested"}


def test_attachment_over_the_file_limit_fails_clearly(mailbox, make_engine, delivered):
    mailbox.append(
        make_message(
            "Huge attachment",
            attachments=[
                ("small.txt", b"ok", "text/plain"),
                ("huge.bin", b"\x00" * 30_000, "application/octet-stream"),
            ],
        )
    )
    mailbox.append(make_message("After the huge one"))
    engine = make_engine(pipeline={"max_file_size": 20_000}, max_message_size=200_000)
    summary = engine.run_once()
    assert summary.failed == 1 and summary.delivered == 1
    (reason,) = _failed(engine).values()
    assert "huge.bin" in reason
    assert mailbox.flags_by_subject()["Huge attachment"] == {"$IngestFailed"}
    assert [d["name"] for d in delivered()] == ["After the huge one"]
