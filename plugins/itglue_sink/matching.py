"""Matching what IT Glue lists against a record: names, creation times, attachments
(reconciliation looks for what a request whose answer was lost made)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pipeline import Blob


def name_key(name: str | None) -> str:
    return unicodedata.normalize("NFKC", name or "").casefold().strip()


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def attachment_name(att: Any) -> str:
    return str(getattr(att, "attachment_file_name", None) or getattr(att, "name", None) or "")


def match_attachment(listed: Iterable[Any], blob: Blob, taken: Iterable[str]) -> str | None:
    """The id of an attachment in ``listed`` that is ``blob`` (name and, when IT Glue
    says it, size) and not one of ``taken``."""
    claimed = set(taken)
    for att in listed:
        if str(att.id) in claimed or attachment_name(att) != blob.file_name:
            continue
        size = getattr(att, "attachment_file_size", None)
        if size is not None and int(size) != blob.size:
            continue
        return str(att.id)
    return None


def is_one_of(att: Any, files: set[tuple[str, int]]) -> bool:
    """Whether attachment ``att`` is one of ``files`` (name, size); size when IT Glue says it."""
    name, size = attachment_name(att), getattr(att, "attachment_file_size", None)
    if size is None:
        return any(name == n for n, _ in files)
    return (name, int(size)) in files
