"""Turn the raw bytes of a mail into what the source needs: headers, a body, attachments.

Mail in shared mailboxes is hostile or merely broken: missing or malformed headers,
unknown charsets, RFC 2047/2231 encoded (and over-long) file names, file names with
path separators or ``..``, nested ``message/rfc822`` parts, TNEF ``winmail.dat``. Nothing
here may raise on such input: :func:`parse_message` always returns a
:class:`ParsedMail`, noting what it had to work around in ``defects``.

Why the stdlib ``compat32`` policy and hand-written decoding rather than
``email.policy.default``'s ``get_content``/``iter_attachments``: the modern policy
raises on unknown charsets and on some malformed address headers when they are
accessed, and its attachment walk descends into nested messages; here each header and
part is decoded defensively, one at a time, and a nested message stays one ``.eml`` file.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.header
import email.message
import email.utils
import hashlib
import html
import mimetypes
import quopri
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy

from itglue_common import safe_file_name
from pipeline import sanitize_html, text_to_html


@dataclass
class Attachment:
    """A part of the mail that becomes a file (or could, when inline parts are asked for)."""

    file_name: str  # already made safe
    data: bytes
    content_type: str
    inline: bool = False
    original_name: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class ParsedMail:
    subject: str = ""
    from_header: str = ""
    from_address: str = ""  # lower-case addr-spec of the first From address, "" if none
    to: list[str] = field(default_factory=list)  # "Name <addr>" of To and Cc
    to_addresses: list[str] = field(default_factory=list)
    date: datetime | None = None
    message_id: str | None = None
    text: str = ""  # the plain-text body (for the body filter)
    html: str | None = None  # the sanitized HTML body, None when the mail has no body text
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def decode_header(value: object) -> str:
    """An RFC 2047 header value as text; never raises.

    Each encoded word is decoded on its own (unlike ``email.header.decode_header``,
    which gives up on the whole header at the first bad word): a word that does not
    decode stays as it was, an unknown charset falls back as in :func:`_decode_bytes`.
    """
    if value is None:
        return ""
    if isinstance(value, email.header.Header):  # raw 8-bit bytes in the header
        try:
            raw = "".join(
                _decode_bytes(chunk, None if cs in (None, "unknown-8bit") else str(cs))
                if isinstance(chunk, bytes)
                else chunk
                for chunk, cs in email.header.decode_header(value)
            )
        except Exception:
            raw = str(value)
    else:
        raw = str(value)
    if "=?" not in raw:
        return _clean_text(raw)
    out: list[str] = []
    pos = 0
    after_word = False
    for m in _ENCODED_WORD.finditer(raw):
        between = raw[pos : m.start()]
        if not (after_word and not between.strip()):  # whitespace between words is dropped
            out.append(between)
        decoded = _decode_word(m.group(1), m.group(2), m.group(3))
        after_word = decoded is not None
        out.append(m.group(0) if decoded is None else decoded)
        pos = m.end()
    out.append(raw[pos:])
    return _clean_text("".join(out))


def _decode_word(charset: str, encoding: str, text: str) -> str | None:
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
    try:
        if encoding.lower() == "b":
            data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        else:
            data = quopri.decodestring(text.encode("ascii", errors="replace"), header=True)
    except (ValueError, binascii.Error):
        return None
    return _decode_bytes(data, charset)


def _clean_text(text: str) -> str:
    """Unfold header lines and drop control characters."""
    text = re.sub(r"\r?\n[ \t]*", " ", text)
    return "".join(
        ch for ch in text if ch == "\t" or unicodedata.category(ch) not in ("Cc", "Cs")
    ).strip()


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset; unknown or wrong charsets fall back to UTF-8, then
    Latin-1, replacing what still does not decode."""
    for cs in (charset, "utf-8"):
        if not cs or not _known_charset(cs):
            continue
        try:
            return data.decode(cs)
        except (UnicodeError, LookupError, ValueError):
            continue
    return data.decode("latin-1", errors="replace")


def _known_charset(charset: str) -> bool:
    try:
        codecs.lookup(charset)
    except (LookupError, ValueError):  # unknown, or not even a name (NUL, ...)
        return False
    return True


def _header(msg: email.message.Message, name: str, defects: list[str]) -> str:
    try:
        values = msg.get_all(name) or []
    except Exception as e:  # a header the parser chokes on
        defects.append(f"header {name} unreadable: {type(e).__name__}")
        return ""
    return decode_header(values[0]) if values else ""


def message_id_of(header_bytes: bytes) -> str | None:
    """The Message-ID in a header block, exactly as :func:`parse_message` reads it."""
    try:
        msg = email.message_from_bytes(header_bytes, policy=policy.compat32)
    except Exception:
        return None
    return _header(msg, "Message-ID", []).strip()[:998] or None


def mail_file_name(name: str | None, fallback: str) -> str:
    """An attachment's (RFC 2047 encoded) name as a safe file name (see
    :func:`itglue_common.safe_file_name`)."""
    return safe_file_name(decode_header(name) if name else "", fallback)


def _extension(content_type: str) -> str:
    if content_type == "message/rfc822":
        return ".eml"
    if content_type == "application/ms-tnef":
        return ".dat"
    guessed = mimetypes.guess_extension(content_type, strict=False)
    return guessed or (".txt" if content_type.startswith("text/") else ".bin")


def _payload_bytes(part: email.message.Message, defects: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as e:
        defects.append(f"part {part.get_content_type()} undecodable: {type(e).__name__}")
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", errors="replace")
    return b""


def _nested_bytes(part: email.message.Message, defects: list[str]) -> bytes:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, email.message.Message):
        try:
            return inner.as_bytes(policy=policy.compat32.clone(linesep="\r\n"))
        except Exception as e:
            defects.append(f"nested message unserializable: {type(e).__name__}")
            try:
                return inner.as_string().encode("utf-8", errors="replace")
            except Exception:
                return b""
    return _payload_bytes(part, defects)


def _text_of(part: email.message.Message, defects: list[str]) -> str:
    data = _payload_bytes(part, defects)
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    if charset and not _known_charset(charset):
        defects.append(f"unknown charset {charset[:40]!r}")
    return _decode_bytes(data, charset)


def parse_message(raw: bytes, body_max_chars: int = 500_000) -> ParsedMail:
    """Parse ``raw`` (RFC 5322 bytes) without ever raising."""
    mail = ParsedMail()
    try:
        msg = email.message_from_bytes(raw, policy=policy.compat32)
    except Exception as e:  # pragma: no cover - the compat32 parser is total in practice
        mail.defects.append(f"unparseable message: {type(e).__name__}")
        mail.attachments.append(
            Attachment("message.eml", raw, "message/rfc822", original_name=None)
        )
        return mail
    d = mail.defects
    d.extend(f"MIME: {type(x).__name__}" for x in getattr(msg, "defects", []))
    mail.subject = _header(msg, "Subject", d)
    mail.from_header = _header(msg, "From", d)
    try:
        addrs = email.utils.getaddresses([mail.from_header])
        mail.from_address = next((a.lower() for _, a in addrs if "@" in a), "")
    except Exception:
        d.append("From unparseable")
    to_values = [_header(msg, "To", d), _header(msg, "Cc", d)]
    try:
        pairs = email.utils.getaddresses([v for v in to_values if v])
        mail.to = [email.utils.formataddr(p) if p[0] else p[1] for p in pairs if p[1]]
        mail.to_addresses = [a.lower() for _, a in pairs if "@" in a]
    except Exception:
        d.append("To/Cc unparseable")
        mail.to = [v for v in to_values if v]
    date_header = _header(msg, "Date", d)
    if date_header:
        try:
            parsed = email.utils.parsedate_to_datetime(date_header)
            mail.date = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except Exception:
            d.append(f"Date unparseable: {date_header[:60]!r}")
    mid = _header(msg, "Message-ID", d).strip()
    mail.message_id = mid[:998] or None

    plains: list[str] = []
    htmls: list[str] = []
    _walk(msg, mail, plains, htmls, top=True)
    text = "\n\n".join(p for p in plains if p.strip())
    mail.text = text[:body_max_chars]
    if htmls:
        mail.html = (
            sanitize_html("\n".join(htmls)[:body_max_chars], allow_images=True).strip() or None
        )
        if not mail.text and mail.html:
            mail.text = html_to_text(mail.html)
    if mail.html is None and mail.text.strip():
        mail.html = text_to_html(mail.text)
    _dedupe_names(mail.attachments)
    return mail


def _walk(
    part: email.message.Message,
    mail: ParsedMail,
    plains: list[str],
    htmls: list[str],
    top: bool = False,
    depth: int = 0,
) -> None:
    d = mail.defects
    try:
        ctype = part.get_content_type()
    except Exception:
        ctype = "application/octet-stream"
    if depth > 50:
        d.append("MIME nesting deeper than 50 levels; the rest is only in the .eml")
        return
    if part.is_multipart() and ctype != "message/rfc822":
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, email.message.Message):
                    _walk(sub, mail, plains, htmls, depth=depth + 1)
        return
    if ctype.startswith("multipart/"):  # declared multipart, but the parts are unreadable
        d.append(f"{ctype} without readable parts; kept as text")
        plains.append(_text_of(part, d))
        return
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    try:
        raw_name = part.get_filename() or part.get_param("name")
    except Exception:
        raw_name = None
    if isinstance(raw_name, tuple):  # an undecoded RFC 2231 triple
        raw_name = email.utils.collapse_rfc2231_value(raw_name)
    name = str(raw_name) if raw_name else None

    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not name:
        text = _text_of(part, d)
        (htmls if ctype == "text/html" else plains).append(text)
        return
    if top and ctype.startswith("text/") and not name and disposition != "attachment":
        plains.append(_text_of(part, d))  # text/enriched, text/csv as the whole body
        return
    if ctype == "message/rfc822":
        data = _nested_bytes(part, d)
        if not name:
            inner = part.get_payload()
            subject = ""
            if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
                subject = _header(inner[0], "Subject", d)
            name = f"{subject or 'attached message'}.eml"
    else:
        data = _payload_bytes(part, d)
    n = len(mail.attachments) + 1
    fallback = f"attachment-{n}{_extension(ctype)}"
    if ctype == "application/ms-tnef" and not name:
        name = "winmail.dat"
    inline = disposition == "inline" or (
        disposition is None and not name and part.get("Content-ID") is not None
    )
    if disposition is None and not name and not inline and not data.strip():
        return  # an empty, nameless part: nothing to keep
    safe = mail_file_name(name, fallback)
    if name and safe != decode_header(name):
        d.append(f"file name {decode_header(name)[:80]!r} stored as {safe!r}")
    mail.attachments.append(Attachment(safe, data, ctype, inline=inline, original_name=name))


def _dedupe_names(attachments: list[Attachment]) -> None:
    """Give two different files of one mail distinct names: ``a.pdf``, ``a (2).pdf``."""
    seen: dict[str, str] = {}  # lower name -> sha256
    for a in attachments:
        key = a.file_name.lower()
        if key not in seen or seen[key] == a.sha256:
            seen.setdefault(key, a.sha256)
            continue
        stem, dot, ext = a.file_name.rpartition(".")
        if not dot:
            stem, ext = a.file_name, ""
        i = 2
        while True:
            candidate = f"{stem} ({i}).{ext}" if ext else f"{stem} ({i})"
            if candidate.lower() not in seen:
                break
            i += 1
        a.file_name = candidate
        seen[candidate.lower()] = a.sha256


def html_to_text(markup: str) -> str:
    """Crude text of sanitized HTML, only for the ``body`` filter."""
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def header_block(mail: ParsedMail) -> str:
    """The envelope shown above the body in the document section (escaped)."""
    rows = [
        ("From", mail.from_header),
        ("To", ", ".join(mail.to)),
        ("Date", mail.date.isoformat() if mail.date else ""),
        ("Subject", mail.subject),
    ]
    cells = "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows if v)
    return f"<table>{cells}</table>" if cells else ""
