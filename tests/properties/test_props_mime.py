"""Properties of the MIME walker (``plugins.imap.parse.parse_message``).

Messages are built with the stdlib ``email`` package from generated trees: nested
multiparts and ``message/rfc822`` parts, text in several (and mislabelled) charsets,
attachments in base64 or quoted-printable with names plain, RFC 2231 or RFC 2047 encoded,
hostile or missing, many odd headers. Plus byte soup. Whatever comes in: no exception, no
attachment's bytes lost (a nested message keeps its own in its ``.eml``), safe names.
"""

from __future__ import annotations

import base64
import email.encoders
import itertools
import quopri
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from email import policy
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from hypothesis import example, given
from hypothesis import strategies as st

from plugins.imap.parse import parse_message
from tests.properties.props_helpers import name_problem

CRLF = policy.compat32.clone(linesep="\r\n")

# names: anything, including path separators, dots, controls, bidi overrides, long ones
any_name = st.text(max_size=300)
# the same without what breaks the header line itself: the stdlib generator folds a
# header at every str.splitlines() break, so a raw one would end the headers early
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
header_safe_name = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters=LINE_BREAKS), max_size=300
)
# names the sanitizer has nothing to change in: they must arrive exactly
clean_name = st.builds(
    lambda stem, ext: f"{stem}.{ext}",
    st.text(
        st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=0x2FFF),
        min_size=1,
        max_size=40,
    ).map(lambda s: unicodedata.normalize("NFC", s)),
    st.sampled_from(["pdf", "docx", "txt", "png", "xlsx"]),
)

ATTACHMENT_TYPES = [
    ("application", "pdf"),
    ("application", "octet-stream"),
    ("image", "png"),
    ("text", "csv"),
    ("text", "plain"),
    ("application", "ms-tnef"),
]
NAME_MODES = ["none", "filename", "ctype-name", "rfc2231", "rfc2047", "both"]
CHARSETS = ["utf-8", "iso-8859-1", "us-ascii", "koi8-r", "x-unknown-charset", "utf-7", "", "\x00"]


@dataclass
class Expected:
    """What a generated (sub)message must yield."""

    attachments: list[bytes] = field(default_factory=list)  # decoded bytes, top level only
    nested: list[Expected] = field(default_factory=list)  # one per message/rfc822 part
    clean_names: list[str] = field(default_factory=list)  # names that must arrive unchanged


def _name_headers(part: Message, mode: str, name: str) -> None:
    if mode == "none":
        part.add_header("Content-Disposition", "attachment")
    elif mode == "filename":
        part.add_header("Content-Disposition", "attachment", filename=name)
    elif mode == "ctype-name":
        part.set_param("name", name)
        part.add_header("Content-Disposition", "attachment")
    elif mode == "rfc2231":
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", name))
    elif mode == "rfc2047":
        encoded = base64.b64encode(name.encode()).decode()
        part.add_header("Content-Disposition", "attachment", filename=f"=?utf-8?b?{encoded}?=")
    else:  # both, differing: the disposition's filename wins
        part.set_param("name", "decoy.bin")
        part.add_header("Content-Disposition", "inline", filename=name)


@st.composite
def attachment(draw: st.DrawFn) -> tuple[Message, Expected]:
    maintype, subtype = draw(st.sampled_from(ATTACHMENT_TYPES))
    data = draw(st.binary(max_size=3000))
    part = MIMEBase(maintype, subtype)
    if draw(st.booleans()):
        part.set_payload(data)
        email.encoders.encode_base64(part)
    else:  # quoted-printable of data without line breaks (those are the text's own)
        data = data.replace(b"\r", b"").replace(b"\n", b"")
        part.set_payload(quopri.encodestring(data, quotetabs=True).decode("ascii"))
        part["Content-Transfer-Encoding"] = "quoted-printable"
    mode = draw(st.sampled_from(NAME_MODES))
    clean = draw(st.booleans())
    name = draw(clean_name if clean else header_safe_name)
    _name_headers(part, mode, name)
    expected = Expected(attachments=[data])
    if clean and mode != "none" and not (maintype == "text" and subtype == "plain" and not data):
        expected.clean_names.append(name)
    return part, expected


# built once: a characters() strategy is costly to build (hypothesis computes its set)
TEXTS = {
    cs: st.text(st.characters(max_codepoint=top, blacklist_categories=("Cs",)))
    for cs, top in (("utf-8", 0x10FFFF), ("iso-8859-1", 0xFF), ("us-ascii", 0x7F))
}


@st.composite
def text_part(draw: st.DrawFn) -> tuple[Message, Expected]:
    charset = draw(st.sampled_from(sorted(TEXTS)))
    text = draw(TEXTS[charset])
    part = MIMEText(text, draw(st.sampled_from(["plain", "html"])), charset)
    lie = draw(st.sampled_from([None, *CHARSETS]))
    if lie is not None:  # mislabelled: the walker must still not raise
        part.set_param("charset", lie)
    return part, Expected()


_boundaries = itertools.count()


def _multipart(children: list[tuple[Message, Expected]], subtype: str) -> tuple[Message, Expected]:
    # a boundary of our own: the stdlib would draw one with `random` (not reproducible);
    # "=" never starts a base64 or quoted-printable line, "." and "_" are no base64
    msg = MIMEMultipart(subtype, boundary=f"==b{next(_boundaries)}._")
    expected = Expected()
    for part, exp in children:
        msg.attach(part)
        expected.attachments += exp.attachments
        expected.nested += exp.nested
        expected.clean_names += exp.clean_names
    return msg, expected


def _nested(inner: tuple[Message, Expected], subject: str) -> tuple[Message, Expected]:
    part, exp = inner
    part["Subject"] = Header(subject, "utf-8")
    return MIMEMessage(part), Expected(nested=[exp])


def _trees() -> st.SearchStrategy[tuple[Message, Expected]]:
    leaves = st.one_of(attachment(), text_part())
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.builds(
                _multipart,
                st.lists(children, max_size=4),
                st.sampled_from(["mixed", "alternative", "related", "signed", "x-weird"]),
            ),
            st.builds(_nested, children, any_name),
        ),
        max_leaves=8,
    )


TREES = _trees()


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, Expected]:
    msg, expected = draw(TREES)
    if draw(st.booleans()):
        msg["Subject"] = Header(draw(any_name), "utf-8")
    else:
        msg["Subject"] = draw(header_safe_name)
    for header in draw(st.lists(st.sampled_from(["From", "To", "Cc", "Date", "Message-ID"]))):
        msg[header] = draw(header_safe_name)
    for i in range(draw(st.integers(0, 100))):
        msg[f"X-Odd-{i % 7}"] = f"value {i}"
    return msg.as_bytes(policy=CRLF), expected


def check(raw: bytes, expected: Expected) -> None:
    mail = parse_message(raw)
    for att in mail.attachments:
        assert name_problem(att.file_name) is None, (att.file_name, name_problem(att.file_name))
    by_name: dict[str, str] = {}
    for att in mail.attachments:  # one name, one content
        assert by_name.setdefault(att.file_name.lower(), att.sha256) == att.sha256
    files = [a for a in mail.attachments if a.content_type != "message/rfc822"]
    assert Counter(a.data for a in files) == Counter(expected.attachments)
    names = {a.file_name for a in mail.attachments}
    for name in expected.clean_names:
        assert name in names, (name, names)
    emls = [a for a in mail.attachments if a.content_type == "message/rfc822"]
    assert len(emls) == len(expected.nested)
    # a nested message's own attachments are in its .eml, whole (matched by content)
    for inner in expected.nested:
        inside = [Counter(a.data for a in parse_message(eml.data).attachments) for eml in emls]
        assert any(Counter(inner.attachments) <= found for found in inside)
    for text in (mail.subject, mail.from_header, *mail.to):
        assert not any(unicodedata.category(ch) == "Cc" and ch != "\t" for ch in text), text


@given(messages())
# a whole message that is one text/csv part with "Content-Disposition: attachment" is a
# file, not the body (it used to be read as body text: the file was gone)
@example(
    (
        b"Content-Type: text/csv\r\nContent-Disposition: attachment\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nYSxiDQo=\r\n",
        Expected(attachments=[b"a,b\r\n"]),
    )
)
def test_generated_messages_keep_every_attachment_with_a_safe_name(
    message: tuple[bytes, Expected],
) -> None:
    check(*message)


@given(TREES)
def test_a_lone_part_as_the_whole_message(tree: tuple[Message, Expected]) -> None:
    msg, expected = tree
    check(msg.as_bytes(policy=CRLF), expected)


FRAGMENTS = [
    b"Content-Type: multipart/mixed; boundary=B\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; charset=x-nope\r\n",
    b"Content-Type: application/pdf; name*0*=utf-8''%E2%80%AE; name*1=fdp.exe\r\n",
    b'Content-Disposition: attachment; filename="../../x\\y"\r\n',
    b"Content-Disposition: attachment; filename*=utf-8''%0A%1B%5D0%3Bpwned%07\r\n",
    b"Content-Disposition: attachment; filename==?utf-8?q?=0Aa=1B?=\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Transfer-Encoding: x-uuencode\r\n",
    b"Subject: =?utf-8?b?!!!?= =?x-bad?q?a?=\r\n",
    b"\r\n",
    b"--B\r\n",
    b"--B--\r\n",
    b"=?utf-8?",
    b"QUJD\r\n",
    b"=ZZ=\r\n",
    b"\xff\xfe\x00",
]


@given(
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=40)), max_size=40).map(
        b"".join
    )
)
@example(b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n" * 3)
def test_byte_soup_never_raises(raw: bytes) -> None:
    mail = parse_message(raw)
    for att in mail.attachments:
        assert name_problem(att.file_name) is None, att.file_name
    assert isinstance(mail.text, str) and isinstance(mail.subject, str)


def test_twenty_thousand_headers() -> None:
    head = b"".join(b"Received: from relay%d.example by mx\r\n" % i for i in range(20_000))
    raw = (
        head + b"Subject: many\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="a.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n"
    )
    mail = parse_message(raw)
    assert mail.subject == "many"
    assert [(a.file_name, a.data) for a in mail.attachments] == [("a.pdf", b"%PDF")]
