"""Related items: create (one or many), update notes, bulk delete."""

from __future__ import annotations

from typing import Any

from . import errors
from .handlers import bulk_ids, parent_record
from .jsonapi import Ctx, Reply, check_type, document
from .resources import (
    DESTINATION_TYPES,
    SPECS,
    is_blank,
    kebab,
    normalize_attributes,
)
from .store import now_iso, to_int


def related_create(ctx: Ctx) -> Reply:
    spec = SPECS["related_items"]
    payload = ctx.data(allow_list=True)
    items = payload if isinstance(payload, list) else [payload]
    with ctx.app.store.lock:
        parent = parent_record(ctx)
        prepared = []
        for item in items:
            check_type(spec, item)
            raw = normalize_attributes(item.get("attributes"))
            problems = [
                errors.blank_entry(a)
                for a in ("destination-id", "destination-type")
                if is_blank(raw.get(a))
            ]
            if problems:
                raise errors.unprocessable(problems)
            dest_type = str(raw["destination-type"])
            collection = DESTINATION_TYPES.get(dest_type.lower()) or DESTINATION_TYPES.get(
                kebab(dest_type).lower()
            )
            if collection is None or ctx.app.store.get(collection, raw["destination-id"]) is None:
                raise errors.unprocessable([errors.must_exist_entry("destination")])
            prepared.append(
                {
                    "destination-id": to_int(raw["destination-id"]),
                    "destination-type": SPECS[collection].class_name,
                    "notes": raw.get("notes"),
                    "_source-collection": ctx.params["parent_type"],
                    "_source-id": parent["id"],
                    "_destination-collection": collection,
                }
            )
        records = [ctx.app.store.insert("related_items", p) for p in prepared]
        return Reply(201, document(ctx, spec, records, single=not isinstance(payload, list)))


def _related(ctx: Ctx, rid: Any) -> dict[str, Any]:
    parent = parent_record(ctx)
    record = ctx.app.store.get("related_items", rid)
    if (
        record is None
        or record["_source-collection"] != ctx.params["parent_type"]
        or record["_source-id"] != parent["id"]
    ):
        raise errors.record_not_found("RelatedItem", str(rid))
    return record


def related_update(ctx: Ctx) -> Reply:
    spec = SPECS["related_items"]
    item = ctx.data()
    check_type(spec, item)
    raw = normalize_attributes(item.get("attributes"))
    with ctx.app.store.lock:
        record = _related(ctx, ctx.params["id"])
        if "notes" in raw:
            record["notes"] = raw["notes"]
            record["updated-at"] = now_iso()
        return Reply(200, document(ctx, spec, [record], single=True))


def related_bulk_delete(ctx: Ctx) -> Reply:
    spec = SPECS["related_items"]
    ids = bulk_ids(ctx, spec)
    with ctx.app.store.lock:
        records = [_related(ctx, rid) for rid in ids]
        body = document(ctx, spec, records, single=False)
        for record in records:
            ctx.app.store.delete("related_items", record["id"])
    return Reply(200, body)
