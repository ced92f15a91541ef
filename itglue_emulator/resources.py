"""What each emulated resource looks like: writable attributes, validation, filters, sorts.

The tables (:mod:`.specs`, one module per resource group) are written from
docs/itglue-api.md (sections 2 and 5). Writable attributes act like the real API's strong
parameters: an attribute a client invents is dropped silently, so it never comes back in a
response -- which is how a client finds out it misspelt one.
"""

from __future__ import annotations

from typing import Any

from . import errors
from .specs import SPECS, Spec
from .store import Store

__all__ = [
    "ATTACHABLE",
    "DESTINATION_TYPES",
    "RELATABLE",
    "SECTION_KINDS",
    "SPECS",
    "Spec",
    "display_name",
    "is_blank",
    "kebab",
    "normalize_attributes",
    "type_matches",
    "validate",
]

ATTACHABLE = (
    "checklists",
    "checklist_templates",
    "configurations",
    "contacts",
    "documents",
    "domains",
    "locations",
    "passwords",
    "ssl_certificates",
    "flexible_assets",
    "tickets",
)
# "folders" is allowed by the API for related items but has no emulated collection.
RELATABLE = ATTACHABLE

SECTION_KINDS = ("Document::Text", "Document::Heading", "Document::Gallery", "Document::Step")

# destination_type spellings accepted for related items -> collection
DESTINATION_TYPES: dict[str, str] = {}
for _spec in SPECS.values():
    DESTINATION_TYPES[_spec.class_name.lower()] = _spec.collection
    DESTINATION_TYPES[_spec.collection] = _spec.collection
    DESTINATION_TYPES[_spec.json_type] = _spec.collection


def kebab(key: str) -> str:
    return key.replace("_", "-")


def type_matches(spec: Spec, given: Any, *aliases: str) -> bool:
    if not isinstance(given, str):
        return False
    wanted = {spec.json_type, *aliases}
    return kebab(given) in wanted


def normalize_attributes(raw: Any) -> dict[str, Any]:
    """kebab-case the keys (snake_case is accepted too); digit-string ids become ints."""
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        k = kebab(str(key))
        if (k.endswith("-id") or k == "id") and isinstance(value, str) and value.isdigit():
            value = int(value)
        out[k] = value
    return out


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def validate(
    store: Store, spec: Spec, attrs: dict[str, Any], existing: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Error entries for a create (existing None) or an update; empty when valid."""
    merged = dict(existing or {})
    merged.update(attrs)
    problems: list[dict[str, Any]] = []
    for attr, (collection, required, pointer) in spec.references.items():
        if existing is not None and attr not in attrs:
            continue
        value = merged.get(attr)
        if value is None and not required:
            continue
        target = store.get(collection, value)
        if target is None:
            if collection == "organizations":
                problems.append(errors.organization_required_entry())
            else:
                problems.append(errors.must_exist_entry(pointer))
    for attr in spec.required:
        if (existing is None or attr in attrs) and is_blank(merged.get(attr)):
            problems.append(errors.blank_entry(attr))
    return problems


def display_name(store: Store, collection: str, record_id: Any) -> str | None:
    target = store.get(collection, record_id)
    if target is None:
        return None
    if collection == "contacts":
        return " ".join(p for p in (target.get("first-name"), target.get("last-name")) if p)
    value = target.get("name")
    return None if value is None else str(value)
