"""Request context, replies, and JSON:API rendering of stored records.

Rendering adds what the real server computes itself: string ids, derived ``*-name``
attributes, ``resource-url``, attachment download URLs, expanded Tag traits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors
from .resources import SPECS, Spec, display_name, kebab, type_matches

if TYPE_CHECKING:
    from .app import EmulatorApp

JSONAPI = "application/vnd.api+json; charset=utf-8"
_NO_BODY = object()
_JSON_TYPES = frozenset({"application/vnd.api+json", "application/json"})


@dataclass
class Reply:
    status: int
    body: Any = None  # dict -> JSON, bytes -> raw, None -> empty
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSONAPI


@dataclass
class Ctx:
    """One API request as the route handlers see it."""

    app: EmulatorApp
    method: str
    path: str
    query: list[tuple[str, str]]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/vnd.api+json"
    _parsed: Any = _NO_BODY

    @property
    def base_url(self) -> str:
        return self.app.base_url

    def arg(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def json_body(self) -> Any:
        if self._parsed is _NO_BODY:
            media = self.content_type.split(";", 1)[0].strip().lower()
            if not self.body.strip() or media not in _JSON_TYPES:
                # like Rails: a body of another content type is not parsed at all, so the
                # request then lacks "data" (400), however valid the JSON inside it is
                self._parsed = None
            else:
                try:
                    self._parsed = json.loads(self.body)
                except (ValueError, UnicodeDecodeError):
                    raise errors.malformed_json() from None
        return self._parsed

    def data(self, allow_list: bool = False) -> Any:
        """The top-level ``data`` member: an object (or a list when ``allow_list``)."""
        doc = self.json_body()
        if not isinstance(doc, dict) or doc.get("data") in (None, {}, []):
            raise errors.param_missing("data")
        data = doc["data"]
        if isinstance(data, str):
            # A double-JSON-encoded body: the real API falls over with a 500.
            raise errors.internal_error()
        if isinstance(data, list):
            if not allow_list:
                raise _list_not_allowed(self)
            if not all(isinstance(item, dict) for item in data):
                raise errors.internal_error()
            return data
        if not isinstance(data, dict):
            raise errors.internal_error()
        return data


def _list_not_allowed(ctx: Ctx) -> errors.ApiError:
    label = "record"
    for segment in reversed(ctx.path.strip("/").split("/")):
        if segment in SPECS:
            label = SPECS[segment].label
            break
    return errors.bulk_not_allowed(label)


def check_type(spec: Spec, item: dict[str, Any], *aliases: str) -> None:
    """A wrong ``type`` is refused; a missing one is tolerated (clients omit it)."""
    given = item.get("type")
    if given is None:
        return
    if not type_matches(spec, given, *aliases):
        raise errors.unprocessable(
            [
                {
                    "status": 422,
                    "title": "Unprocessable Entity",
                    "detail": f"type '{given}' does not match '{spec.json_type}'",
                    "source": {"pointer": "/data/type"},
                }
            ]
        )


def resource_url(ctx: Ctx, spec: Spec, record: dict[str, Any]) -> str:
    org = record.get("organization-id")
    if spec.collection != "organizations" and org is not None:
        return f"{ctx.base_url}/{org}/{spec.collection}/{record['id']}"
    return f"{ctx.base_url}/{spec.collection}/{record['id']}"


def attributes(ctx: Ctx, spec: Spec, record: dict[str, Any]) -> dict[str, Any]:
    store = ctx.app.store
    attrs = {k: v for k, v in record.items() if k != "id" and not k.startswith("_")}
    for attr, (collection, _required, _pointer) in spec.references.items():
        attrs[attr[:-3] + "-name"] = display_name(store, collection, record.get(attr))
    coll = spec.collection
    for secret in spec.secret:
        # the value only on a show that asks for it: GET /passwords/:id?show_password=true
        shown = ctx.method == "GET" and bool(ctx.params.get("id"))
        if not (shown and (ctx.arg(f"show_{secret}") or "").lower() == "true"):
            attrs.pop(secret, None)
    if coll == "attachments":
        attrs.pop("sha256", None)
        attrs["download-url"] = f"{ctx.base_url}/_downloads/{record['id']}/{record['_token']}"
    elif coll == "flexible_assets":
        attrs["traits"] = render_traits(ctx, record)
    elif coll == "related_items":
        dest = SPECS.get(record.get("_destination-collection", ""))
        attrs["destination-name"] = (
            display_name(store, dest.collection, record.get("destination-id")) if dest else None
        )
    elif coll == "flexible_asset_fields":
        attrs["flexible-asset-type-id"] = record.get("flexible-asset-type-id")
    elif coll == "document_images":
        attrs.pop("sha256", None)
    if coll not in (
        "attachments",
        "document_sections",
        "document_images",
        "related_items",
        "flexible_asset_fields",
    ):
        attrs["resource-url"] = resource_url(ctx, spec, record)
    return attrs


def render_traits(ctx: Ctx, record: dict[str, Any]) -> dict[str, Any]:
    """Tag traits come back expanded: {"type": ..., "values": [{id, name, resource-url}]}."""
    store = ctx.app.store
    traits = dict(record.get("traits") or {})
    fields = fields_of(ctx.app, record.get("flexible-asset-type-id"))
    for f in fields:
        key = f["name-key"]
        if f.get("kind") != "Tag" or key not in traits:
            continue
        tag_type = str(f.get("tag-type") or "Configurations")
        collection = kebab(tag_type).replace("-", "_").lower()
        if collection not in SPECS:
            collection = "flexible_assets"
        spec = SPECS[collection]
        values = []
        ids = traits[key] if isinstance(traits[key], list) else [traits[key]]
        for rid in ids:
            target = store.get(collection, rid)
            if target is not None:
                values.append(
                    {
                        "id": target["id"],
                        "name": display_name(store, collection, rid)
                        if collection != "flexible_assets"
                        else target.get("name"),
                        "resource-url": resource_url(ctx, spec, target),
                    }
                )
        traits[key] = {"type": tag_type, "values": values}
    return traits


def fields_of(app: EmulatorApp, type_id: Any) -> list[dict[str, Any]]:
    table = app.store.tables["flexible_asset_fields"]
    rows = [f for f in table.values() if f.get("flexible-asset-type-id") == type_id]
    return sorted(rows, key=lambda f: (f.get("order") or 0, f["id"]))


def render(ctx: Ctx, spec: Spec, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(record["id"]),
        "type": spec.json_type,
        "attributes": attributes(ctx, spec, record),
        "relationships": {},
    }


def related_records(
    ctx: Ctx, spec: Spec, record: dict[str, Any], name: str
) -> tuple[Spec, list[dict[str, Any]]] | None:
    """Records sideloaded by ``include=<name>`` for one record (None: not supported)."""
    store = ctx.app.store
    rid = record["id"]
    if name == "attachments":
        rows = [
            a
            for a in store.tables["attachments"].values()
            if a["resource-type"] == spec.collection and a["resource-id"] == rid
        ]
        return SPECS["attachments"], rows
    if name == "related_items":
        rows = [
            r
            for r in store.tables["related_items"].values()
            if r["_source-collection"] == spec.collection and r["_source-id"] == rid
        ]
        return SPECS["related_items"], rows
    if name == "sections" and spec.collection == "documents":
        rows = [s for s in store.tables["document_sections"].values() if s["document-id"] == rid]
        return SPECS["document_sections"], sorted(rows, key=lambda s: (s.get("sort", 0), s["id"]))
    if name == "flexible_asset_fields" and spec.collection == "flexible_asset_types":
        return SPECS["flexible_asset_fields"], fields_of(ctx.app, rid)
    if name == "location" and spec.collection == "contacts":
        loc = store.get("locations", record.get("location-id"))
        return SPECS["locations"], [loc] if loc else []
    return None


def requested_includes(ctx: Ctx, spec: Spec, always: tuple[str, ...] = ()) -> list[str]:
    raw = ctx.arg("include") or ""
    names = [n.strip().replace("-", "_") for n in raw.split(",") if n.strip()]
    # unknown include names are ignored: the real API has many we do not emulate
    out = [n for n in (*always, *names) if n in spec.includes]
    return list(dict.fromkeys(out))


def document(
    ctx: Ctx,
    spec: Spec,
    records: list[dict[str, Any]],
    single: bool,
    always: tuple[str, ...] = (),
) -> dict[str, Any]:
    """{"data": ..., "included": [...]} with relationships for the requested includes."""
    includes = requested_includes(ctx, spec, always)
    data = []
    included: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        obj = render(ctx, spec, record)
        for name in includes:
            found = related_records(ctx, spec, record, name)
            if found is None:
                continue
            rel_spec, rows = found
            obj["relationships"][kebab(name)] = {
                "data": [{"type": rel_spec.json_type, "id": str(r["id"])} for r in rows]
            }
            for r in rows:
                key = (rel_spec.json_type, str(r["id"]))
                if key not in included:
                    included[key] = render(ctx, rel_spec, r)
        data.append(obj)
    out: dict[str, Any] = {"data": data[0] if single else data}
    if includes:
        out["included"] = list(included.values())
    return out
