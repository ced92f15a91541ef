"""One fetched mail into its record drafts: one per matching rule, or the raw ``.eml``.

Hostile input never stops the source: a mail that cannot be parsed or matched becomes
one draft holding the raw message, with the reason in its defects.
"""

from __future__ import annotations

import functools
import io
import logging
from datetime import UTC, datetime
from typing import Any

from pipeline import FileInput, RecordDraft

from .options import ImapOptions, Rule
from .parse import mail_file_name, parse_message
from .rules import build_draft, matching_rules


def mail_meta(
    folder: str,
    uidvalidity: int,
    uid: int,
    size: int,
    msgid: str | None,
    arrived: Any,
    rule: Rule,
) -> dict[str, Any]:
    """The ``imap`` metadata of a record: where its mail is, for the post-actions."""
    return {
        "folder": folder,
        "uidvalidity": uidvalidity,
        "uid": uid,
        "size": size,
        "message_id": msgid,
        "internaldate": arrived.isoformat() if isinstance(arrived, datetime) else None,
        "rule": rule.name,
    }


def drafts_for_mail(
    raw: bytes,
    base_ref: str,
    meta: dict[str, Any],
    arrived: Any,
    rules: list[Rule],
    options: ImapOptions,
    log: logging.Logger,
) -> tuple[list[RecordDraft], str] | None:
    """The drafts of a mail (the primary first) and the primary rule's name; None
    when no rule matches (the mail is left untouched)."""
    folder, uid = meta["folder"], meta["uid"]
    arrived_at = arrived if isinstance(arrived, datetime) else None
    if arrived_at is not None and arrived_at.tzinfo is None:
        arrived_at = arrived_at.astimezone(UTC)
    try:
        mail = parse_message(raw, options.body_max_chars)
        matched = matching_rules(rules, options.match, mail, datetime.now(UTC), arrived_at)
        if not matched:
            log.info(
                "%s UID %d (from %s, subject %r): no rule matches; left untouched",
                folder,
                uid,
                mail.from_address or "?",
                mail.subject[:80],
            )
            return None
        refs = [base_ref] + [f"{base_ref}#{r.name}" for r in matched[1:]]
        if len(matched) > 1:
            meta["siblings"] = refs
        drafts = [
            build_draft(source_ref=ref, rule=rule, mail=mail, raw=raw, imap_meta=meta)
            for rule, ref in zip(matched, refs, strict=True)
        ]
        return drafts, matched[0].name
    except Exception as e:  # hostile input must never stop the source
        log.warning(
            "%s UID %d could not be processed (%s: %s); keeping the raw message as .eml",
            folder,
            uid,
            type(e).__name__,
            e,
            exc_info=True,
        )
        return [raw_draft(base_ref, raw, meta, f"{type(e).__name__}: {e}")], rules[0].name


def too_large_draft(ref: str, uid: int, msgid: str | None, meta: dict[str, Any]) -> RecordDraft:
    """The draft of a mail over ``max_message_size`` (never downloaded): failed at once."""
    return RecordDraft(
        source_ref=ref,
        name=f"Email {msgid or f'UID {uid}'} in {meta['folder']}",
        metadata={"imap": meta, "email": {"message_id": msgid}},
    )


def raw_draft(ref: str, raw: bytes, meta: dict[str, Any], why: str) -> RecordDraft:
    return RecordDraft(
        source_ref=ref,
        name=f"Email {meta.get('message_id') or ref}",
        files=[
            FileInput(
                file_name=mail_file_name(f"message-{meta.get('uid')}.eml", "message.eml"),
                open=functools.partial(io.BytesIO, raw),
                claimed_mime="message/rfc822",
                metadata={"part": "message"},
            )
        ],
        metadata={"imap": meta, "defects": [f"could not be processed: {why}"[:500]]},
    )
