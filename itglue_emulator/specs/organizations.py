"""Organizations and the type and status tables their records point at."""

from __future__ import annotations

from .spec import COMMON_SORT, READ, Spec, type_spec

ORGANIZATION_SPECS: tuple[Spec, ...] = (
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
        sorts=COMMON_SORT
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
        routes=READ | {"create", "update", "bulk_update", "bulk_destroy"},
    ),
    type_spec("organization_types", "organization-types", "OrganizationType", "Organization Type"),
    type_spec(
        "organization_statuses",
        "organization-statuses",
        "OrganizationStatus",
        "Organization Status",
    ),
    type_spec(
        "configuration_types", "configuration-types", "ConfigurationType", "Configuration Type"
    ),
    type_spec(
        "configuration_statuses",
        "configuration-statuses",
        "ConfigurationStatus",
        "Configuration Status",
    ),
    type_spec("contact_types", "contact-types", "ContactType", "Contact Type"),
)
