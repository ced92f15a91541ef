"""An organization's records that the API mostly lists and shows (seeded in the emulator):
checklists, checklist templates, domains, expirations, SSL certificates, tickets and
password folders (docs/itglue-api.md, 5. Resources)."""

from __future__ import annotations

from .spec import READ, WRITE, Spec, org_listed

READ_ONLY_SPECS: tuple[Spec, ...] = (
    # no POST is documented; PATCH one or many, DELETE many
    org_listed(
        "checklists",
        "checklists",
        "Checklist",
        "Checklist",
        routes=READ | {"update", "bulk_update", "bulk_destroy"},
        nested=READ | {"update", "bulk_update", "bulk_destroy"},
        writable=frozenset({"name", "description", "completed", "archived"}),
        filters={"completed": "bool"},
    ),
    org_listed(
        "checklist_templates", "checklist-templates", "ChecklistTemplate", "Checklist Template"
    ),
    # domains: listed only (no show route is documented)
    org_listed(
        "domains",
        "domains",
        "Domain",
        "Domain",
        routes=frozenset({"index"}),
        nested=frozenset({"index"}),
    ),
    org_listed(
        "expirations",
        "expirations",
        "Expiration",
        "Expiration",
        filters={
            "resource-id": "int",
            "resource-name": "str",
            "resource-type-name": "str",
            "description": "str",
            "expiration-date": "date",
        },
    ),
    org_listed("ssl_certificates", "ssl-certificates", "SslCertificate", "SSL Certificate"),
    org_listed("tickets", "tickets", "Ticket", "Ticket"),
    # reached only under their organization
    org_listed(
        "password_folders",
        "password-folders",
        "PasswordFolder",
        "Password Folder",
        routes=frozenset(),
        nested=WRITE,
        writable=frozenset({"name", "parent-id", "restricted"}),
        required=("name",),
        filters={"parent-id": "int"},
    ),
)
