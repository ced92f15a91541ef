"""The route table (docs/itglue-api.md section 5) and a segment matcher.

Routes are indexed by (method, number of path segments) so a request is compared with a
handful of templates, not all of them: matching stays cheap at thousands of requests/s.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import attachments as att
from . import documents as docs
from . import flexible as flex
from . import handlers as h
from . import images
from . import related_items as rel
from .handlers import Handler
from .jsonapi import Ctx, Reply
from .resources import ATTACHABLE, RELATABLE, SPECS, Spec


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    segments: tuple[str, ...]
    public: bool = False  # no API key, not rate limited (download URLs)


class Router:
    def __init__(self) -> None:
        self._index: dict[tuple[str, int], list[Route]] = {}

    def add(self, method: str, template: str, handler: Handler, public: bool = False) -> None:
        segments = tuple(s for s in template.split("/") if s)
        route = Route(method, template, handler, segments, public)
        bucket = self._index.setdefault((method, len(segments)), [])
        # literal segments win over parameters (e.g. /documents/:id/publish)
        bucket.append(route)
        bucket.sort(key=lambda r: sum(s.startswith(":") for s in r.segments))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        parts = [p for p in path.split("/") if p]
        for route in self._index.get((method, len(parts)), ()):
            params: dict[str, str] = {}
            for pattern, part in zip(route.segments, parts, strict=True):
                if pattern.startswith(":"):
                    params[pattern[1:]] = part
                elif pattern != part:
                    break
            else:
                return route, params
        return None

    def templates(self) -> list[str]:
        return sorted({f"{r.method} {r.template}" for b in self._index.values() for r in b})


def _owner_param(spec: Spec) -> str:
    """The URL parameter naming a nested route's parent (``:org_id`` for organizations)."""
    parent = spec.parent
    assert parent is not None
    return "org_id" if parent[0] == "organizations" else "owner_id"


def _generic(r: Router, spec: Spec) -> None:
    """The routes a spec declares (``routes`` top level, ``nested`` under its parent)."""
    handlers: dict[str, tuple[str, str, Handler]] = {
        "index": ("GET", "", h.index(spec)),
        "create": ("POST", "", h.create(spec)),
        "show": ("GET", "/:id", h.show(spec)),
        "update": ("PATCH", "/:id", h.update(spec)),
        "destroy": ("DELETE", "/:id", h.destroy_one(spec)),
        "bulk_update": ("PATCH", "", h.bulk_update(spec)),
        "bulk_destroy": ("DELETE", "", h.bulk_destroy(spec)),
    }
    for action in sorted(spec.routes):
        method, suffix, handler = handlers[action]
        r.add(method, f"/{spec.collection}{suffix}", handler)
    if spec.nested:
        parent = spec.parent
        assert parent is not None, f"{spec.collection}: nested routes need a parent"
        base = f"/{parent[0]}/:{_owner_param(spec)}/relationships/{spec.collection}"
        for action in sorted(spec.nested):
            method, suffix, handler = handlers[action]
            if action == "index":
                handler = h.index(spec, nested=True)
            r.add(method, f"{base}{suffix}", handler)


def build_router() -> Router:
    r = Router()
    for spec in SPECS.values():
        _generic(r, spec)

    # flexible asset types and fields
    fat = SPECS["flexible_asset_types"]
    r.add("GET", "/flexible_asset_types", h.index(fat))
    r.add("POST", "/flexible_asset_types", flex.fat_create)
    r.add("GET", "/flexible_asset_types/:id", h.show(fat))
    r.add("PATCH", "/flexible_asset_types/:id", h.update(fat))
    fields_base = "/flexible_asset_types/:type_id/relationships/flexible_asset_fields"
    r.add("GET", fields_base, flex.field_index)
    r.add("POST", fields_base, flex.field_create)
    faf = SPECS["flexible_asset_fields"]
    r.add("GET", "/flexible_asset_fields/:id", h.show(faf))
    r.add("PATCH", "/flexible_asset_fields/:id", flex.field_update)
    r.add("DELETE", "/flexible_asset_fields/:id", h.destroy_one(faf))
    r.add("PATCH", "/flexible_asset_fields", flex.field_bulk_update)

    # flexible assets (no nested index: the real API has only the nested create)
    fa = SPECS["flexible_assets"]
    prep = flex.prepare_flexible_asset
    r.add("GET", "/flexible_assets", h.index(fa, before=flex.require_fa_type_filter))
    r.add("POST", "/flexible_assets", h.create(fa, prepare=prep))
    r.add(
        "POST", "/organizations/:org_id/relationships/flexible_assets", h.create(fa, prepare=prep)
    )
    r.add("GET", "/flexible_assets/:id", h.show(fa))
    r.add("PATCH", "/flexible_assets/:id", h.update(fa, prepare=prep))
    r.add("DELETE", "/flexible_assets/:id", flex.destroy_flexible_asset)
    r.add("PATCH", "/flexible_assets", h.bulk_update(fa, prepare=prep))
    r.add("DELETE", "/flexible_assets", h.bulk_destroy(fa))

    # documents (no top-level index), publish (PATCH only), sections
    doc = SPECS["documents"]
    content = docs.document_content
    r.add("POST", "/documents", h.create(doc, after=content))
    base = "/organizations/:org_id/relationships/documents"
    r.add("GET", base, h.index(doc, nested=True, scope=docs.documents_root_only))
    r.add("POST", base, h.create(doc, after=content))
    r.add("GET", "/documents/:id", h.show(doc, always=("sections",)))
    r.add("PATCH", "/documents/:id", h.update(doc, after=content))
    r.add("PATCH", "/documents", h.bulk_update(doc, after=content))
    r.add("DELETE", "/documents", h.bulk_destroy(doc))
    r.add("PATCH", "/documents/:id/publish", docs.publish_document)
    sections = "/documents/:doc_id/relationships/sections"
    r.add("GET", sections, docs.section_index)
    r.add("POST", sections, docs.section_create)
    r.add("GET", f"{sections}/:id", docs.section_show)
    r.add("PATCH", f"{sections}/:id", docs.section_update)
    r.add("DELETE", f"{sections}/:id", docs.section_delete)
    r.add("POST", "/document_images", images.image_create)
    r.add("GET", "/document_images/:id", images.image_show)
    r.add("DELETE", "/document_images/:id", images.image_delete)

    # attachments and related items on every allowed parent type
    for parent in ATTACHABLE:
        a = f"/{parent}/:parent_id/relationships/attachments"
        r.add("GET", a, _bind_parent(att.attachment_index, parent))
        r.add("POST", a, _bind_parent(att.attachment_create, parent))
        r.add("DELETE", a, _bind_parent(att.attachment_bulk_delete, parent))
        r.add("GET", f"{a}/:id", _bind_parent(att.attachment_show, parent))
        r.add("PATCH", f"{a}/:id", _bind_parent(att.attachment_rename, parent))
    for parent in RELATABLE:
        ri = f"/{parent}/:parent_id/relationships/related_items"
        r.add("POST", ri, _bind_parent(rel.related_create, parent))
        r.add("DELETE", ri, _bind_parent(rel.related_bulk_delete, parent))
        r.add("PATCH", f"{ri}/:id", _bind_parent(rel.related_update, parent))

    r.add("GET", "/_downloads/:id/:token", att.download, public=True)
    return r


def _bind_parent(handler: Handler, parent: str) -> Handler:
    def bound(ctx: Ctx) -> Reply:
        ctx.params["parent_type"] = parent
        return handler(ctx)

    return bound
