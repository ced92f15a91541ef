"""A dropped ``.eml`` (``message/rfc822``) reads like a mail from the mailbox source.

The mailbox source's parser (:mod:`plugins.imap.parse`) does the MIME work, so a file
dropped in a folder and the same mail fetched over IMAP give the same section: the
envelope table (From, To, Date, Subject) and the sanitized body, titled by the subject.
The mail's pictures follow the body as document images; its other attachments stay
inside the attached ``.eml`` and the note names them.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import (
    Block,
    Extracted,
    ExtractionError,
    ExtractLimits,
    Html,
    Picture,
    RegisterExtractor,
    hookimpl,
)
from plugins.imap.parse import header_block, html_to_text, parse_message

from .blocks import WEB_IMAGES

EML_TYPES = ("message/rfc822",)
MAX_EML_BYTES = 100_000_000


def extract_eml(path: Path, limits: ExtractLimits) -> Extracted:
    with path.open("rb") as f:
        raw = f.read(MAX_EML_BYTES + 1)
    if len(raw) > MAX_EML_BYTES:
        raise ExtractionError(f"the message is larger than {MAX_EML_BYTES:,} bytes")
    mail = parse_message(raw, body_max_chars=limits.max_output_bytes)
    blocks: list[Block] = []
    envelope = header_block(mail)
    body = mail.html or ""
    if envelope or body:
        blocks.append(Html(f"{envelope}\n{body}".strip()))
    others: list[str] = []
    for attachment in mail.attachments:
        mime = attachment.content_type.lower()
        if mime in WEB_IMAGES:
            blocks.append(Picture(attachment.data, mime, attachment.file_name))
        else:
            others.append(attachment.file_name)
    note = None
    if others:
        shown = ", ".join(others[:10]) + (
            f" and {len(others) - 10} more" if len(others) > 10 else ""
        )
        note = f"attachments inside the attached message: {shown}"
    text = mail.text or (html_to_text(mail.html) if mail.html else "")
    header_text = "\n".join(
        f"{k}: {v}" for k, v in (("From", mail.from_header), ("Subject", mail.subject)) if v
    )
    return Extracted(
        blocks=tuple(blocks),
        text=f"{header_text}\n\n{text}".strip(),
        title=mail.subject.strip() or None,
        note=note,
    )


@hookimpl
def ingest_register_extractors(register: RegisterExtractor) -> None:
    register(list(EML_TYPES), extract_eml, name="eml")
