"""Resources the emulator lists and shows but never writes (seeded only)."""

from __future__ import annotations

from .spec import Spec, read_only

READ_ONLY_SPECS: tuple[Spec, ...] = (
    read_only("checklists", "checklists", "Checklist", "Checklist"),
    read_only(
        "checklist_templates", "checklist-templates", "ChecklistTemplate", "Checklist Template"
    ),
    read_only("domains", "domains", "Domain", "Domain"),
    read_only("ssl_certificates", "ssl-certificates", "SslCertificate", "SSL Certificate"),
    read_only("tickets", "tickets", "Ticket", "Ticket"),
)
