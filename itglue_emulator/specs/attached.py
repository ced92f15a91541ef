"""Attachments and related items: records that hang off another record (their handlers
validate them, so no attribute is writable through the generic path)."""

from __future__ import annotations

from .spec import Spec

ATTACHED_SPECS: tuple[Spec, ...] = (
    Spec("attachments", "attachments", "Attachment", "Attachment"),
    Spec("related_items", "related-items", "RelatedItem", "Related Item"),
)
