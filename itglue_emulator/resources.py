"""What each emulated resource looks like: writable attributes, validation, filters, sorts.

The tables here are written from itglue-api.md (sections 2 and 5). Writable attributes act
like the real API's strong parameters: an attribute a client invents is dropped silently,
so it never comes back in a response -- which is how a client finds out it misspelt one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import errors
from .store import Store

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


_COMMON_SORT = frozenset({"id", "created-at", "updated-at"})
_TYPE_FILTERS = {"id": "id", "name": "str"}


def _type_spec(collection: str, json_type: str, class_name: str, label: str) -> Spec:
    return Spec(
        collection,
        json_type,
        class_name,
        label,
        writable=frozenset({"name"}),
        required=("name",),
        filters=dict(_TYPE_FILTERS),
        sorts=_COMMON_SORT | {"name"},
    )


def _readonly(collection: str, json_type: str, class_name: str, label: str) -> Spec:
    return Spec(
        collection,
        json_type,
        class_name,
        label,
        org_owned=True,
        filters={"id": "id", "name": "str", "organization-id": "int"},
        sorts=_COMMON_SORT | {"name"},
        includes=frozenset({"attachments"}),
    )


_ORG_REF = ("organizations", True, "organization")

SPECS: dict[str, Spec] = {
    s.collection: s
    for s in (
        Spec(
            "organizations",
            "organizations",
            "Organization",
            "Organization",
            writable=frozenset(
                {
                    "name",
                    "description",
                    "organization-type-id",
                    "organization-status-id",
                    "short-name",
                    "quick-notes",
                    "alert",
                    "primary",
                    "my-glue-account-id",
                    "parent-id",
                    "psa-integration",
                }
            ),
            required=("name",),
            references={
                "organization-type-id": ("organization_types", False, "organization-type"),
                "organization-status-id": ("organization_statuses", False, "organization-status"),
            },
            filters={
                "id": "id",
                "name": "str",
                "organization-type-id": "int",
                "organization-status-id": "int",
                "created-at": "date",
                "updated-at": "date",
                "my-glue-account-id": "int",
                "psa-id": "str",
                "psa-integration-type": "str",
                "group-id": "int",
                "primary": "bool",
            },
            sorts=_COMMON_SORT
            | {
                "name",
                "organization-status-name",
                "organization-type-name",
                "short-name",
                "my-glue-account-id",
            },
            includes=frozenset({"attachments"}),
            defaults={
                "description": None,
                "short-name": None,
                "quick-notes": None,
                "alert": None,
                "primary": False,
                "organization-type-id": None,
                "organization-status-id": None,
                "my-glue-account-id": None,
            },
        ),
        _type_spec(
            "organization_types", "organization-types", "OrganizationType", "Organization Type"
        ),
        _type_spec(
            "organization_statuses",
            "organization-statuses",
            "OrganizationStatus",
            "Organization Status",
        ),
        _type_spec(
            "configuration_types", "configuration-types", "ConfigurationType", "Configuration Type"
        ),
        _type_spec(
            "configuration_statuses",
            "configuration-statuses",
            "ConfigurationStatus",
            "Configuration Status",
        ),
        _type_spec("contact_types", "contact-types", "ContactType", "Contact Type"),
        Spec(
            "configurations",
            "configurations",
            "Configuration",
            "Configuration",
            writable=frozenset(
                {
                    "organization-id",
                    "configuration-type-id",
                    "configuration-status-id",
                    "manufacturer-id",
                    "model-id",
                    "operating-system-id",
                    "operating-system-notes",
                    "location-id",
                    "contact-id",
                    "name",
                    "hostname",
                    "primary-ip",
                    "mac-address",
                    "default-gateway",
                    "serial-number",
                    "asset-tag",
                    "position",
                    "installed-by",
                    "purchased-by",
                    "notes",
                    "operating-system-name",
                    "warranty-expires-at",
                    "installed-at",
                    "purchased-at",
                    "archived",
                    "restricted",
                }
            ),
            required=("name",),
            org_owned=True,
            references={
                "organization-id": _ORG_REF,
                "configuration-type-id": ("configuration_types", True, "configuration-type"),
                "configuration-status-id": (
                    "configuration_statuses",
                    False,
                    "configuration-status",
                ),
                "location-id": ("locations", False, "location"),
                "contact-id": ("contacts", False, "contact"),
            },
            filters={
                "id": "id",
                "name": "str",
                "organization-id": "int",
                "configuration-type-id": "int",
                "configuration-status-id": "int",
                "contact-id": "int",
                "serial-number": "str",
                "mac-address": "str",
                "asset-tag": "str",
                "archived": "bool",
                "psa-id": "str",
                "psa-integration-type": "str",
                "rmm-id": "str",
                "rmm-integration-type": "str",
                "created-at": "date",
                "updated-at": "date",
            },
            sorts=_COMMON_SORT | {"name"},
            includes=frozenset({"attachments", "related_items"}),
            defaults={
                "archived": False,
                "hostname": None,
                "serial-number": None,
                "primary-ip": None,
                "mac-address": None,
                "asset-tag": None,
                "configuration-status-id": None,
                "notes": None,
            },
        ),
        Spec(
            "contacts",
            "contacts",
            "Contact",
            "Contact",
            writable=frozenset(
                {
                    "organization-id",
                    "first-name",
                    "last-name",
                    "title",
                    "contact-type-id",
                    "location-id",
                    "important",
                    "notes",
                    "contact-emails",
                    "contact-phones",
                    "restricted",
                }
            ),
            required=("first-name",),
            org_owned=True,
            references={
                "organization-id": _ORG_REF,
                "contact-type-id": ("contact_types", False, "contact-type"),
                "location-id": ("locations", False, "location"),
            },
            filters={
                "id": "id",
                "first-name": "str",
                "last-name": "str",
                "title": "str",
                "contact-type-id": "int",
                "important": "bool",
                "primary-email": "email",
                "organization-id": "int",
                "psa-id": "str",
                "psa-integration-type": "str",
            },
            sorts=_COMMON_SORT | {"first-name", "last-name"},
            includes=frozenset({"attachments", "related_items", "location"}),
            defaults={
                "last-name": None,
                "title": None,
                "important": False,
                "contact-emails": [],
                "contact-phones": [],
            },
            name_attr="first-name",
        ),
        Spec(
            "locations",
            "locations",
            "Location",
            "Location",
            writable=frozenset(
                {
                    "organization-id",
                    "name",
                    "primary",
                    "address-1",
                    "address-2",
                    "city",
                    "postal-code",
                    "region-id",
                    "country-id",
                    "phone",
                    "fax",
                    "notes",
                    "restricted",
                }
            ),
            required=("name",),
            org_owned=True,
            references={"organization-id": _ORG_REF},
            filters={
                "id": "id",
                "name": "str",
                "city": "str",
                "region-id": "int",
                "country-id": "int",
                "organization-id": "int",
                "psa-id": "str",
                "psa-integration-type": "str",
            },
            sorts=_COMMON_SORT | {"name"},
            includes=frozenset({"attachments", "related_items"}),
            defaults={"primary": False, "city": None},
        ),
        Spec(
            "passwords",
            "passwords",
            "Password",
            "Password",
            writable=frozenset(
                {
                    "organization-id",
                    "name",
                    "username",
                    "password",
                    "url",
                    "notes",
                    "password-category-id",
                    "password-folder-id",
                    "resource-id",
                    "resource-type",
                    "restricted",
                    "archived",
                }
            ),
            required=("name",),
            org_owned=True,
            references={"organization-id": _ORG_REF},
            filters={
                "id": "id",
                "name": "str",
                "organization-id": "int",
                "password-category-id": "int",
                "url": "str",
                "archived": "bool",
            },
            sorts=_COMMON_SORT | {"name", "username", "url"},
            includes=frozenset({"attachments", "related_items"}),
            defaults={"username": None, "url": None, "notes": None, "archived": False},
        ),
        Spec(
            "flexible_asset_types",
            "flexible-asset-types",
            "FlexibleAssetType",
            "Flexible Asset Type",
            writable=frozenset({"name", "icon", "description", "enabled", "show-in-menu"}),
            required=("name",),
            filters={"id": "id", "name": "str", "icon": "str", "enabled": "bool"},
            sorts=_COMMON_SORT | {"name"},
            includes=frozenset({"flexible_asset_fields"}),
            defaults={"icon": None, "description": None, "enabled": True, "show-in-menu": False},
        ),
        Spec(
            "flexible_asset_fields",
            "flexible-asset-fields",
            "FlexibleAssetField",
            "Flexible Asset Field",
            writable=frozenset(
                {
                    "order",
                    "name",
                    "kind",
                    "hint",
                    "tag-type",
                    "required",
                    "show-in-list",
                    "use-for-title",
                    "expiration",
                    "default-value",
                    "decimals",
                }
            ),
            required=("name", "kind"),
            sorts=_COMMON_SORT | {"order", "name"},
            defaults={
                "required": False,
                "show-in-list": False,
                "use-for-title": False,
                "tag-type": None,
                "hint": None,
            },
        ),
        Spec(
            "flexible_assets",
            "flexible-assets",
            "FlexibleAsset",
            "Flexible Asset",
            writable=frozenset(
                {"organization-id", "flexible-asset-type-id", "traits", "archived", "restricted"}
            ),
            org_owned=True,
            references={
                "organization-id": _ORG_REF,
                "flexible-asset-type-id": ("flexible_asset_types", True, "flexible-asset-type"),
            },
            filters={"flexible-asset-type-id": "int", "name": "str", "organization-id": "int"},
            sorts=_COMMON_SORT | {"name"},
            includes=frozenset({"attachments", "related_items"}),
            defaults={"archived": False, "traits": {}},
        ),
        Spec(
            "documents",
            "documents",
            "Document",
            "Document",
            writable=frozenset(
                {
                    "name",
                    "organization-id",
                    "document-folder-id",
                    "restricted",
                    "public",
                    "archived",
                }
            ),
            required=("name",),
            org_owned=True,
            references={"organization-id": _ORG_REF},
            filters={"document-folder-id": "int"},
            sorts=_COMMON_SORT | {"name"},
            includes=frozenset({"attachments", "related_items", "sections"}),
            defaults={
                "document-folder-id": None,
                "restricted": False,
                "public": False,
                "archived": False,
                "published": False,
                "published-at": None,
            },
        ),
        Spec(
            "document_sections",
            "document-sections",
            "Document::Section",
            "Document Section",
            writable=frozenset({"resource-type", "content", "level", "sort", "duration"}),
            sorts=_COMMON_SORT | {"sort"},
        ),
        Spec("attachments", "attachments", "Attachment", "Attachment"),
        Spec("related_items", "related-items", "RelatedItem", "Related Item"),
        _readonly("checklists", "checklists", "Checklist", "Checklist"),
        _readonly(
            "checklist_templates", "checklist-templates", "ChecklistTemplate", "Checklist Template"
        ),
        _readonly("domains", "domains", "Domain", "Domain"),
        _readonly("ssl_certificates", "ssl-certificates", "SslCertificate", "SSL Certificate"),
        _readonly("tickets", "tickets", "Ticket", "Ticket"),
    )
}

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
