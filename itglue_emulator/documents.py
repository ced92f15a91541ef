"""Documents, their sections and publish (PATCH only).

The quirks reproduced here come from the public record: ``content`` on a document PATCH is
ignored on multi-section documents, inline ``<svg>`` is stripped, a section without
``resource_type`` is a 400, and publishing is ``PATCH /documents/:id/publish`` (a POST
there is simply an unknown route, 404).
"""

from __future__ import annotations

import re
from typing import Any

from . import errors
from .handlers import require
from .jsonapi import Ctx, Reply, check_type, document
from .listing import apply_sort, paginate
from .resources import (
    SECTION_KINDS,
    SPECS,
    is_blank,
    normalize_attributes,
)
from .store import now_iso, to_int

_SVG = re.compile(r"<svg\b.*?</svg\s*>", re.IGNORECASE | re.DOTALL)


def _sections_of(ctx: Ctx, document_id: int) -> list[dict[str, Any]]:
    rows = [
        s
        for s in ctx.app.store.tables["document_sections"].values()
        if s["document-id"] == document_id
    ]
    return sorted(rows, key=lambda s: (s.get("sort", 0), s["id"]))


def sanitize_html(content: Any) -> Any:
    """Inline <svg> is stripped silently by the real API (itglue-mcp PR #97)."""
    return _SVG.sub("", content) if isinstance(content, str) else content


def document_content(ctx: Ctx, record: dict[str, Any], raw: dict[str, Any]) -> None:
    """``content`` on a document create/PATCH: one Text section; ignored on multi-section
    documents (the real API silently does nothing there, msp-claude-plugins #34)."""
    if "content" not in raw:
        return
    sections = _sections_of(ctx, record["id"])
    content = sanitize_html(raw["content"])
    if not sections:
        ctx.app.store.insert(
            "document_sections",
            {
                "document-id": record["id"],
                "resource-type": "Document::Text",
                "content": content,
                "sort": 0,
            },
        )
    elif len(sections) == 1 and sections[0]["resource-type"] in (
        "Document::Text",
        "Document::Step",
    ):
        sections[0]["content"] = content
        sections[0]["updated-at"] = now_iso()


def documents_root_only(ctx: Ctx, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Without filter[document_folder_id] only root-level documents are listed."""
    folder = ctx.arg("filter[document_folder_id]") or ctx.arg("filter[document-folder-id]")
    if folder is None:
        return [r for r in rows if r.get("document-folder-id") is None]
    return [r for r in rows if str(r.get("document-folder-id")) == folder.strip()]


def publish_document(ctx: Ctx) -> Reply:
    spec = SPECS["documents"]
    with ctx.app.store.lock:
        record = require(ctx, "documents", ctx.params["id"])
        stamp = now_iso()
        record.update({"published": True, "published-at": stamp, "updated-at": stamp})
        return Reply(200, document(ctx, spec, [record], single=True, always=("sections",)))


_SECTION_ALIASES = ("document-sections", "sections", "document-section")


def _section_attrs(
    ctx: Ctx, raw: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    spec = SPECS["document_sections"]
    attrs = {k: v for k, v in raw.items() if k in spec.writable}
    kind = attrs.get("resource-type", existing.get("resource-type") if existing else None)
    if existing is None and is_blank(kind):
        raise errors.param_missing("resource_type")
    if kind not in SECTION_KINDS:
        raise errors.unprocessable(
            [
                errors.invalid_value_entry(
                    "resource-type", f"must be one of {', '.join(SECTION_KINDS)}"
                )
            ]
        )
    if existing is not None and attrs.get("resource-type", kind) != existing["resource-type"]:
        raise errors.unprocessable(
            [errors.invalid_value_entry("resource-type", "can't be changed")]
        )
    if kind == "Document::Heading":
        level = attrs.get("level", existing.get("level") if existing else None)
        level_int = to_int(level)
        if level_int is None or not 1 <= level_int <= 6:
            raise errors.unprocessable(
                [errors.invalid_value_entry("level", "must be between 1 and 6")]
            )
        attrs["level"] = level_int
    if "content" in attrs:
        attrs["content"] = sanitize_html(attrs["content"])
    if kind == "Document::Gallery":
        attrs.pop("content", None)
    return attrs


def section_index(ctx: Ctx) -> Reply:
    spec = SPECS["document_sections"]
    with ctx.app.store.lock:
        doc = require(ctx, "documents", ctx.params["doc_id"])
        rows = _sections_of(ctx, doc["id"])
        sort = ctx.arg("sort")
        if sort:
            rows = apply_sort(spec, rows, sort)
        page, meta, links = paginate(rows, ctx.query, ctx.base_url, ctx.path, {})
        body = document(ctx, spec, page, single=False)
    body["meta"] = meta
    body["links"] = links
    return Reply(200, body)


def section_create(ctx: Ctx) -> Reply:
    spec = SPECS["document_sections"]
    item = ctx.data()
    check_type(spec, item, *_SECTION_ALIASES)
    raw = normalize_attributes(item.get("attributes"))
    with ctx.app.store.lock:
        doc = require(ctx, "documents", ctx.params["doc_id"])
        attrs = _section_attrs(ctx, raw, None)
        existing = _sections_of(ctx, doc["id"])
        if "sort" not in attrs:
            attrs["sort"] = (max((s.get("sort", 0) for s in existing), default=-1)) + 1
        values: dict[str, Any] = {"document-id": doc["id"], "content": None}
        if attrs.get("resource-type") == "Document::Gallery":
            values = {"document-id": doc["id"], "images": []}
        values.update(attrs)
        record = ctx.app.store.insert("document_sections", values)
        doc["updated-at"] = record["created-at"]
        return Reply(201, document(ctx, spec, [record], single=True))


def _section(ctx: Ctx) -> dict[str, Any]:
    doc = require(ctx, "documents", ctx.params["doc_id"])
    record = ctx.app.store.get("document_sections", ctx.params["id"])
    if record is None or record["document-id"] != doc["id"]:
        raise errors.record_not_found("Document::Section", ctx.params["id"])
    return record


def section_show(ctx: Ctx) -> Reply:
    with ctx.app.store.lock:
        return Reply(200, document(ctx, SPECS["document_sections"], [_section(ctx)], single=True))


def section_update(ctx: Ctx) -> Reply:
    spec = SPECS["document_sections"]
    item = ctx.data()
    check_type(spec, item, *_SECTION_ALIASES)
    raw = normalize_attributes(item.get("attributes"))
    with ctx.app.store.lock:
        record = _section(ctx)
        attrs = _section_attrs(ctx, raw, record)
        record.update(attrs)
        record["updated-at"] = now_iso()
        _touch_document(ctx, record)
        return Reply(200, document(ctx, spec, [record], single=True))


def section_delete(ctx: Ctx) -> Reply:
    with ctx.app.store.lock:
        record = _section(ctx)
        for image in [
            i
            for i in ctx.app.store.tables["document_images"].values()
            if i["target-type"] == "gallery" and i["target-id"] == record["id"]
        ]:
            ctx.app.store.delete("document_images", image["id"])
        ctx.app.store.delete("document_sections", record["id"])
        _touch_document(ctx, record)
    return Reply(204)


def _touch_document(ctx: Ctx, section: dict[str, Any]) -> None:
    """A section edit changes its document's ``updated-at`` (as creating one does), so a
    client comparing documents by ``updated-at`` sees it."""
    doc = ctx.app.store.get("documents", section.get("document-id"))
    if doc is not None:
        doc["updated-at"] = now_iso()
