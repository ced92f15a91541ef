"""Attachments: strict-base64 upload, list, show, rename, bulk delete, download URL."""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import secrets
from typing import Any

from . import errors
from .handlers import bulk_ids, parent_record
from .jsonapi import Ctx, Reply, check_type, document
from .listing import paginate
from .resources import (
    SPECS,
    is_blank,
    normalize_attributes,
)
from .store import now_iso


def _attachments_of(ctx: Ctx, parent: dict[str, Any]) -> list[dict[str, Any]]:
    collection = ctx.params["parent_type"]
    return [
        a
        for a in ctx.app.store.tables["attachments"].values()
        if a["resource-type"] == collection and a["resource-id"] == parent["id"]
    ]


def decode_strict_base64(text: Any) -> bytes | None:
    """RFC 4648 base64, padded, no line breaks or URL-safe letters; None if invalid."""
    if not isinstance(text, str) or len(text) % 4:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def attachment_create(ctx: Ctx) -> Reply:
    spec = SPECS["attachments"]
    item = ctx.data()
    check_type(spec, item)
    raw = normalize_attributes(item.get("attributes"))
    blob = raw.get("attachment")
    if not isinstance(blob, dict):
        raise errors.unprocessable([errors.blank_entry("attachment")])
    blob = normalize_attributes(blob)
    content = blob.get("content")
    file_name = blob.get("file-name")
    problems = []
    if is_blank(content):
        problems.append(errors.blank_entry("attachment.content"))
    if is_blank(file_name) or not isinstance(file_name, str):
        problems.append(errors.blank_entry("attachment.file-name"))
    if problems:
        raise errors.unprocessable(problems)
    data = decode_strict_base64(content)
    if data is None:
        raise errors.unprocessable(
            [errors.invalid_value_entry("attachment.content", "is not valid strict base64")]
        )
    with ctx.app.store.lock:
        parent = parent_record(ctx)
        name = str(file_name).replace("\\", "/").rsplit("/", 1)[-1]
        record = ctx.app.store.insert(
            "attachments",
            {
                "resource-type": ctx.params["parent_type"],
                "resource-id": parent["id"],
                "name": name,
                "file-name": name,
                "attachment-file-size": len(data),
                "attachment-content-type": mimetypes.guess_type(name)[0]
                or "application/octet-stream",
                "sha256": hashlib.sha256(data).hexdigest(),
                "_token": secrets.token_urlsafe(12),
            },
        )
        ctx.app.store.blobs[record["id"]] = data
        return Reply(201, document(ctx, spec, [record], single=True))


def attachment_index(ctx: Ctx) -> Reply:
    spec = SPECS["attachments"]
    with ctx.app.store.lock:
        rows = sorted(_attachments_of(ctx, parent_record(ctx)), key=lambda a: a["id"])
        page, meta, links = paginate(rows, ctx.query, ctx.base_url, ctx.path, {})
        body = document(ctx, spec, page, single=False)
    body["meta"] = meta
    body["links"] = links
    return Reply(200, body)


def _attachment(ctx: Ctx) -> dict[str, Any]:
    parent = parent_record(ctx)
    record = ctx.app.store.get("attachments", ctx.params["id"])
    if (
        record is None
        or record["resource-type"] != ctx.params["parent_type"]
        or record["resource-id"] != parent["id"]
    ):
        raise errors.record_not_found("Attachment", ctx.params["id"])
    return record


def attachment_show(ctx: Ctx) -> Reply:
    with ctx.app.store.lock:
        return Reply(200, document(ctx, SPECS["attachments"], [_attachment(ctx)], single=True))


def attachment_rename(ctx: Ctx) -> Reply:
    """Only ``name`` can change; the original file name stays (CEL Set-ITGlueAttachment)."""
    spec = SPECS["attachments"]
    item = ctx.data()
    check_type(spec, item)
    raw = normalize_attributes(item.get("attributes"))
    with ctx.app.store.lock:
        record = _attachment(ctx)
        if "name" in raw:
            if is_blank(raw["name"]) or not isinstance(raw["name"], str):
                raise errors.unprocessable([errors.blank_entry("name")])
            record["name"] = raw["name"]
            record["updated-at"] = now_iso()
        return Reply(200, document(ctx, spec, [record], single=True))


def attachment_bulk_delete(ctx: Ctx) -> Reply:
    spec = SPECS["attachments"]
    ids = bulk_ids(ctx, spec)
    with ctx.app.store.lock:
        records = []
        for rid in ids:
            ctx.params["id"] = str(rid)
            records.append(_attachment(ctx))
        body = document(ctx, spec, records, single=False)
        for record in records:
            ctx.app.store.delete("attachments", record["id"])
    return Reply(200, body)


def download(ctx: Ctx) -> Reply:
    """The attachment's download URL (a stand-in for a pre-signed storage link: no key)."""
    with ctx.app.store.lock:
        record = ctx.app.store.get("attachments", ctx.params["id"])
        if record is None or not secrets.compare_digest(record["_token"], ctx.params["token"]):
            raise errors.record_not_found("Attachment", ctx.params["id"])
        data = ctx.app.store.blobs[record["id"]]
        name = record["file-name"].replace('"', "")
    return Reply(
        200,
        data,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
        content_type=record["attachment-content-type"],
    )
