"""One feed item mapped to a record draft: its identity, its fields, why it is invalid.

Pure mapping (no I/O): what an item becomes depends only on the item and ``[fields]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline import RecordDraft, Section, text_to_html

from .options import FieldMap
from .parsing import MAX_DEPTH, contains_too_deep
from .values import (
    MISSING,
    canonical_hash,
    lookup,
    parse_timestamp,
    safe_file_name,
    type_name,
)

Stamp = tuple[float, str]  # an updated-at value: (sort key, as the feed spelt it)


class ItemInvalid(Exception):
    """An item that can never become a record as it is (missing or mistyped field)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Content:
    """The file fields of one item (its sections are already in the draft)."""

    file_url: str | None
    base64: str | None
    file_name: str | None
    mime: str | None


def identity(item: Any, f: FieldMap) -> tuple[str, str, Stamp | None]:
    """``(ref, version, updated-at)``: the version is the updated-at value when the feed
    maps one, else a hash of the item (new content, new version)."""
    raw_id = lookup(item, f.id) if isinstance(item, dict) else MISSING
    digest = canonical_hash(item)
    valid_id = isinstance(raw_id, str | int) and not isinstance(raw_id, bool) and raw_id != ""
    ref = str(raw_id) if valid_id else f"invalid-item:{digest[:24]}"
    stamp: Stamp | None = None
    if f.updated_at and isinstance(item, dict):
        raw = lookup(item, f.updated_at)
        key = parse_timestamp(raw)
        if key is not None:
            stamp = (key, str(raw))
    version = stamp[1] if stamp is not None else digest
    return ref, version, stamp


def fill_draft(
    draft: RecordDraft, item: Any, f: FieldMap, stamp: Stamp | None, too_deep: bool
) -> Content:
    """Name, organization and sections into ``draft``; the file fields returned.
    ``too_deep``: the page had values nested too deeply (``parsing``).

    Raises :class:`ItemInvalid` for an item that can never become a record."""
    if too_deep and contains_too_deep(item):
        raise ItemInvalid(
            f"item is nested deeper than {MAX_DEPTH} levels (arrays/objects inside each other)"
        )
    if not isinstance(item, dict):
        raise ItemInvalid(f"item is {type_name(item)}, expected an object")
    content = _fill_fields(draft, item, f)
    if f.updated_at and stamp is None:
        raise ItemInvalid(_field_problem(item, "updated_at", f.updated_at))
    return content


def _field_problem(item: Any, name: str, path: str) -> str:
    value = lookup(item, path)
    if value is MISSING:
        return f"field {name} ({path!r}) is missing"
    if name == "updated_at":
        return f"field {name} ({path!r}) is not a date-time or a number: {str(value)[:40]!r}"
    return f"field {name} ({path!r}) is {type_name(value)}"


def _string(item: dict[str, Any], f: FieldMap, name: str, required: bool) -> str | None:
    path: str | None = getattr(f, name)
    if path is None:
        return None
    value = lookup(item, path)
    if value is MISSING or value is None:
        if required:
            raise ItemInvalid(f"field {name} ({path!r}) is missing")
        return None
    if name == "id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ItemInvalid(f"field {name} ({path!r}) is {type_name(value)}, expected a string")
    return value


def _fill_fields(draft: RecordDraft, item: dict[str, Any], f: FieldMap) -> Content:
    if not _string(item, f, "id", required=True):
        raise ItemInvalid(f"field id ({f.id!r}) is empty")
    name = _string(item, f, "name", required=True)
    draft.organization = _string(item, f, "organization", required=False)
    text = _string(item, f, "body_text", required=False)
    body = _string(item, f, "body_html", required=False)
    file_url = _string(item, f, "file_url", required=False)
    b64 = _string(item, f, "file_base64", required=False)
    file_name = _string(item, f, "file_name", required=False)
    mime = _string(item, f, "mime", required=False)
    if not (text or body or file_url or b64):
        mapped = [p for p in (f.file_url, f.file_base64, f.body_text, f.body_html) if p]
        raise ItemInvalid(f"item has no content (none of {', '.join(map(repr, mapped))})")
    if body:
        draft.sections.append(Section(content=body))
    if text:
        draft.sections.append(Section(content=text_to_html(text)))
    ref = draft.source_ref
    draft.name = name or (safe_file_name(file_name, ref) if file_name else ref)
    return Content(file_url=file_url, base64=b64, file_name=file_name, mime=mime)
