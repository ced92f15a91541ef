"""The route transform and the built-in router, against the emulator (demo seed)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from pipeline import (
    DocumentRecord,
    EngineContext,
    Rejected,
    Route,
    Target,
    TransientError,
    hookimpl,
)
from pipeline.plugins import get_plugin_manager
from pipeline.testing import make_transform
from plugins.routing import RouteTransform, RoutingOptions, closest


def route_transform(ctx: EngineContext) -> RouteTransform:
    """The route transform as the engine builds it for ``ctx``'s settings ([routing])."""
    t = make_transform("route", ctx)
    assert isinstance(t, RouteTransform)
    return t


def rec(name: str = "doc", **kw: Any) -> DocumentRecord:
    kw.setdefault("source", "scans")
    kw.setdefault("source_ref", name)
    return DocumentRecord(name=name, **kw)


def org_id(emu: Any, name: str) -> str:
    orgs = emu.state()["records"]["organizations"]
    return next(o["id"] for o in orgs if o["name"] == name)


def org_list_requests(emu: Any) -> int:
    return sum(
        r["count"]
        for r in emu.state()["requests"]
        if r["method"] == "GET" and r["route"].rstrip("/") == "/organizations"
    )


def test_fixed_organization_is_resolved_case_insensitively(contexts, demo_emulator) -> None:
    t = route_transform(contexts())
    out = t.apply(rec(organization="  acme CORP "))
    assert out.organization == "Acme Corp"
    assert out.organization_id == org_id(demo_emulator, "Acme Corp")
    assert out.target == Target(kind="document", publish=False)


def test_names_come_from_the_cache_not_one_call_per_record(contexts, demo_emulator) -> None:
    t = route_transform(contexts())
    for i in range(100):
        t.apply(rec(f"r{i}", organization=("Globex", "Initech")[i % 2]))
    assert org_list_requests(demo_emulator) == 1  # the first (stale cache) refresh only


def test_rules_override_the_source_and_use_regex_groups(contexts, demo_emulator) -> None:
    routing = {
        "publish": True,
        "rules": [
            {
                "source": "mail*",
                "match": {"metadata.from": r"@globex\.test>?$"},
                "organization": "Globex",
            },
            {"match": {"name": r"^\[(?P<org>[^\]]+)\]"}, "organization": "{org}", "publish": False},
            {
                "match": {"file_name": r"\.cfg$"},
                "organization": "Acme Corp",
                "target": {
                    "kind": "attachment",
                    "resource_type": "configurations",
                    "resource_name": "acme-dc01",
                },
            },
        ],
    }
    t = route_transform(contexts(routing))
    mail = t.apply(
        rec(source="mailbox", organization="Initech", metadata={"from": "Hank <hank@globex.test>"})
    )
    assert mail.organization == "Globex"
    assert mail.target is not None and mail.target.publish is True  # [routing] publish
    assert mail.metadata["routing"] == {
        "requested_organization": "Initech",
        "reason": r"rule 1: source='mail*', metadata.from~'@globex\.test>?$'",
    }
    # the first rule is limited to mail* sources: the file keeps its organization
    same = t.apply(
        rec(source="scans", organization="Initech", metadata={"from": "hank@globex.test"})
    )
    assert same.organization == "Initech"
    tagged = t.apply(rec("[umbrella corporation] lab results"))
    assert tagged.organization == "Umbrella Corporation"
    assert tagged.target is not None and tagged.target.publish is False
    from pipeline import Blob

    blob = Blob(file_name="running.cfg", path=Path("/x"), size=1, sha256="0" * 64)
    cfg = t.apply(rec(files=[blob]))
    configs = demo_emulator.state()["records"]["configurations"]
    dc01 = next(c for c in configs if c["name"] == "ACME-DC01")
    assert cfg.target == Target(
        kind="attachment",
        resource_type="configurations",
        resource_id=dc01["id"],
        resource_name="acme-dc01",
    )


def test_attachment_target_on_a_contact_by_email(contexts, demo_emulator) -> None:
    routing = {
        "target": {
            "kind": "attachment",
            "resource_type": "contacts",
            "resource_name": "peter@initech.test",
        }
    }
    out = route_transform(contexts(routing)).apply(rec(organization="Initech"))
    contacts = demo_emulator.state()["records"]["contacts"]
    peter = next(c for c in contacts if c["first-name"] == "Peter")
    assert out.target is not None and out.target.resource_id == peter["id"]


def test_unknown_resource_name_is_rejected_with_close_names(contexts) -> None:
    routing = {
        "target": {
            "kind": "attachment",
            "resource_type": "configurations",
            "resource_name": "ACME-DC1",
        }
    }
    with pytest.raises(Rejected) as e:
        route_transform(contexts(routing)).apply(rec(organization="Acme Corp"))
    assert "no configuration named 'ACME-DC1'" in e.value.reason
    assert "ACME-DC01" in e.value.reason


def test_unknown_organization_is_rejected_with_closest_matches(contexts) -> None:
    t = route_transform(contexts())
    with pytest.raises(Rejected) as e:
        t.apply(rec(organization="Acme Crop"))
    reason = e.value.reason
    assert reason.startswith("unknown organization 'Acme Crop' (not in IT Glue; known: Acme Corp")
    assert "set [routing] fallback_organization or fix the source's organization" in reason


def test_fallback_organization(contexts, demo_emulator) -> None:
    t = route_transform(contexts({"fallback_organization": "Initech"}))
    out = t.apply(rec(organization="Nobody Ltd"))
    assert out.organization == "Initech"
    assert out.organization_id == org_id(demo_emulator, "Initech")
    out = t.apply(rec())  # no organization at all
    assert out.organization == "Initech"


def test_unknown_fallback_is_named(contexts) -> None:
    t = route_transform(contexts({"fallback_organization": "Gone Inc"}))
    with pytest.raises(Rejected, match="fallback_organization 'Gone Inc' is not in IT Glue"):
        t.apply(rec(organization="Nobody Ltd"))


def test_no_organization_and_no_fallback(contexts) -> None:
    with pytest.raises(Rejected, match="no organization for this record: source 'scans'"):
        route_transform(contexts()).apply(rec())


def test_misses_refresh_at_most_once_per_interval_across_workers(contexts, demo_emulator):
    t = route_transform(contexts({"refresh_interval": 3600}))
    errors: list[str] = []

    def work(k: int) -> None:
        for i in range(25):
            try:
                t.apply(rec(f"w{k}-{i}", organization=f"Unknown {k}-{i}"))
            except Rejected as e:
                errors.append(e.reason)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(errors) == 200
    assert org_list_requests(demo_emulator) == 1
    # someone else creates an organization in IT Glue (not through this client, which
    # would write it through to the cache): found after the interval, with one listing
    t.router.options = t.router.options.model_copy(update={"refresh_interval": 0.0})
    demo_emulator.add_records({"organizations": [{"id": 9001, "name": "Hooli"}]})
    assert t.apply(rec(organization="hooli")).organization == "Hooli"
    assert org_list_requests(demo_emulator) == 2


def test_stale_cache_is_refreshed(contexts, demo_emulator) -> None:
    t = route_transform(contexts({"cache_max_age": 0.001}))
    t.apply(rec(organization="Globex"))
    import time

    time.sleep(0.01)  # deliberate: the cache (max age 1 ms) goes stale
    t.apply(rec(organization="Globex"))  # stale, but within refresh_interval: no listing
    assert org_list_requests(demo_emulator) == 1
    t.router.options = t.router.options.model_copy(update={"refresh_interval": 0.0})
    time.sleep(0.01)  # deliberate: stale again
    t.apply(rec(organization="Globex"))
    assert org_list_requests(demo_emulator) == 2


def test_transient_failure_while_refreshing(contexts, demo_emulator) -> None:
    demo_emulator.set_faults(
        errors=[{"rate": 1.0, "status": 503, "methods": ["GET"], "path_prefix": "/organizations"}]
    )
    t = route_transform(contexts())
    with pytest.raises(TransientError, match="could not list organizations"):
        t.apply(rec(organization="Globex"))
    # within the interval the failure is repeated without a request storm
    before = demo_emulator.state()["request_total"]
    with pytest.raises(TransientError):
        t.apply(rec(organization="Globex"))
    assert demo_emulator.state()["request_total"] == before


def test_stale_cache_still_serves_known_names_when_refresh_fails(contexts, demo_emulator):
    t = route_transform(contexts({"cache_max_age": 0.001, "refresh_interval": 0.0}))
    assert t.apply(rec(organization="Globex")).organization == "Globex"
    demo_emulator.set_faults(
        errors=[{"rate": 1.0, "status": 503, "methods": ["GET"], "path_prefix": "/organizations"}]
    )
    import time

    time.sleep(0.01)  # deliberate: the cache (max age 1 ms) goes stale
    assert t.apply(rec(organization="Globex")).organization == "Globex"


class _PluginRouter:
    @hookimpl
    def ingest_route(self, record: DocumentRecord, context: EngineContext) -> Route | None:
        if record.name.startswith("vip"):
            return Route(organization_id="999", organization_name="VIP")
        return None


def test_a_plugin_router_answers_before_the_built_in(contexts) -> None:
    pm = get_plugin_manager(load_entrypoints=False, extra=[_PluginRouter()])
    t = route_transform(contexts(pm=pm))
    vip = t.apply(rec("vip doc", organization="Globex"))
    assert (vip.organization, vip.organization_id) == ("VIP", "999")
    assert t.apply(rec("other", organization="Globex")).organization == "Globex"


def test_without_any_router_the_record_is_rejected(contexts) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    t = route_transform(contexts(pm=pm))
    pm.unregister(t.router)  # not even the transform's own router is left
    with pytest.raises(Rejected, match="no router decided"):
        t.apply(rec(organization="Globex"))


def test_the_router_is_registered_per_engine_and_answers_for_its_own_only(contexts) -> None:
    """Two engines on one plugin manager: each record is routed by its engine's router
    (with that engine's [routing] table), and closing an engine unregisters its router."""
    pm = get_plugin_manager(load_entrypoints=False)
    first = route_transform(contexts({"fallback_organization": "Globex"}, pm=pm))
    second = route_transform(contexts({"fallback_organization": "Initech"}, pm=pm))
    assert {first.router, second.router} <= set(pm.get_plugins())
    assert first.apply(rec()).organization == "Globex"
    assert second.apply(rec()).organization == "Initech"
    assert first.router.ingest_route(rec(), second.context) is None
    first.context._close()
    assert first.router not in pm.get_plugins() and second.router in pm.get_plugins()


def test_the_hook_decides_whenever_another_router_may_answer(contexts) -> None:
    """The built-in router answers directly only when the hook would give its answer:
    not once a plugin's router, or another built-in one of the same engine, is there."""
    pm = get_plugin_manager(load_entrypoints=False)
    ctx = contexts({"fallback_organization": "Globex"}, pm=pm)
    first = route_transform(ctx)
    second = RouteTransform("route", {"fallback_organization": "Initech"}, ctx)
    # both trylast: the one registered first is asked first, for either transform
    assert second.apply(rec()).organization == "Globex"
    pm.unregister(first.router)
    assert second.apply(rec()).organization == "Initech"
    pm.register(first.router)  # now the later one
    assert first.apply(rec()).organization == "Initech"
    pm.unregister(second.router)
    assert first.apply(rec()).organization == "Globex"
    pm.register(_PluginRouter())
    assert first.apply(rec("vip doc")).organization == "VIP"


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="needs resource_type"):
        RoutingOptions.model_validate({"target": {"kind": "attachment", "resource_id": "1"}})
    with pytest.raises(ValueError, match="only be found by resource_id"):
        RoutingOptions.model_validate(
            {"target": {"kind": "attachment", "resource_type": "passwords", "resource_name": "x"}}
        )
    with pytest.raises(ValueError, match="invalid regular expression"):
        RoutingOptions.model_validate({"rules": [{"match": {"name": "("}}]})
    with pytest.raises(ValueError, match="cannot take attachments"):
        RoutingOptions.model_validate(
            {"target": {"kind": "attachment", "resource_type": "organizations", "resource_id": "1"}}
        )


def test_closest() -> None:
    assert closest("acme crop", ["Globex", "Acme Corp", "Initech"]) == ["Acme Corp"]
    assert closest("zzz", ["b", "a", "c", "d"]) == ["a", "b", "c"]


def test_a_refused_key_while_listing_waits_and_retries(contexts, monkeypatch) -> None:
    """Client errors are mapped by their type: 401 is an operator problem (retry later,
    loudly), not the record's."""
    from pipeline.testing import API_KEY_ENV

    monkeypatch.setenv(API_KEY_ENV, "not-the-key")
    with pytest.raises(TransientError, match="refused the API key") as e:
        route_transform(contexts()).apply(rec(organization="Globex"))
    assert e.value.retry_after == 300.0


def test_an_unusable_client_fails_the_record_saying_why(contexts, monkeypatch) -> None:
    from pipeline import PermanentError
    from pipeline.testing import API_KEY_ENV

    monkeypatch.delenv(API_KEY_ENV)  # and the (memory) keyring has no key either
    with pytest.raises(PermanentError, match="IT Glue client not usable"):
        route_transform(contexts()).apply(rec(organization="Globex"))
