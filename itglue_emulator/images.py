"""Document images: ``POST /document_images`` with a target (a gallery section or a
document) and strict-base64 content, ``GET`` and ``DELETE /document_images/:id``.

The shape follows docs/itglue-api.md (Celerium's ``New-ITGlueDocumentImage``): the body's
attributes are ``target: {type: "gallery"|"document", id}`` and ``image: {content,
file-name}``. There is no list route (none is documented): a gallery section shows its
images in its ``images`` attribute, which is how a client finds what it uploaded.
"""

from __future__ import annotations

import hashlib
import mimetypes
from typing import Any

from . import errors
from .attachments import decode_strict_base64
from .handlers import require
from .jsonapi import Ctx, Reply, check_type, document
from .resources import SPECS, is_blank, normalize_attributes

TARGET_TYPES = ("gallery", "document")


def _target(ctx: Ctx, raw: Any) -> tuple[str, dict[str, Any]]:
    """(target type, the gallery section or document) named by ``target``."""
    target = normalize_attributes(raw)
    kind = str(target.get("type") or "").strip().lower()
    if kind not in TARGET_TYPES:
        raise errors.unprocessable(
            [errors.invalid_value_entry("target.type", "must be gallery or document")]
        )
    if is_blank(target.get("id")):
        raise errors.unprocessable([errors.blank_entry("target.id")])
    if kind == "document":
        return kind, require(ctx, "documents", target["id"])
    section = ctx.app.store.get("document_sections", target["id"])
    if section is None or section.get("resource-type") != "Document::Gallery":
        raise errors.record_not_found("Document::Gallery", str(target["id"]))
    return kind, section


def image_create(ctx: Ctx) -> Reply:
    spec = SPECS["document_images"]
    item = ctx.data()
    check_type(spec, item, "document_images", "document-image", "images")
    raw = normalize_attributes(item.get("attributes"))
    image = normalize_attributes(raw.get("image"))
    content, file_name = image.get("content"), image.get("file-name")
    problems = []
    if not isinstance(raw.get("target"), dict):
        problems.append(errors.blank_entry("target"))
    if is_blank(content):
        problems.append(errors.blank_entry("image.content"))
    if is_blank(file_name) or not isinstance(file_name, str):
        problems.append(errors.blank_entry("image.file-name"))
    if problems:
        raise errors.unprocessable(problems)
    data = decode_strict_base64(content)
    if data is None:
        raise errors.unprocessable(
            [errors.invalid_value_entry("image.content", "is not valid strict base64")]
        )
    name = str(file_name).replace("\\", "/").rsplit("/", 1)[-1]
    with ctx.app.store.lock:
        kind, target = _target(ctx, raw["target"])
        document_id = target["id"] if kind == "document" else target["document-id"]
        record = ctx.app.store.insert(
            "document_images",
            {
                "target-type": kind,
                "target-id": target["id"],
                "document-id": document_id,
                "file-name": name,
                "image-file-size": len(data),
                "image-content-type": mimetypes.guess_type(name)[0] or "application/octet-stream",
                "sha256": hashlib.sha256(data).hexdigest(),
            },
        )
        ctx.app.store.blobs[record["id"]] = data
        if kind == "gallery":
            target.setdefault("images", []).append(
                {"id": record["id"], "file-name": name, "image-file-size": len(data)}
            )
        return Reply(201, document(ctx, spec, [record], single=True))


def image_show(ctx: Ctx) -> Reply:
    with ctx.app.store.lock:
        record = require(ctx, "document_images", ctx.params["id"])
        return Reply(200, document(ctx, SPECS["document_images"], [record], single=True))


def image_delete(ctx: Ctx) -> Reply:
    with ctx.app.store.lock:
        record = require(ctx, "document_images", ctx.params["id"])
        delete_image(ctx, record)
    return Reply(204)


def delete_image(ctx: Ctx, record: dict[str, Any]) -> None:
    """Remove an image and its place in its gallery."""
    store = ctx.app.store
    if record.get("target-type") == "gallery":
        gallery = store.get("document_sections", record["target-id"])
        if gallery is not None:
            gallery["images"] = [i for i in gallery.get("images", []) if i["id"] != record["id"]]
    store.delete("document_images", record["id"])
