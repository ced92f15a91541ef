"""Flexible asset types with their fields, and flexible assets with traits.

Traits are validated against the type's fields by ``name-key``; a PATCH that carries
``traits`` replaces the whole set, exactly the behaviour that bites real users.
"""

from __future__ import annotations

import re
from typing import Any

from . import errors
from .handlers import bulk_ids, destroy_record, require, require_owned
from .jsonapi import Ctx, Reply, check_type, document, fields_of
from .listing import paginate
from .resources import (
    SPECS,
    Spec,
    is_blank,
    kebab,
    normalize_attributes,
    validate,
)
from .store import now_iso, to_int


def name_key(name: str) -> str:
    """IT Glue's trait key for a field: lower case, non-alphanumerics to hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _field_values(
    ctx: Ctx, raw: dict[str, Any], type_id: int | None, existing: dict[str, Any] | None
) -> dict[str, Any]:
    spec = SPECS["flexible_asset_fields"]
    attrs = {k: v for k, v in raw.items() if k in spec.writable}
    problems = validate(ctx.app.store, spec, attrs, existing)
    if problems:
        raise errors.unprocessable(problems)
    if "name" in attrs:
        attrs["name-key"] = name_key(str(attrs["name"]))
        others = [
            f
            for f in fields_of(ctx.app, type_id)
            if f["name-key"] == attrs["name-key"]
            and (existing is None or f["id"] != existing["id"])
        ]
        if others or not attrs["name-key"]:
            raise errors.unprocessable(
                [errors.invalid_value_entry("name", "has already been taken")]
            )
    return attrs


def fat_create(ctx: Ctx) -> Reply:
    """POST /flexible_asset_types with relationships.flexible_asset_fields.data[]."""
    spec = SPECS["flexible_asset_types"]
    item = ctx.data()
    check_type(spec, item)
    raw = normalize_attributes(item.get("attributes"))
    attrs = {k: v for k, v in raw.items() if k in spec.writable}
    rels = item.get("relationships") or {}
    field_items: list[Any] = []
    if isinstance(rels, dict):
        fields_rel = rels.get("flexible_asset_fields") or rels.get("flexible-asset-fields") or {}
        if isinstance(fields_rel, dict):
            field_items = fields_rel.get("data") or []
    store = ctx.app.store
    with store.lock:
        problems = validate(store, spec, attrs, None)
        if problems:
            raise errors.unprocessable(problems)
        field_attrs = []
        seen: set[str] = set()
        for position, f in enumerate(field_items):
            if not isinstance(f, dict):
                raise errors.internal_error()
            fa = _field_values(ctx, normalize_attributes(f.get("attributes")), None, None)
            if fa["name-key"] in seen:
                raise errors.unprocessable(
                    [errors.invalid_value_entry("name", "has already been taken")]
                )
            seen.add(fa["name-key"])
            fa.setdefault("order", position + 1)
            field_attrs.append(fa)
        values = dict(spec.defaults)
        values.update(attrs)
        record = store.insert("flexible_asset_types", values)
        for fa in field_attrs:
            row = dict(SPECS["flexible_asset_fields"].defaults)
            row.update(fa)
            row["flexible-asset-type-id"] = record["id"]
            store.insert("flexible_asset_fields", row)
        return Reply(
            201, document(ctx, spec, [record], single=True, always=("flexible_asset_fields",))
        )


def field_index(ctx: Ctx) -> Reply:
    spec = SPECS["flexible_asset_fields"]
    with ctx.app.store.lock:
        fat = require(ctx, "flexible_asset_types", ctx.params["type_id"])
        rows = fields_of(ctx.app, fat["id"])
        page, meta, links = paginate(rows, ctx.query, ctx.base_url, ctx.path, {})
        body = document(ctx, spec, page, single=False)
    body["meta"] = meta
    body["links"] = links
    return Reply(200, body)


def field_create(ctx: Ctx) -> Reply:
    spec = SPECS["flexible_asset_fields"]
    item = ctx.data()
    check_type(spec, item)
    with ctx.app.store.lock:
        fat = require(ctx, "flexible_asset_types", ctx.params["type_id"])
        attrs = _field_values(ctx, normalize_attributes(item.get("attributes")), fat["id"], None)
        attrs.setdefault("order", len(fields_of(ctx.app, fat["id"])) + 1)
        row = dict(spec.defaults)
        row.update(attrs)
        row["flexible-asset-type-id"] = fat["id"]
        record = ctx.app.store.insert("flexible_asset_fields", row)
        return Reply(201, document(ctx, spec, [record], single=True))


def field_update(ctx: Ctx) -> Reply:
    spec = SPECS["flexible_asset_fields"]
    item = ctx.data()
    check_type(spec, item)
    with ctx.app.store.lock:
        record = require(ctx, "flexible_asset_fields", ctx.params["id"])
        attrs = _field_values(
            ctx,
            normalize_attributes(item.get("attributes")),
            record["flexible-asset-type-id"],
            record,
        )
        record.update(attrs)
        record["updated-at"] = now_iso()
        return Reply(200, document(ctx, spec, [record], single=True))


def field_bulk_update(ctx: Ctx) -> Reply:
    """PATCH /flexible_asset_fields with data=[{attributes: {id, ...}}]; all or nothing."""
    spec = SPECS["flexible_asset_fields"]
    with ctx.app.store.lock:
        ids = bulk_ids(ctx, spec)
        items = ctx.data(allow_list=True)
        items = items if isinstance(items, list) else [items]
        changes = []
        for rid, item in zip(ids, items, strict=True):
            record = require(ctx, "flexible_asset_fields", rid)
            raw = normalize_attributes(item.get("attributes"))
            raw.pop("id", None)
            type_id = record["flexible-asset-type-id"]
            changes.append((record, _field_values(ctx, raw, type_id, record)))
        for record, attrs in changes:
            record.update(attrs)
            record["updated-at"] = now_iso()
        return Reply(200, document(ctx, spec, [r for r, _ in changes], single=False))


# ------------------------------------------------------------------- flexible assets


def prepare_flexible_asset(
    ctx: Ctx, spec: Spec, attrs: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    """Validate traits against the type's fields. A PATCH with traits replaces them all."""
    if existing is not None and "traits" not in attrs and "flexible-asset-type-id" not in attrs:
        return attrs
    type_id = attrs.get("flexible-asset-type-id", existing and existing["flexible-asset-type-id"])
    fat = ctx.app.store.get("flexible_asset_types", type_id)
    assert fat is not None  # validate() checked the reference
    traits_in = attrs.get("traits", existing.get("traits") if existing else {}) or {}
    if not isinstance(traits_in, dict):
        raise errors.invalid_trait_keys()
    fields = fields_of(ctx.app, fat["id"])
    by_key = {f["name-key"]: f for f in fields}
    traits: dict[str, Any] = {}
    for key, value in traits_in.items():
        k = str(key)
        if k not in by_key:
            k = kebab(k)
        if k not in by_key:
            raise errors.invalid_trait_keys()
        field = by_key[k]
        if field.get("kind") == "Tag" and isinstance(value, dict) and "values" in value:
            value = [v.get("id") for v in value["values"] if isinstance(v, dict)]
        if field.get("kind") == "Tag" and value is not None:
            value = [
                to_int(v) if to_int(v) is not None else v
                for v in (value if isinstance(value, list) else [value])
            ]
        if value is not None:
            traits[k] = value
    problems = [
        errors.trait_blank_entry(f["name-key"])
        for f in fields
        if f.get("required") and is_blank(traits.get(f["name-key"]))
    ]
    if problems:
        raise errors.unprocessable(problems)
    attrs["traits"] = traits
    attrs["flexible-asset-type-id"] = fat["id"]
    title = next((f for f in fields if f.get("use-for-title")), None) or next(
        (f for f in fields if f.get("kind") not in ("Header", "Tag", "Upload")), None
    )
    attrs["name"] = None if title is None else _trait_text(traits.get(title["name-key"]))
    return attrs


def _trait_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def require_fa_type_filter(ctx: Ctx) -> None:
    for key, _value in ctx.query:
        if key in ("filter[flexible-asset-type-id]", "filter[flexible_asset_type_id]"):
            return
    raise errors.symbolic_unprocessable(
        "filter[flexible_asset_type_id] is required", "filter[flexible_asset_type_id]"
    )


def destroy_flexible_asset(ctx: Ctx) -> Reply:
    spec = SPECS["flexible_assets"]
    with ctx.app.store.lock:
        record = require_owned(ctx, spec, ctx.params["id"])
        destroy_record(ctx, spec, record)
    return Reply(204)
