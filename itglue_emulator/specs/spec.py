"""One emulated resource's table (:class:`Spec`) and the shapes several resources share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# filter kinds: "id" (record id), "int" (integer attribute), "str" (case-insensitive exact),
# "bool", "date" (range "from,to" with "*" wildcards), "email" (any contact email)

# generic route kinds (routes.py registers them from a spec's ``routes``/``nested``):
# index GET /c, show GET /c/:id, create POST /c, update PATCH /c/:id, destroy DELETE /c/:id,
# bulk_update PATCH /c, bulk_destroy DELETE /c
ALL_ROUTES = frozenset(
    {"index", "show", "create", "update", "destroy", "bulk_update", "bulk_destroy"}
)
READ = frozenset({"index", "show"})
WRITE = READ | {"create", "update"}
CRUD_BULK = WRITE | {"bulk_update", "bulk_destroy"}


@dataclass(frozen=True)
class Spec:
    collection: str  # URL segment and state key, e.g. "flexible_assets"
    json_type: str  # JSON:API type in responses, e.g. "flexible-assets"
    class_name: str  # e.g. "FlexibleAsset" (404 details, related-item destination types)
    label: str  # e.g. "Flexible Asset" (bulk error titles)
    writable: frozenset[str] = frozenset()
    required: tuple[str, ...] = ()
    org_owned: bool = False
    # reference attribute -> (collection, required, error pointer name)
    references: dict[str, tuple[str, bool, str]] = field(default_factory=dict)
    filters: dict[str, str] = field(default_factory=dict)
    sorts: frozenset[str] = frozenset({"id", "created-at", "updated-at"})
    includes: frozenset[str] = frozenset()
    defaults: dict[str, Any] = field(default_factory=dict)
    name_attr: str = "name"  # what "<x>-name" of a referencing record shows
    # generic routes on /<collection> and on /<owner>/:id/relationships/<collection>;
    # empty for resources whose routes are written by hand (documents, flexible assets)
    routes: frozenset[str] = frozenset()
    nested: frozenset[str] = frozenset()
    # the parent of the nested routes: (collection, attribute naming it); org_owned
    # resources default to ("organizations", "organization-id")
    owner: tuple[str, str] | None = None
    secret: tuple[str, ...] = ()  # attributes shown only on a show with show_<attr>=true
    # user_metrics: filter[date] must be a range of at most this many days, no wildcard
    date_window_days: int | None = None

    @property
    def parent(self) -> tuple[str, str] | None:
        if self.owner is not None:
            return self.owner
        return ("organizations", "organization-id") if self.org_owned else None


COMMON_SORT = frozenset({"id", "created-at", "updated-at"})
TYPE_FILTERS = {"id": "id", "name": "str"}


def type_spec(collection: str, json_type: str, class_name: str, label: str, **extra: Any) -> Spec:
    """A name-only lookup table (types, statuses, categories): list, show, create, update."""
    return Spec(
        collection,
        json_type,
        class_name,
        label,
        writable=frozenset({"name"}),
        required=("name",),
        filters=dict(TYPE_FILTERS),
        sorts=COMMON_SORT | {"name"},
        routes=WRITE,
        **extra,
    )


def listed(
    collection: str,
    json_type: str,
    class_name: str,
    label: str,
    *,
    filters: dict[str, str] | None = None,
    **extra: Any,
) -> Spec:
    """A resource the API only lists and shows (seeded in the emulator)."""
    extra.setdefault("routes", READ)
    return Spec(
        collection,
        json_type,
        class_name,
        label,
        filters={"id": "id", "name": "str", **(filters or {})},
        sorts=COMMON_SORT | {"name"},
        **extra,
    )


def org_listed(collection: str, json_type: str, class_name: str, label: str, **extra: Any) -> Spec:
    """An organization's records the API lists and shows, top level and nested."""
    extra.setdefault("nested", READ)
    extra.setdefault("includes", frozenset({"attachments", "related_items"}))
    filters = {"organization-id": "int", **extra.pop("filters", {})}
    return listed(
        collection, json_type, class_name, label, org_owned=True, filters=filters, **extra
    )


ORG_REF = ("organizations", True, "organization")
