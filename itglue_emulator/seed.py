"""Seed data: the ``demo`` set and bulk generation for POST /_emulator/seed.

Bulk generation writes straight into the store's tables (one timestamp, no per-record
validation) so 10,000 configurations take a few tens of milliseconds.
"""

from __future__ import annotations

import itertools
from typing import Any

from .specs import SPECS
from .store import Store, now_iso

GENERATABLE = (
    "organization_types",
    "organization_statuses",
    "configuration_types",
    "configuration_statuses",
    "contact_types",
    "organizations",
    "configurations",
    "contacts",
    "locations",
    "passwords",
    "flexible_asset_types",
    "flexible_assets",
    "documents",
    "checklists",
    "checklist_templates",
    "domains",
    "ssl_certificates",
    "tickets",
    "expirations",
    "password_folders",
    "password_categories",
    "manufacturers",
    "models",
    "platforms",
    "operating_systems",
    "countries",
    "regions",
    "configuration_interfaces",
    "users",
    "groups",
    "user_metrics",
    "logs",
    "exports",
)
_ORG_OWNED = (
    "configurations",
    "contacts",
    "locations",
    "passwords",
    "flexible_assets",
    "documents",
    "checklists",
    "checklist_templates",
    "domains",
    "ssl_certificates",
    "tickets",
    "expirations",
    "password_folders",
)


def _owner_ids(store: Store, collection: str) -> itertools.cycle[int] | None:
    """Ids to spread a child collection over (models over manufacturers, ...)."""
    parent = SPECS[collection].parent
    if parent is None or parent[0] == "organizations":
        return None
    if not store.tables[parent[0]]:
        generate(store, {parent[0]: 1})
    return itertools.cycle(sorted(store.tables[parent[0]]))


def _ensure(store: Store, collection: str, names: tuple[str, ...], stamp: str) -> list[int]:
    table = store.tables[collection]
    if not table:
        for name in names:
            store.insert(collection, {"name": name}, stamp)
    return sorted(table)


def _ensure_fa_type(store: Store, stamp: str) -> int:
    if store.tables["flexible_asset_types"]:
        return min(store.tables["flexible_asset_types"])
    fat = store.insert(
        "flexible_asset_types",
        {
            "name": "Network",
            "icon": "sitemap",
            "description": "LAN segments",
            "enabled": True,
            "show-in-menu": True,
        },
        stamp,
    )
    for order, (name, kind, required) in enumerate(
        (("Name", "Textbox", True), ("Subnet", "Textbox", False), ("Notes", "Textarea", False)),
        start=1,
    ):
        store.insert(
            "flexible_asset_fields",
            {
                "flexible-asset-type-id": fat["id"],
                "order": order,
                "name": name,
                "name-key": name.lower(),
                "kind": kind,
                "required": required,
                "show-in-list": True,
                "use-for-title": order == 1,
                "tag-type": None,
                "hint": None,
            },
            stamp,
        )
    return int(fat["id"])


def generate(store: Store, counts: dict[str, Any]) -> dict[str, int]:
    """Create ``counts[collection]`` records per collection; returns what was created."""
    for key, value in counts.items():
        if key not in GENERATABLE:
            raise ValueError(f"cannot seed {key!r}; seedable: {', '.join(GENERATABLE)}")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 200_000:
            raise ValueError(f"{key}: count must be an integer from 0 to 200000")
    stamp = now_iso()
    created: dict[str, int] = {}
    with store.lock:
        for collection in GENERATABLE:
            n = counts.get(collection, 0)
            if not n:
                continue
            if collection in _ORG_OWNED and not store.tables["organizations"]:
                generate(store, {"organizations": 1})
            orgs = sorted(store.tables["organizations"])
            org_cycle = itertools.cycle(orgs) if orgs else None
            extra: dict[str, Any] = {}
            if collection == "organizations":
                ot = _ensure(store, "organization_types", ("Customer", "Vendor"), stamp)
                os_ = _ensure(store, "organization_statuses", ("Active", "Inactive"), stamp)
            if collection == "configurations":
                ct = _ensure(store, "configuration_types", ("Workstation", "Server"), stamp)
                cs = _ensure(store, "configuration_statuses", ("Active",), stamp)
            if collection == "flexible_assets":
                fat_id = _ensure_fa_type(store, stamp)
            owners = _owner_ids(store, collection)
            table = store.tables[collection]
            base = len(table)
            for i in range(base + 1, base + n + 1):
                rid = store.new_id(collection)
                row: dict[str, Any] = {"id": rid, "created-at": stamp, "updated-at": stamp}
                if collection in _ORG_OWNED and org_cycle is not None:
                    row["organization-id"] = next(org_cycle)
                if owners is not None:
                    row[SPECS[collection].parent[1]] = next(owners)  # type: ignore[index]
                if collection == "organizations":
                    row.update(
                        {
                            "name": f"Organization {i:05d}",
                            "description": None,
                            "organization-type-id": ot[i % len(ot)],
                            "organization-status-id": os_[0],
                            "short-name": f"org{i}",
                            "quick-notes": None,
                            "alert": None,
                            "primary": False,
                            "my-glue-account-id": None,
                        }
                    )
                elif collection == "configurations":
                    row.update(
                        {
                            "name": f"host-{i:05d}",
                            "hostname": f"host-{i:05d}",
                            "configuration-type-id": ct[i % len(ct)],
                            "configuration-status-id": cs[0],
                            "serial-number": f"SN{i:08d}",
                            "primary-ip": None,
                            "mac-address": None,
                            "asset-tag": None,
                            "archived": False,
                            "notes": None,
                        }
                    )
                elif collection == "contacts":
                    row.update(
                        {
                            "first-name": f"First{i}",
                            "last-name": f"Last{i}",
                            "title": None,
                            "important": False,
                            "contact-emails": [
                                {
                                    "value": f"user{i}@example.test",
                                    "primary": True,
                                    "label-name": "Work",
                                }
                            ],
                            "contact-phones": [],
                        }
                    )
                elif collection == "flexible_assets":
                    row.update(
                        {
                            "flexible-asset-type-id": fat_id,
                            "name": f"Network {i}",
                            "traits": {"name": f"Network {i}"},
                            "archived": False,
                        }
                    )
                elif collection == "documents":
                    row.update(
                        {
                            "name": f"Document {i}",
                            "document-folder-id": None,
                            "restricted": False,
                            "public": False,
                            "archived": False,
                            "published": False,
                            "published-at": None,
                        }
                    )
                elif collection == "flexible_asset_types":
                    row.update(
                        {
                            "name": f"Asset Type {i}",
                            "icon": None,
                            "description": None,
                            "enabled": True,
                            "show-in-menu": False,
                        }
                    )
                else:
                    row["name"] = f"{collection.rstrip('s').replace('_', ' ').title()} {i}"
                row.update(extra)
                table[rid] = row
            created[collection] = n
    return created


def seed_demo(store: Store) -> None:
    """A handful of realistic records for ``--seed demo`` and the quick start."""
    stamp = now_iso()
    with store.lock:
        customer = store.insert("organization_types", {"name": "Customer"}, stamp)["id"]
        store.insert("organization_types", {"name": "Vendor"}, stamp)
        active = store.insert("organization_statuses", {"name": "Active"}, stamp)["id"]
        store.insert("organization_statuses", {"name": "Inactive"}, stamp)
        types = {
            n: store.insert("configuration_types", {"name": n}, stamp)["id"]
            for n in ("Workstation", "Server", "Firewall", "Printer")
        }
        cstatus = store.insert("configuration_statuses", {"name": "Active"}, stamp)["id"]
        store.insert("configuration_statuses", {"name": "Retired"}, stamp)
        store.insert("contact_types", {"name": "Employee"}, stamp)
        orgs = {}
        for name, short in (
            ("Acme Corp", "acme"),
            ("Globex", "globex"),
            ("Initech", "initech"),
            ("Umbrella Corporation", "umbrella"),
        ):
            orgs[name] = store.insert(
                "organizations",
                {
                    "name": name,
                    "description": f"{name} (demo)",
                    "organization-type-id": customer,
                    "organization-status-id": active,
                    "short-name": short,
                    "quick-notes": None,
                    "alert": None,
                    "primary": False,
                    "my-glue-account-id": None,
                },
                stamp,
            )["id"]
        machines = (
            ("Acme Corp", "ACME-DC01", "Server"),
            ("Acme Corp", "ACME-WS-014", "Workstation"),
            ("Acme Corp", "ACME-FW", "Firewall"),
            ("Globex", "GLX-FS01", "Server"),
            ("Globex", "GLX-PRN-2F", "Printer"),
            ("Initech", "INI-TPS-01", "Server"),
            ("Initech", "INI-WS-PETER", "Workstation"),
        )
        for n, (org, name, kind) in enumerate(machines, start=1):
            store.insert(
                "configurations",
                {
                    "organization-id": orgs[org],
                    "name": name,
                    "hostname": name.lower(),
                    "configuration-type-id": types[kind],
                    "configuration-status-id": cstatus,
                    "serial-number": f"DEMO{n:04d}",
                    "primary-ip": f"10.0.{n}.10",
                    "mac-address": None,
                    "asset-tag": None,
                    "archived": False,
                    "notes": None,
                },
                stamp,
            )
        people = (
            ("Acme Corp", "Wile", "Coyote", "IT Manager"),
            ("Globex", "Hank", "Scorpio", "CEO"),
            ("Initech", "Peter", "Gibbons", "Engineer"),
            ("Initech", "Bill", "Lumbergh", "Vice President"),
        )
        for org, first, last, title in people:
            store.insert(
                "contacts",
                {
                    "organization-id": orgs[org],
                    "first-name": first,
                    "last-name": last,
                    "title": title,
                    "important": False,
                    "contact-emails": [
                        {
                            "value": f"{first.lower()}@{org.split()[0].lower()}.test",
                            "primary": True,
                            "label-name": "Work",
                        }
                    ],
                    "contact-phones": [],
                },
                stamp,
            )
        for org in orgs.values():
            store.insert(
                "locations",
                {
                    "organization-id": org,
                    "name": "Head Office",
                    "primary": True,
                    "city": "Springfield",
                },
                stamp,
            )
        _ensure_fa_type(store, stamp)
