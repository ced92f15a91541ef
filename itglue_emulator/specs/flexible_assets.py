"""Flexible asset types, their fields, and the flexible assets built from them."""

from __future__ import annotations

from .spec import COMMON_SORT, ORG_REF, Spec

FLEXIBLE_ASSET_SPECS: tuple[Spec, ...] = (
    Spec(
        "flexible_asset_types",
        "flexible-asset-types",
        "FlexibleAssetType",
        "Flexible Asset Type",
        writable=frozenset({"name", "icon", "description", "enabled", "show-in-menu"}),
        required=("name",),
        filters={"id": "id", "name": "str", "icon": "str", "enabled": "bool"},
        sorts=COMMON_SORT | {"name"},
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
        sorts=COMMON_SORT | {"order", "name"},
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
            "organization-id": ORG_REF,
            "flexible-asset-type-id": ("flexible_asset_types", True, "flexible-asset-type"),
        },
        filters={"flexible-asset-type-id": "int", "name": "str", "organization-id": "int"},
        sorts=COMMON_SORT | {"name"},
        includes=frozenset({"attachments", "related_items"}),
        defaults={"archived": False, "traits": {}},
    ),
)
