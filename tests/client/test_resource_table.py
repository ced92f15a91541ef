"""Every resource of the client's table against the emulator, one parametrized test.

For each resource: list across pages, filter, get, create, update and delete where the
API has the route (the others must refuse before sending anything), each step with the
emulator's request count asserted. A new line in ``ResourceTable`` needs a case here
(``test_every_resource_has_a_case``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from core_client import ITGlueClient, UnsupportedActionError
from core_client.resources import Resources, ResourceTable, resource
from itglue_emulator import Emulator
from tests.client.conftest import ClientFactory, requests_seen

PAGE = 2  # a small page size, so three records take two pages
SEEDED = 3


class Seeded:
    """The ids the emulator's seed made, by collection (first = lowest id)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def first(self, collection: str) -> str:
        return str(min(int(r["id"]) for r in self.emu.records(collection)))


Attrs = Callable[[Seeded], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """How to exercise one resource: what to seed, create, change and filter on."""

    name: str  # the attribute of the client and the emulator's collection
    seed: Mapping[str, int] = field(default_factory=dict)  # default {name: SEEDED}
    parent: str | None = None  # the collection whose first record scopes the routes
    create: Attrs | None = None
    update: Mapping[str, Any] = field(default_factory=lambda: {"name": "Renamed"})
    # the filter that picks one record (None: the route takes no usable filter)
    filter: Callable[[Any], dict[str, Any]] | None = lambda r: {"name": r.attr("name")}
    base_filter: Attrs | None = None  # a filter every listing needs (flexible assets)
    setup: Callable[[ITGlueClient, Seeded], None] | None = None


def org(s: Seeded) -> str:
    return s.first("organizations")


def named(name: str) -> Attrs:
    return lambda s: {"name": name}


def in_org(**attrs: Any) -> Attrs:
    return lambda s: {"organization_id": org(s), **attrs}


def _sections(client: ITGlueClient, s: Seeded) -> None:
    scope = client.document_sections.within(s.first("documents"))
    for n in range(SEEDED):
        scope.create(resource_type="Document::Text", content=f"<p>{n}</p>")


CASES: tuple[Case, ...] = (
    Case("organizations", create=named("Acme"), update={"quick_notes": "VIP"}),
    Case("organization_types", create=named("Partner")),
    Case("organization_statuses", create=named("Prospect")),
    Case(
        "configurations",
        create=lambda s: {
            "organization_id": org(s),
            "name": "web-01",
            "configuration_type_id": s.first("configuration_types"),
            "serial_number": "SN1",
        },
        update={"hostname": "web-01.example"},
    ),
    Case("configuration_types", create=named("Router")),
    Case("configuration_statuses", create=named("Spare")),
    Case(
        "configuration_interfaces",
        parent="configurations",
        create=lambda s: {"name": "eth1", "ip_address": "10.0.0.2"},
        update={"ip_address": "10.0.0.3"},
        filter=None,  # listed only under the configuration: filters do not apply
    ),
    Case(
        "contacts",
        create=in_org(first_name="Ada", last_name="Lovelace"),
        update={"title": "CTO"},
        filter=lambda r: {"first_name": r.first_name},
    ),
    Case("contact_types", create=named("Vendor contact")),
    Case("locations", create=in_org(name="HQ", city="Oslo"), update={"city": "Bergen"}),
    Case(
        "passwords",
        create=in_org(name="Router admin", username="admin", password="s3cret-value"),
        update={"username": "root"},
    ),
    Case("password_categories", create=named("Network")),
    Case(
        "password_folders",
        parent="organizations",
        create=named("Infrastructure"),
        filter=None,
    ),
    Case(
        "flexible_asset_types",
        create=lambda s: {
            "name": "Firewall",
            "icon": "shield",
            "flexible_asset_fields": [
                {"order": 1, "name": "Name", "kind": "Text", "required": True},
                {"order": 2, "name": "Model", "kind": "Text"},
            ],
        },
        update={"description": "Perimeter devices"},
    ),
    Case(
        "flexible_asset_fields",
        seed={"flexible_assets": 1},  # its type comes with three fields
        parent="flexible_asset_types",
        create=lambda s: {"name": "Owner", "kind": "Text", "order": 9},
        update={"hint": "who to call"},
        filter=None,
    ),
    Case(
        "flexible_assets",
        create=lambda s: {
            "organization_id": org(s),
            "flexible_asset_type_id": s.first("flexible_asset_types"),
            "traits": {"name": "Corp LAN", "subnet": "10.0.0.0/24"},
        },
        update={"traits": {"name": "Corp LAN 2"}},
        filter=lambda r: {"name": r.name},
        base_filter=lambda s: {"flexible-asset-type-id": s.first("flexible_asset_types")},
    ),
    Case(
        "documents",
        parent="organizations",
        create=named("Runbook"),
        filter=None,
    ),
    Case(
        "document_sections",
        seed={"documents": 1},
        parent="documents",
        setup=_sections,
        create=lambda s: {"resource_type": "Document::Heading", "content": "Intro", "level": 2},
        update={"content": "<p>changed</p>"},
        filter=None,
    ),
    Case("checklists", update={"completed": True}),
    Case("checklist_templates"),
    Case("domains"),
    Case("expirations"),
    Case("ssl_certificates"),
    Case("tickets"),
    Case("manufacturers", create=named("Dell")),
    Case(
        "models",
        create=lambda s: {"name": "OptiPlex 7090", "manufacturer_id": s.first("manufacturers")},
    ),
    Case("platforms"),
    Case("operating_systems"),
    Case("countries"),
    Case("regions"),
    Case("users", update={"first_name": "Grace"}),
    Case("groups"),
    Case("user_metrics", filter=None),
    Case("logs", filter=None),
    Case(
        "exports",
        seed={"exports": SEEDED, "organizations": 1},
        create=in_org(include_logs=True),
        filter=lambda r: {"id": r.id},
    ),
)
BY_NAME = {c.name: c for c in CASES}
TABLE = {
    name: value.spec for name, value in vars(ResourceTable).items() if isinstance(value, resource)
}


def test_every_resource_has_a_case() -> None:
    assert sorted(BY_NAME) == sorted(TABLE)


def _collection(case: Case) -> str:
    return "document_sections" if case.name == "document_sections" else TABLE[case.name].path


class Counter:
    """Requests the emulator saw since the last call."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.seen = requests_seen(emu)

    def __call__(self) -> int:
        now = requests_seen(self.emu)
        delta, self.seen = now - self.seen, now
        return delta


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_resource_routes(itglue_emulator: Emulator, make_client: ClientFactory, case: Case) -> None:
    emu = itglue_emulator
    spec = TABLE[case.name]
    emu.seed(dict(case.seed) or {case.name: SEEDED})
    seeded = Seeded(emu)
    client = make_client(emu, page_size=PAGE)
    scope: Resources[Any] = getattr(client, case.name)
    parent_id = seeded.first(case.parent) if case.parent else None
    if parent_id is not None:
        scope = scope.within(parent_id)
    if case.setup is not None:
        case.setup(client, seeded)
    actions = spec.actions
    count = Counter(emu)
    base = case.base_filter(seeded) if case.base_filter else None

    # list: every record, a page of PAGE per request
    listed = list(scope.list(filter=base))
    assert len(listed) == SEEDED, [r.id for r in listed]
    assert count() == math.ceil(SEEDED / PAGE)
    target = listed[-1]

    if case.filter is not None:
        chosen = list(scope.list(filter={**(base or {}), **case.filter(target)}))
        assert [r.id for r in chosen] == [target.id]
        assert count() == 1

    if "get" in actions:
        got = scope.get(target.id)
        assert got.id == target.id and type(got) is spec.model
        assert count() == 1
    else:
        with pytest.raises(UnsupportedActionError):
            scope.get(target.id)
        assert count() == 0

    if "create" in actions:
        assert case.create is not None, f"{case.name}: the API creates, the case must too"
        made = scope.create(**case.create(seeded))
        assert count() == 1
        assert made.id in {r["id"] for r in emu.records(_collection(case))}
        if parent_id is not None and spec.parent is not None:
            assert made.attr(spec.parent.key) == parent_id
    else:
        with pytest.raises(UnsupportedActionError):
            scope.create(name="refused")
        assert count() == 0

    if "update" in actions:
        changed = scope.update(target.id, **case.update)
        assert count() == 1
        for key, value in case.update.items():
            if key != "traits":
                assert changed.attr(key) == value
        assert changed.id == target.id
    else:
        with pytest.raises(UnsupportedActionError):
            scope.update(target.id, name="refused")
        assert count() == 0

    if "bulk_update" in actions:
        first = listed[0]
        updated = scope.bulk_update([{"id": first.id, **case.update}])
        assert [u.id for u in updated] == [first.id]
        assert count() == 1

    if actions & {"delete", "bulk_delete"}:
        scope.delete(target.id)  # the bulk route with one id where only that exists
        assert count() == 1
        assert target.id not in {r["id"] for r in emu.records(_collection(case))}
    else:
        with pytest.raises(UnsupportedActionError):
            scope.delete(target.id)
        assert count() == 0


def test_user_metrics_take_a_week_at_most(
    itglue_emulator: Emulator, make_client: ClientFactory
) -> None:
    """The documented 422 for a longer range or a wildcard start (docs/itglue-api.md, 2)."""
    from core_client import ValidationError

    itglue_emulator.seed({"user_metrics": 2})
    client = make_client(itglue_emulator)
    assert list(client.user_metrics.list(filter={"date": ["2026-11-01", "2026-11-08"]})) == []
    for bad in (["2026-11-01", "2026-11-09"], ["*", "2026-11-08"]):
        with pytest.raises(ValidationError, match="cannot be longer than a week"):
            list(client.user_metrics.list(filter={"date": bad}))
