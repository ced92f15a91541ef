"""Hostile and odd mail never stops the source: each message gets a clear outcome.

Hand-made breakage (each kind the issue lists) and the real-world corpus of
``tests/data/mail`` (CPython's email test suite, SpamAssassin's samples, a real TNEF
file) go through real Dovecot and the real engine.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from tests.imap.imap_helpers import make_message

DATA = Path(__file__).parent.parent / "data" / "mail"
TNEF = (DATA / "tnefparse" / "two-files.tnef").read_bytes()
PDF = b"%PDF-1.4\n%hostile\n%%EOF\n"


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8", errors="surrogateescape")


def _multipart(subject: str, parts: list[str]) -> bytes:
    body = "".join(f"--BOUND\n{p}\n" for p in parts) + "--BOUND--\n"
    return _crlf(
        f"From: sender@odd.example\nTo: docs@msp.example\nSubject: {subject}\n"
        "Message-ID: <" + subject.replace(" ", "-") + "@odd.example>\n"
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="BOUND"\n\n' + body
    )


def _attachment(header_name: str, data: str = "aGVsbG8=") -> str:
    return (
        f"Content-Type: application/octet-stream\nContent-Disposition: attachment; {header_name}\n"
        f"Content-Transfer-Encoding: base64\n\n{data}"
    )


def hostile_messages() -> dict[str, bytes]:
    msgs: dict[str, bytes] = {}
    msgs["malformed mime"] = _crlf(
        "From: a@odd.example\nSubject: malformed mime\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="XX"\n\n--XX\nContent-Type: text/plain\n\n'
        'hello from a broken multipart\n--XX\nContent-Type: application/pdf; name="a.pdf"\n'
        "Content-Transfer-Encoding: base64\n\n!!!not base64@@@\n"  # no closing boundary
    )
    msgs["no headers"] = b"\r\njust a body and no headers at all\r\n"
    msgs["broken headers"] = (
        b'From: <<<@@@>>> "unterminated\r\nTo: ,,,;;;\r\nDate: the day after tomorrow\r\n'
        b"Subject: broken headers =?utf-8?B?!!notbase64?= =?x-unknown-cs?Q?abc?=\r\n"
        b"Message-ID: no angle brackets\r\n"
        b'Content-Type: text/plain; charset="x-does-not-exist"\r\n\r\n'
        b"body with \xff\xfe raw bytes\r\n"
    )
    msgs["encoded names"] = _multipart(
        "encoded names",
        [
            "Content-Type: text/plain; charset=utf-8\n\nsee files",
            _attachment('filename="=?utf-8?B?UmVjaG51bmcgTcOkcnoucGRm?="', "JVBERi0xLjQK"),
            _attachment("filename*=utf-8''%E2%82%AC%20rates.pdf", "JVBERi0xLjUK"),
        ],
    )
    msgs["nasty names"] = _multipart(
        "nasty names",
        [
            _attachment('filename="' + "a" * 300 + '.pdf"', "MQ=="),
            _attachment('filename="../../etc/passwd"', "Mg=="),
            _attachment('filename="C:\\\\Windows\\\\evil.exe"', "Mw=="),
            _attachment('filename=".."', "NA=="),
        ],
    )
    outer = EmailMessage()
    outer["Subject"], outer["From"], outer["To"] = "nested", "fwd@odd.example", "docs@msp.example"
    outer.set_content("forwarding the original")
    inner = EmailMessage()
    inner["Subject"], inner["From"] = "the original", "orig@odd.example"
    inner.set_content("original body")
    inner.add_attachment(PDF, maintype="application", subtype="pdf", filename="inner.pdf")
    outer.add_attachment(inner)
    msgs["nested"] = outer.as_bytes()
    msgs["tnef"] = make_message("tnef", attachments=[("winmail.dat", TNEF, "application/ms-tnef")])
    msgs["fifty"] = make_message(
        "fifty",
        attachments=[
            (f"file{i:02d}.txt", f"content {i}".encode(), "text/plain") for i in range(50)
        ],
    )
    msgs["twice"] = make_message(
        "twice",
        attachments=[
            ("same.pdf", PDF, "application/pdf"),
            ("same.pdf", PDF, "application/pdf"),
            ("copy.pdf", PDF, "application/pdf"),
        ],
    )
    msgs["too big"] = make_message(
        "too big", attachments=[("huge.bin", b"\x01" * 60_000, "application/octet-stream")]
    )
    return msgs


def test_hostile_messages_each_get_a_clear_outcome(mailbox, make_engine, delivered):
    msgs = hostile_messages()
    for raw in msgs.values():
        mailbox.append(raw)
    engine = make_engine(pipeline={"max_file_size": 40_000}, max_message_size=500_000, batch_size=4)
    summary = engine.run_once()
    assert summary.delivered == len(msgs) - 1 and summary.failed == 1, summary.to_dict()
    (failed,) = engine.ledger.failed("mail")
    assert "huge.bin" in (failed.reason or "")
    # the failed message is kept in the mailbox, marked
    flags = mailbox.flags_by_subject()
    assert flags["too big"] == {"$IngestFailed"}

    by_subject = {d["metadata"]["email"]["subject"]: d for d in delivered()}
    files = {s: {f["file_name"]: f for f in d["files"]} for s, d in by_subject.items()}
    for names in files.values():
        for name in names:
            assert "/" not in name and "\\" not in name and ".." not in name
            assert len(name.encode()) <= 200

    assert "hello from a broken multipart" in by_subject["malformed mime"]["sections"][0]
    assert by_subject["malformed mime"]["metadata"]["defects"]

    no_headers = by_subject[""]
    assert no_headers["name"].startswith("Email from unknown sender")
    assert "just a body" in no_headers["sections"][0]

    broken = next(d for s, d in by_subject.items() if s.startswith("broken headers"))
    assert broken["metadata"]["email"]["date"] is None
    assert "raw bytes" in broken["sections"][0]
    assert any("x-does-not-exist" in x for x in broken["metadata"]["defects"])

    assert set(files["encoded names"]) == {"Rechnung März.pdf", "€ rates.pdf"}
    nasty = set(files["nasty names"])
    assert {"passwd", "evil.exe"} <= nasty and len(nasty) == 4
    long_name = next(n for n in nasty if n.startswith("aaa"))
    assert long_name.endswith(".pdf")

    (eml,) = files["nested"].values()
    assert eml["file_name"] == "the original.eml" and b"inner.pdf" in eml["data"]
    assert files["tnef"]["winmail.dat"]["data"] == TNEF
    assert len(files["fifty"]) == 50
    assert list(files["twice"]) == ["same.pdf"]

    # the source went past every message: its checkpoint is at the last UID
    cp = engine.ledger.get_checkpoint("mail", "folder:INBOX")
    assert cp is not None and f'"uid": {len(msgs)}' in cp


def test_real_world_corpus_end_to_end(mailbox, make_engine, delivered):
    corpus = sorted(p for p in DATA.rglob("*.txt"))
    assert len(corpus) == 49
    with mailbox.client() as c:
        for p in corpus:
            c.append("INBOX", p.read_bytes())
    engine = make_engine(ingest="both", batch_size=20)
    summary = engine.run_once()
    assert summary.failed == 0 and summary.pending == 0, summary.to_dict()
    states = engine.ledger.counts()["mail"]
    # every message is one record: delivered, or recognised as a duplicate of another
    assert sum(states.values()) == len(corpus), states
    assert set(states) <= {"done", "duplicate"}
    assert len(delivered()) == states.get("done", 0)
    for d in delivered():
        assert d["files"] or d["sections"]
        assert any(f["file_name"].endswith(".eml") for f in d["files"])
