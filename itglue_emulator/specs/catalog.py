"""The account's catalog: manufacturers and their models, platforms and operating
systems, countries and their regions, password categories (docs/itglue-api.md, 5)."""

from __future__ import annotations

from .spec import COMMON_SORT, READ, WRITE, Spec, listed, type_spec

CATALOG_SPECS: tuple[Spec, ...] = (
    type_spec("manufacturers", "manufacturers", "Manufacturer", "Manufacturer"),
    Spec(
        "models",
        "models",
        "Model",
        "Model",
        writable=frozenset({"name", "manufacturer-id"}),
        required=("name",),
        references={"manufacturer-id": ("manufacturers", True, "manufacturer")},
        filters={"id": "id", "name": "str", "manufacturer-id": "int"},
        sorts=COMMON_SORT | {"name", "manufacturer-id"},
        routes=WRITE | {"bulk_update"},
        nested=WRITE,
        owner=("manufacturers", "manufacturer-id"),
    ),
    listed("platforms", "platforms", "Platform", "Platform"),
    listed(
        "operating_systems",
        "operating-systems",
        "OperatingSystem",
        "Operating System",
        filters={"platform-id": "int"},
        references={"platform-id": ("platforms", False, "platform")},
    ),
    listed("countries", "countries", "Country", "Country", filters={"iso": "str"}),
    listed(
        "regions",
        "regions",
        "Region",
        "Region",
        filters={"iso": "str", "country-id": "int"},
        references={"country-id": ("countries", False, "country")},
        nested=READ,
        owner=("countries", "country-id"),
    ),
    type_spec(
        "password_categories", "password-categories", "PasswordCategory", "Password Category"
    ),
)
