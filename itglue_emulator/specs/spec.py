"""One emulated resource's table (:class:`Spec`) and the shapes several resources share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# filter kinds: "id" (record id), "int" (integer attribute), "str" (case-insensitive exact),
# "bool", "date" (range "from,to" with "*" wildcards), "email" (any contact email)


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


COMMON_SORT = frozenset({"id", "created-at", "updated-at"})
TYPE_FILTERS = {"id": "id", "name": "str"}


def type_spec(collection: str, json_type: str, class_name: str, label: str) -> Spec:
    return Spec(
        collection,
        json_type,
        class_name,
        label,
        writable=frozenset({"name"}),
        required=("name",),
        filters=dict(TYPE_FILTERS),
        sorts=COMMON_SORT | {"name"},
    )


def read_only(collection: str, json_type: str, class_name: str, label: str) -> Spec:
    return Spec(
        collection,
        json_type,
        class_name,
        label,
        org_owned=True,
        filters={"id": "id", "name": "str", "organization-id": "int"},
        sorts=COMMON_SORT | {"name"},
        includes=frozenset({"attachments"}),
    )


ORG_REF = ("organizations", True, "organization")
