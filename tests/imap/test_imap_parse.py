"""The MIME side in-process (pure logic): names, headers, charsets, bodies, and a
robustness sweep over mutated real-world messages (parsing must never raise)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from plugins.imap.parse import decode_header, mail_file_name, parse_message

DATA = Path(__file__).parent.parent / "data" / "mail"
CORPUS = sorted(DATA.rglob("*.txt"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\evil.exe", "evil.exe"),
        ("..", "fallback.bin"),
        ("a..b...pdf", "a.b.pdf"),
        ("  .hidden  ", "hidden"),
        ("tab\there\x00nul.txt", "tabherenul.txt"),
        ('what?<is>:this|"*.doc', "what__is__this___.doc"),
        ("=?utf-8?B?UmVjaG51bmcgTcOkcnoucGRm?=", "Rechnung März.pdf"),
        ("", "fallback.bin"),
    ],
)
def test_safe_file_name(raw, expected):
    assert mail_file_name(raw, "fallback.bin") == expected


def test_over_long_names_keep_their_extension_within_200_bytes():
    name = mail_file_name("ü" * 300 + ".docx", "x")
    assert name.endswith(".docx") and len(name.encode()) <= 200
    assert name.startswith("üü")  # cut on a character boundary
    assert mail_file_name("x" * 300, "y") == "x" * 200


def test_decode_header_is_per_word_and_total():
    assert decode_header("=?iso-8859-1?q?p=F6stal?= =?iso-8859-1?q?_code?=") == "pöstal code"
    assert decode_header("ok =?utf-8?B?!!bad?= =?x-nope?Q?abc?=") == "ok =?utf-8?B?!!bad?= abc"
    assert decode_header("line\r\n folded") == "line folded"
    assert decode_header(None) == ""


def test_bodies_and_parts():
    raw = (
        b"From: =?utf-8?q?J=C3=B6rg?= <J@Example.COM>\r\nTo: a@x.example, B <b@y.example>\r\n"
        b"Cc: c@z.example\r\nSubject: mixed\r\nDate: Tue, 01 Apr 2025 10:00:00 +0200\r\n"
        b"Message-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n"
        b"--B\r\nContent-Type: image/png\r\nContent-ID: <img1>\r\n\r\nPNGDATA\r\n"
        b"--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;"
        b' filename="a.pdf"\r\n\r\n%PDF\r\n--B--\r\n'
    )
    mail = parse_message(raw)
    assert mail.from_header == "Jörg <J@Example.COM>" and mail.from_address == "j@example.com"
    assert mail.to_addresses == ["a@x.example", "b@y.example", "c@z.example"]
    assert mail.date is not None and mail.date.utcoffset().total_seconds() == 7200
    assert mail.message_id == "<m1@example.com>"
    assert mail.text.strip() == "Привет"
    assert mail.html == "<p>Привет</p>"
    kinds = [(a.file_name, a.inline) for a in mail.attachments]
    assert kinds == [("attachment-1.png", True), ("a.pdf", False)]


def test_same_name_different_content_gets_distinct_names():
    raw = (
        b'Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
        + b"".join(
            b'--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="n.txt"'
            b"\r\n\r\n" + body + b"\r\n"
            for body in (b"one", b"two", b"one")
        )
        + b"--B--\r\n"
    )
    names = [a.file_name for a in parse_message(raw).attachments]
    assert names == ["n.txt", "n (2).txt", "n.txt"]


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_and_its_mutations_never_raise(path):
    raw = path.read_bytes()
    mail = parse_message(raw)
    assert mail.html is None or mail.html.strip()  # an empty body is no body
    rng = random.Random(path.name)
    for _ in range(15):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 20)):
            i = rng.randrange(len(data))
            data[i] = rng.choice(b"\x00\xff=?\r\n-:;\"'\\/<>")
        cut = rng.randrange(len(data) + 1)
        for candidate in (bytes(data), bytes(data[:cut]), raw[:cut]):
            parse_message(candidate)  # must not raise
