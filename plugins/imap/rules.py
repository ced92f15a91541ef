"""Rules: which mails to take, for which organization, and what becomes of them.

A rule's filters must all match (regular expressions are searched case-insensitively).
With ``match = "first"`` the first matching rule takes the mail; with ``"all"`` every
matching rule makes its own record (so one vendor mail can land in two organizations).
The organization comes from, in order: a tag in the subject (``subject_tag``), the
sender's address or domain in ``organization_map`` (parent domains too), the rule's fixed
``organization``; otherwise the source's ``organization`` applies.
"""

from __future__ import annotations

import fnmatch
import functools
import io
import re
from datetime import datetime, timedelta
from typing import Any

from pipeline import FileInput, RecordDraft, Section

from .options import Rule
from .parse import Attachment, ParsedMail, header_block, mail_file_name


def matching_rules(
    rules: list[Rule], mode: str, mail: ParsedMail, now: datetime, arrived: datetime | None
) -> list[Rule]:
    out = []
    for rule in rules:
        if rule_matches(rule, mail, now, arrived):
            out.append(rule)
            if mode == "first":
                break
    return out


def _search(pattern: str | None, *texts: str) -> bool:
    if pattern is None:
        return True
    return any(re.search(pattern, t, re.IGNORECASE) for t in texts)


def rule_matches(rule: Rule, mail: ParsedMail, now: datetime, arrived: datetime | None) -> bool:
    o = rule.options
    if not _search(o.from_, mail.from_header, mail.from_address):
        return False
    if not _search(o.to, ", ".join(mail.to), *mail.to_addresses):
        return False
    if not _search(o.subject, mail.subject):
        return False
    if not _search(o.body, mail.text):
        return False
    if o.max_age_days is not None:
        when = mail.date or arrived
        if when is not None and now - when > timedelta(days=o.max_age_days):
            return False
    if o.has_attachments is not None:
        has = any(not a.inline for a in mail.attachments)
        if has != o.has_attachments:
            return False
    return not (o.attachment_patterns and not select_attachments(rule, mail))


def _glob(name: str, patterns: list[str]) -> bool:
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, p.lower()) for p in patterns)


def select_attachments(rule: Rule, mail: ParsedMail) -> list[Attachment]:
    """The files this rule takes: inline parts only when asked, the name patterns applied,
    the same content only once."""
    o = rule.options
    out: list[Attachment] = []
    seen: set[str] = set()
    for a in mail.attachments:
        if a.inline and not rule.include_inline:
            continue
        if o.attachment_patterns and not _glob(a.file_name, o.attachment_patterns):
            continue
        if o.attachment_exclude and _glob(a.file_name, o.attachment_exclude):
            continue
        if a.sha256 in seen:
            continue
        seen.add(a.sha256)
        out.append(a)
    return out


def organization_for(rule: Rule, mail: ParsedMail) -> tuple[str | None, str]:
    """The organization name this rule gives the mail, and how it was found."""
    o = rule.options
    if o.subject_tag:
        m = re.search(o.subject_tag, mail.subject, re.IGNORECASE)
        if m:
            name = (m.group(1) if m.groups() else m.group(0)).strip()
            if name:
                return name, "subject tag"
    if o.organization_map and mail.from_address:
        addr = mail.from_address
        if addr in o.organization_map:
            return o.organization_map[addr], "sender address"
        domain = addr.rpartition("@")[2]
        labels = domain.split(".")
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])
            if candidate in o.organization_map:
                return o.organization_map[candidate], "sender domain"
    if o.organization:
        return o.organization, "rule"
    return None, "source"


def document_name(rule: Rule, mail: ParsedMail) -> str:
    subject = mail.subject
    if rule.options.subject_tag:
        subject = re.sub(rule.options.subject_tag, "", subject, count=1, flags=re.IGNORECASE)
    subject = re.sub(r"\s{2,}", " ", subject).strip(" -:")
    if subject:
        return subject[:250]
    sender = mail.from_address or "unknown sender"
    when = f" {mail.date:%Y-%m-%d %H:%M}" if mail.date else ""
    return f"Email from {sender}{when}"


def _bytes_opener(data: bytes) -> functools.partial[io.BytesIO]:
    return functools.partial(io.BytesIO, data)


def build_draft(
    *,
    source_ref: str,
    rule: Rule,
    mail: ParsedMail,
    raw: bytes,
    imap_meta: dict[str, Any],
    extra_defects: list[str] | None = None,
) -> RecordDraft:
    """The record of one mail for one rule.

    A draft always has something to deliver: when the rule's choice leaves neither a
    file nor a body (a mail with an empty body and no attachment, or one whose parts
    could not be read), the raw message is added as ``.eml`` so the outcome is visible.
    """
    files: list[FileInput] = []
    notes: list[str] = list(mail.defects) + list(extra_defects or [])
    if rule.ingest in ("attachments", "both"):
        for a in select_attachments(rule, mail):
            files.append(
                FileInput(
                    file_name=a.file_name,
                    open=_bytes_opener(a.data),
                    claimed_mime=a.content_type,
                    metadata={"part": "inline" if a.inline else "attachment"},
                )
            )
    sections = []
    if mail.html:
        sections.append(Section(content=header_block(mail) + "\n" + mail.html))
    want_eml = rule.ingest in ("eml", "both")
    if not files and not sections and not want_eml:
        notes.append("nothing to take from this mail; the message itself is kept as .eml")
        want_eml = True
    if want_eml:
        stem = mail_file_name(mail.subject, "message")[:120].rstrip(" .") or "message"
        files.append(
            FileInput(
                file_name=f"{stem}.eml",
                open=_bytes_opener(raw),
                claimed_mime="message/rfc822",
                metadata={"part": "message"},
            )
        )
    organization, how = organization_for(rule, mail)
    metadata: dict[str, Any] = {
        "email": {
            "subject": mail.subject,
            "from": mail.from_header,
            "to": mail.to,
            "date": mail.date.isoformat() if mail.date else None,
            "message_id": mail.message_id,
        },
        "imap": dict(imap_meta, rule=rule.name),
        "organization_from": how,
    }
    if notes:
        metadata["defects"] = notes[:50]
    return RecordDraft(
        source_ref=source_ref,
        name=document_name(rule, mail),
        files=files,
        sections=sections,
        metadata=metadata,
        organization=organization,
    )
