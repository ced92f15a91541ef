"""Names where people think in names: resolved to ids through the metadata cache, one
refresh on a miss, a clear error with the closest names when nothing fits."""

from __future__ import annotations

from typing import Any

import pytest

from core_client import AmbiguousNameError, ITGlueClient, UnknownNameError
from itglue_emulator import Emulator
from tests.client.conftest import ClientFactory, requests_seen


def _catalog(emu: Emulator) -> None:
    """What an IT Glue account has in its lookup tables (fixed ids keep it readable)."""
    emu.add_records(
        {
            "organizations": [{"id": 10, "name": "Acme Corp"}, {"id": 11, "name": "Globex"}],
            "configuration_types": [{"id": 20, "name": "Server"}, {"id": 21, "name": "Servers"}],
            "configuration_statuses": [{"id": 30, "name": "Active"}],
            "manufacturers": [{"id": 40, "name": "Dell"}, {"id": 41, "name": "HP"}],
            # the same model name under two manufacturers: the manufacturer decides
            "models": [
                {"id": 50, "name": "Pro 400", "manufacturer-id": 40},
                {"id": 51, "name": "Pro 400", "manufacturer-id": 41},
            ],
            "platforms": [{"id": 60, "name": "Windows"}, {"id": 61, "name": "Linux"}],
            "operating_systems": [
                {"id": 70, "name": "Server 2022", "platform-id": 60},
                {"id": 71, "name": "Ubuntu 24.04", "platform-id": 61},
            ],
            "contacts": [
                {"id": 80, "first-name": "Ada", "last-name": "Lovelace", "organization-id": 10},
                {"id": 81, "first-name": "Ada", "last-name": "Lovelace", "organization-id": 11},
            ],
            "locations": [{"id": 90, "name": "Head Office", "organization-id": 10}],
        }
    )


def test_every_name_argument_of_a_configuration(
    itglue_emulator: Emulator, make_cached_client: ClientFactory
) -> None:
    emu = itglue_emulator
    _catalog(emu)
    client = make_cached_client(emu)
    config = client.create_configuration(
        "Acme Corp",
        "dc01",
        configuration_type="server",  # case does not matter
        configuration_status="Active",
        manufacturer="HP",
        model="Pro 400",  # HP's, not Dell's
        platform="Linux",
        operating_system="Ubuntu 24.04",
        location="Head Office",
        contact="Ada Lovelace",  # Acme's Ada, not Globex's
    )
    stored = next(r for r in emu.records("configurations") if r["id"] == config.id)
    assert stored["organization-id"] == 10
    assert stored["configuration-type-id"] == 20
    assert stored["configuration-status-id"] == 30
    assert stored["manufacturer-id"] == 41
    assert stored["model-id"] == 51
    assert stored["operating-system-id"] == 71
    assert stored["location-id"] == 90
    assert stored["contact-id"] == 80
    assert "platform-id" not in stored  # used to find the operating system only
    # one listing per kind (organizations, types, statuses, manufacturers, models,
    # platforms, operating systems, locations, contacts) and the POST
    assert requests_seen(emu, "GET") == 9
    assert requests_seen(emu, "POST", "/configurations") == 1

    # the second time every name is a cache hit: the POST alone
    before = requests_seen(emu)
    client.create_configuration("Acme Corp", "dc02", configuration_type="Server")
    assert requests_seen(emu) - before == 1


def test_a_missing_name_costs_one_refresh_and_lists_close_matches(
    itglue_emulator: Emulator, make_cached_client: ClientFactory
) -> None:
    emu = itglue_emulator
    _catalog(emu)
    client = make_cached_client(emu)
    with pytest.raises(UnknownNameError) as err:
        client.create_configuration("Acme Corp", "web", configuration_type="Sever")
    assert err.value.close_matches[:2] == ["Server", "Servers"]
    assert "no configuration type is called 'Sever'" in str(err.value)
    assert "did you mean 'Server', 'Servers'" in str(err.value)
    assert requests_seen(emu, "GET", "/configuration_types") == 1  # one refresh, no more
    assert requests_seen(emu, "POST") == 0  # nothing was written

    # a type created after the cache was filled is found by the refresh on the miss
    emu.add_records({"configuration_types": [{"id": 22, "name": "Firewall"}]})
    config = client.create_configuration("Acme Corp", "fw", configuration_type="Firewall")
    assert config.configuration_type_id == "22"
    assert requests_seen(emu, "GET", "/configuration_types") == 2

    with pytest.raises(UnknownNameError, match="no similar name exists"):
        client.create_configuration("Acme Corp", "x", configuration_type="Quantum computer")


def test_ambiguous_names_ask_for_the_id(
    itglue_emulator: Emulator, make_cached_client: ClientFactory
) -> None:
    emu = itglue_emulator
    names = [{"id": 12, "name": "Acme"}, {"id": 13, "name": "ACME"}, {"id": 14, "name": "Acme"}]
    emu.add_records({"organizations": names})
    client = make_cached_client(emu)
    # the exact spelling decides between names that differ in case only
    assert client.names.id_for("organizations", "ACME") == "13"
    with pytest.raises(AmbiguousNameError) as err:
        client.names.id_for("organizations", "Acme")
    assert err.value.ids == ["12", "14"]
    assert "2 organizations are called 'Acme' (ids 12, 14): pass the id" in str(err.value)
    with pytest.raises(AmbiguousNameError) as err:
        client.names.id_for("organizations", "acme")
    assert err.value.ids == ["12", "13", "14"]
    assert requests_seen(emu) == 1  # the one listing that filled the cache


def test_names_in_filters_scopes_and_ids_pass_through(
    itglue_emulator: Emulator, make_cached_client: ClientFactory
) -> None:
    emu = itglue_emulator
    _catalog(emu)
    client = make_cached_client(emu)
    a = client.create_configuration(10, "a", configuration_type_id=20)
    client.create_configuration("11", "b", configuration_type_id="21")
    assert requests_seen(emu, "GET") == 0  # ids are never looked up
    listed = list(client.configurations.list(filter={"configuration_type": "Server"}))
    assert [c.id for c in listed] == [a.id]
    docs = client.documents.within("Globex")
    doc = docs.create(name="Runbook")
    assert doc.organization_id == "11"
    assert [d.id for d in docs.list()] == [doc.id]
    os_ = list(client.operating_systems.list(filter={"platform": "Windows"}))
    assert [o.name for o in os_] == ["Server 2022"]
    with pytest.raises(ValueError, match="configuration_type or configuration_type_id"):
        client.configurations.create(
            organization_id=10, name="c", configuration_type="Server", configuration_type_id=20
        )


def test_a_client_without_a_cache_resolves_by_listing(itglue_emulator: Emulator) -> None:
    emu = itglue_emulator
    _catalog(emu)
    with ITGlueClient(emu.base_url, emu.api_key, ca_bundle=emu.ca_file) as client:
        config = client.create_configuration("Globex", "web", configuration_type="Server")
        assert config.organization_id == "11" and config.configuration_type_id == "20"
        with pytest.raises(UnknownNameError) as err:
            client.names.id_for("manufacturers", "Del")
        assert err.value.close_matches == ["Dell"]


def test_the_cache_keeps_what_it_resolved(
    itglue_emulator: Emulator, make_cached_client: ClientFactory
) -> None:
    emu = itglue_emulator
    _catalog(emu)
    client = make_cached_client(emu)
    client.names.id_for("models", "Pro 400", "manufacturer_id", "40")
    found: list[Any] = client.cache.find_by_name("models", "pro 400")
    assert sorted(m.id for m in found) == ["50", "51"]
    assert [m.manufacturer_id for m in client.cache.find_by_name("models", "Pro 400", 41)] == ["41"]
    assert client.cache.get_statistics()["model_count"] == 2
