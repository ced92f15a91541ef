"""Generic index/show/create/update/bulk handlers shared by every plain resource.

Special resources plug their validation in through the ``prepare``/``after`` callbacks
below or have a module of their own (documents, attachments, related_items, flexible).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import errors
from .jsonapi import Ctx, Reply, check_type, document
from .listing import apply_filters, apply_sort, check_date_window, paginate
from .resources import SPECS, Spec, display_name, normalize_attributes, validate
from .store import now_iso, to_int

Handler = Callable[[Ctx], Reply]
# (ctx, spec, attrs, existing) -> attrs to store; raise ApiError to refuse
Prepare = Callable[[Ctx, Spec, dict[str, Any], "dict[str, Any] | None"], dict[str, Any]]
# (ctx, record) -> None: after a create/update is stored (e.g. document content)
After = Callable[[Ctx, dict[str, Any], dict[str, Any]], None]


def require(ctx: Ctx, collection: str, record_id: Any) -> dict[str, Any]:
    record = ctx.app.store.get(collection, record_id)
    if record is None:
        raise errors.record_not_found(SPECS[collection].class_name, str(record_id))
    return record


def owner_id(ctx: Ctx) -> str | None:
    """The parent's id in a nested URL (``/<parent>/:id/relationships/...``), or None."""
    return ctx.params.get("org_id") or ctx.params.get("owner_id")


def owner_attr(spec: Spec) -> str:
    parent = spec.parent
    return parent[1] if parent is not None else "organization-id"


def require_owner(ctx: Ctx, spec: Spec) -> dict[str, Any]:
    """The parent record of a nested URL (404 when absent)."""
    parent = spec.parent
    collection = parent[0] if parent is not None else "organizations"
    return require(ctx, collection, owner_id(ctx))


def require_owned(ctx: Ctx, spec: Spec, record_id: Any) -> dict[str, Any]:
    """The record, checked against the parent (organization, ...) in a nested URL."""
    record = require(ctx, spec.collection, record_id)
    owner = owner_id(ctx)
    if owner is not None and record.get(owner_attr(spec)) != to_int(owner):
        raise errors.record_not_found(spec.class_name, str(record_id))
    return record


def _writable(spec: Spec, raw: Any) -> dict[str, Any]:
    attrs = normalize_attributes(raw)
    return {k: v for k, v in attrs.items() if k in spec.writable}


def derive_for_sort(ctx: Ctx, spec: Spec) -> Callable[[dict[str, Any], str], Any]:
    def derive(record: dict[str, Any], name: str) -> Any:
        if name.endswith("-name"):
            ref = name[: -len("-name")] + "-id"
            target = spec.references.get(ref)
            if target:
                return display_name(ctx.app.store, target[0], record.get(ref))
        return None

    return derive


def index(
    spec: Spec,
    nested: bool = False,
    scope: Callable[[Ctx, list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    before: Callable[[Ctx], None] | None = None,
) -> Handler:
    """GET collection. Nested (org) routes ignore filters, as the real API does."""

    def handle(ctx: Ctx) -> Reply:
        store = ctx.app.store
        check_date_window(spec, ctx.query)
        if before:
            before(ctx)
        with store.lock:
            if nested and owner_id(ctx) is not None:
                owner = require_owner(ctx, spec)
                attr = owner_attr(spec)
                rows = [
                    r for r in store.tables[spec.collection].values() if r.get(attr) == owner["id"]
                ]
                applied: dict[str, str] = {}
            else:
                rows = list(store.tables[spec.collection].values())
                if scope is None:
                    rows, applied = apply_filters(spec, rows, ctx.query)
                else:
                    applied = {}
            if scope is not None:
                rows = scope(ctx, rows)
            rows = apply_sort(spec, rows, ctx.arg("sort"), derive_for_sort(ctx, spec))
            page, meta, links = paginate(rows, ctx.query, ctx.base_url, ctx.path, applied)
            body = document(ctx, spec, page, single=False)
        body["meta"] = meta
        body["links"] = links
        return Reply(200, body)

    return handle


def show(spec: Spec, always: tuple[str, ...] = ()) -> Handler:
    def handle(ctx: Ctx) -> Reply:
        with ctx.app.store.lock:
            record = require_owned(ctx, spec, ctx.params["id"])
            return Reply(200, document(ctx, spec, [record], single=True, always=always))

    return handle


def create(
    spec: Spec,
    prepare: Prepare | None = None,
    after: After | None = None,
    aliases: tuple[str, ...] = (),
) -> Handler:
    """POST collection (top level or nested under an organization). Arrays -> 422."""

    def handle(ctx: Ctx) -> Reply:
        item = ctx.data()
        check_type(spec, item, *aliases)
        raw = normalize_attributes(item.get("attributes"))
        attrs = {k: v for k, v in raw.items() if k in spec.writable}
        store = ctx.app.store
        with store.lock:
            if owner_id(ctx) is not None:
                attrs[owner_attr(spec)] = require_owner(ctx, spec)["id"]
            problems = validate(store, spec, attrs, None)
            if problems:
                raise errors.unprocessable(problems)
            if prepare:
                attrs = prepare(ctx, spec, attrs, None)
            values = dict(spec.defaults)
            values.update(attrs)
            record = store.insert(spec.collection, values)
            if after:
                after(ctx, record, raw)
            return Reply(201, document(ctx, spec, [record], single=True))

    return handle


def _apply_update(
    ctx: Ctx,
    spec: Spec,
    record: dict[str, Any],
    raw: dict[str, Any],
    prepare: Prepare | None,
    after: After | None,
) -> Callable[[], None]:
    """Validate an update and return the function that commits it (for atomic bulks)."""
    attrs = {k: v for k, v in raw.items() if k in spec.writable}
    problems = validate(ctx.app.store, spec, attrs, record)
    if problems:
        raise errors.unprocessable(problems)
    if prepare:
        attrs = prepare(ctx, spec, attrs, record)

    def commit() -> None:
        record.update(attrs)
        record["updated-at"] = now_iso()
        if after:
            after(ctx, record, raw)

    return commit


def update(
    spec: Spec,
    prepare: Prepare | None = None,
    after: After | None = None,
    aliases: tuple[str, ...] = (),
) -> Handler:
    def handle(ctx: Ctx) -> Reply:
        item = ctx.data()
        check_type(spec, item, *aliases)
        raw = normalize_attributes(item.get("attributes"))
        with ctx.app.store.lock:
            record = require_owned(ctx, spec, ctx.params["id"])
            _apply_update(ctx, spec, record, raw, prepare, after)()
            return Reply(200, document(ctx, spec, [record], single=True))

    return handle


def _ids_from_items(spec: Spec, items: list[dict[str, Any]]) -> list[Any]:
    ids = []
    for item in items:
        attrs = normalize_attributes(item.get("attributes"))
        rid = attrs.get("id", item.get("id"))
        if rid is None:
            raise errors.unprocessable([errors.blank_entry("id")])
        ids.append(rid)
    return ids


def bulk_update(
    spec: Spec,
    prepare: Prepare | None = None,
    after: After | None = None,
    aliases: tuple[str, ...] = (),
) -> Handler:
    """PATCH collection with data=[{type, attributes: {id, ...}}]; all or nothing."""

    def handle(ctx: Ctx) -> Reply:
        items = ctx.data(allow_list=True)
        if isinstance(items, dict):
            items = [items]
        for item in items:
            check_type(spec, item, *aliases)
        ids = _ids_from_items(spec, items)
        with ctx.app.store.lock:
            records = [require_owned(ctx, spec, rid) for rid in ids]
            commits = []
            for record, item in zip(records, items, strict=True):
                raw = normalize_attributes(item.get("attributes"))
                raw.pop("id", None)
                commits.append(_apply_update(ctx, spec, record, raw, prepare, after))
            for commit in commits:
                commit()
            return Reply(200, document(ctx, spec, records, single=False))

    return handle


Cascade = Callable[[Ctx, dict[str, Any]], None]


def delete_attachments_of(ctx: Ctx, collection: str, record_id: int) -> None:
    store = ctx.app.store
    for att in [
        a
        for a in store.tables["attachments"].values()
        if a["resource-type"] == collection and a["resource-id"] == record_id
    ]:
        store.delete("attachments", att["id"])
    for rel in [
        r
        for r in store.tables["related_items"].values()
        if r["_source-collection"] == collection and r["_source-id"] == record_id
    ]:
        store.delete("related_items", rel["id"])


def destroy_record(ctx: Ctx, spec: Spec, record: dict[str, Any]) -> None:
    """Delete one record and what hangs off it (attachments, sections, child records)."""
    store = ctx.app.store
    rid = record["id"]
    delete_attachments_of(ctx, spec.collection, rid)
    if spec.collection == "documents":
        for sec in [
            s for s in store.tables["document_sections"].values() if s["document-id"] == rid
        ]:
            store.delete("document_sections", sec["id"])
        for image in [
            i for i in store.tables["document_images"].values() if i["document-id"] == rid
        ]:
            store.delete("document_images", image["id"])
    for child in SPECS.values():  # an organization's records, a configuration's interfaces
        if child.parent is not None and child.parent[0] == spec.collection:
            attr = child.parent[1]
            for row in [r for r in store.tables[child.collection].values() if r.get(attr) == rid]:
                destroy_record(ctx, child, row)
    store.delete(spec.collection, rid)


def bulk_destroy(spec: Spec, aliases: tuple[str, ...] = ()) -> Handler:
    """DELETE collection: by data=[{type, attributes: {id}}] or by filters (top level)."""

    def handle(ctx: Ctx) -> Reply:
        doc = ctx.json_body()
        store = ctx.app.store
        with store.lock:
            if doc is not None:
                items = ctx.data(allow_list=True)
                if isinstance(items, dict):
                    items = [items]
                for item in items:
                    check_type(spec, item, *aliases)
                records = [require_owned(ctx, spec, rid) for rid in _ids_from_items(spec, items)]
            else:
                # by filters: top level only (nested routes ignore filters), and never
                # "everything" because a client forgot the body
                if owner_id(ctx) is not None:
                    require_owner(ctx, spec)
                    raise errors.param_missing("data")
                rows = list(store.tables[spec.collection].values())
                records, applied = apply_filters(spec, rows, ctx.query)
                if not applied:
                    raise errors.param_missing("data")
            body = document(ctx, spec, records, single=False)
            for record in records:
                destroy_record(ctx, spec, record)
        return Reply(200, body)

    return handle


def destroy_one(spec: Spec) -> Handler:
    def handle(ctx: Ctx) -> Reply:
        with ctx.app.store.lock:
            record = require_owned(ctx, spec, ctx.params["id"])
            destroy_record(ctx, spec, record)
        return Reply(204)

    return handle


def parent_record(ctx: Ctx) -> dict[str, Any]:
    """The record named by ``/:parent_type/:parent_id`` in the URL (404 if absent)."""
    return require(ctx, ctx.params["parent_type"], ctx.params["parent_id"])


def bulk_ids(ctx: Ctx, spec: Spec) -> list[Any]:
    items = ctx.data(allow_list=True)
    if isinstance(items, dict):
        items = [items]
    ids = []
    for item in items:
        check_type(spec, item)
        attrs = normalize_attributes(item.get("attributes"))
        rid = attrs.get("id", item.get("id"))
        if rid is None:
            raise errors.unprocessable([errors.blank_entry("id")])
        ids.append(rid)
    return ids
