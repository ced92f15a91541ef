"""Plain resources: CRUD, nested routes, bulk update/destroy and the 422 variants."""

from __future__ import annotations

from typing import Any

import pytest

from itglue_emulator import Emulator
from tests.emulator.emulator_helpers import Api, error_entries


@pytest.mark.parametrize(
    "collection",
    [
        "organization_types",
        "organization_statuses",
        "configuration_types",
        "configuration_statuses",
        "contact_types",
    ],
)
def test_lookup_types_create_show_update_list(api: Api, collection: str) -> None:
    item = api.create(f"/{collection}", collection, name="First")
    r = api.patch(
        f"/{collection}/{item['id']}",
        {"data": {"type": collection, "attributes": {"name": "Renamed"}}},
    )
    assert r.status_code == 200
    assert api.get(f"/{collection}/{item['id']}").json()["data"]["attributes"]["name"] == "Renamed"
    r = api.get(f"/{collection}", params={"filter[name]": "renamed"})
    assert [d["id"] for d in r.json()["data"]] == [item["id"]]
    assert (
        api.delete(
            f"/{collection}", {"data": [{"type": collection, "attributes": {"id": item["id"]}}]}
        ).status_code
        == 404
    )  # no DELETE route for lookup types


def test_organization_crud_and_derived_names(api: Api) -> None:
    ot = api.create("/organization_types", "organization_types", name="Customer")
    org = api.org("Acme", organization_type_id=ot["id"], short_name="acme")
    assert org["attributes"]["organization-type-name"] == "Customer"
    r = api.patch(
        f"/organizations/{org['id']}",
        {"data": {"type": "organizations", "attributes": {"quick_notes": "hi"}}},
    )
    assert r.status_code == 200
    attrs = r.json()["data"]["attributes"]
    assert attrs["quick-notes"] == "hi" and attrs["name"] == "Acme"
    r = api.post(
        "/organizations",
        {"data": {"type": "organizations", "attributes": {"name": "X", "organization_type_id": 1}}},
    )
    assert r.status_code == 422
    assert error_entries(r)[0]["detail"] == "must exist"


def test_missing_name_is_422_with_detail_list(api: Api) -> None:
    r = api.post("/organizations", {"data": {"type": "organizations", "attributes": {}}})
    assert r.status_code == 422
    (entry,) = error_entries(r)
    assert entry == {
        "source": {"pointer": "/data/attributes/name"},
        "detail": ["can't be blank"],
        "title": "Unprocessable Entity",
        "status": 422,
    }
    org = api.org()
    r = api.patch(
        f"/organizations/{org['id']}",
        {"data": {"type": "organizations", "attributes": {"name": "  "}}},
    )
    assert r.status_code == 422


def test_configuration_422_variants(api: Api) -> None:
    org = api.org()
    ct = api.config_type()
    r = api.post(
        "/configurations",
        {
            "data": {
                "type": "configurations",
                "attributes": {
                    "name": "x",
                    "organization_id": 424242,
                    "configuration_type_id": ct["id"],
                },
            }
        },
    )
    assert r.status_code == 422
    (entry,) = error_entries(r)
    assert entry == {
        "status": 422,
        "title": "Valid organization_id is required",
        "source": {"pointer": "data/attributes/organization_id"},
    }
    r = api.post(
        "/configurations",
        {
            "data": {
                "type": "configurations",
                "attributes": {"name": "x", "organization_id": org["id"]},
            }
        },
    )
    assert r.status_code == 422
    (entry,) = error_entries(r)
    assert entry["source"]["pointer"] == "/data/attributes/configuration-type"
    assert entry["detail"] == "must exist"
    r = api.post("/configurations", {"data": [{"type": "configurations", "attributes": {}}]})
    assert r.status_code == 422
    (entry,) = error_entries(r)
    assert entry["status"] == "unprocessable_entity"
    assert entry["source"]["pointer"] == "data"
    assert "bulk action not allowed" in entry["title"]


@pytest.mark.parametrize(
    ("collection", "attrs"),
    [
        ("configurations", {"name": "srv"}),
        ("contacts", {"first_name": "Ann"}),
        ("locations", {"name": "HQ"}),
        ("passwords", {"name": "root", "password": "pw"}),
    ],
)
def test_org_owned_resources_top_level_and_nested(
    api: Api, collection: str, attrs: dict[str, Any]
) -> None:
    a, b = api.org("A"), api.org("B")
    if collection == "configurations":
        attrs = {**attrs, "configuration_type_id": api.config_type()["id"]}
    nested = f"/organizations/{a['id']}/relationships/{collection}"
    item = api.create(nested, collection, **attrs)
    assert item["attributes"]["organization-id"] == int(a["id"])
    assert item["attributes"]["organization-name"] == "A"
    top = api.create(f"/{collection}", collection, organization_id=b["id"], **attrs)
    assert api.get(f"{nested}/{item['id']}").status_code == 200
    assert api.get(f"{nested}/{top['id']}").status_code == 404  # belongs to B
    assert api.get(f"/{collection}/{top['id']}").status_code == 200
    listed = api.get(nested).json()
    assert [d["id"] for d in listed["data"]] == [item["id"]]
    r = api.patch(
        f"{nested}/{item['id']}", {"data": {"type": collection, "attributes": {"notes": "patched"}}}
    )
    assert r.status_code == 200
    assert r.json()["data"]["attributes"]["notes"] == "patched"
    r = api.post(
        f"/organizations/999/relationships/{collection}",
        {"data": {"type": collection, "attributes": attrs}},
    )
    assert r.status_code == 404


def test_password_value_only_on_show_with_show_password(api: Api) -> None:
    org = api.org()
    pw = api.create(
        "/passwords", "passwords", name="root", password="s3cret", organization_id=org["id"]
    )
    assert "password" not in pw["attributes"]
    assert "password" not in api.get(f"/passwords/{pw['id']}").json()["data"]["attributes"]
    shown = api.get(f"/passwords/{pw['id']}", params={"show_password": "true"}).json()
    assert shown["data"]["attributes"]["password"] == "s3cret"
    assert "s3cret" not in api.get("/passwords").text


def test_bulk_update_and_bulk_destroy_by_ids_and_filters(api: Api, emu: Emulator) -> None:
    org = api.org()
    other = api.org("Other")
    ct = api.config_type()
    c1, c2, c3 = (api.configuration(org["id"], ct["id"], f"c{n}") for n in range(3))
    c4 = api.configuration(other["id"], ct["id"], "c4")
    r = api.patch(
        "/configurations",
        {
            "data": [
                {"type": "configurations", "attributes": {"id": c1["id"], "notes": "one"}},
                {"type": "configurations", "attributes": {"id": int(c2["id"]), "notes": "two"}},
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert [d["attributes"]["notes"] for d in r.json()["data"]] == ["one", "two"]
    # all or nothing: an unknown id refuses the whole bulk
    r = api.patch(
        "/configurations",
        {
            "data": [
                {"type": "configurations", "attributes": {"id": c1["id"], "notes": "changed"}},
                {"type": "configurations", "attributes": {"id": 5, "notes": "x"}},
            ]
        },
    )
    assert r.status_code == 404
    assert api.get(f"/configurations/{c1['id']}").json()["data"]["attributes"]["notes"] == "one"
    r = api.patch(
        "/configurations", {"data": [{"type": "configurations", "attributes": {"notes": "no id"}}]}
    )
    assert r.status_code == 422
    r = api.delete(
        "/configurations", {"data": [{"type": "configurations", "attributes": {"id": c1["id"]}}]}
    )
    assert r.status_code == 200
    assert api.get(f"/configurations/{c1['id']}").status_code == 404
    # by filter (top level only)
    r = api.delete("/configurations", params={"filter[organization_id]": org["id"]})
    assert r.status_code == 200
    assert sorted(d["id"] for d in r.json()["data"]) == sorted([c2["id"], c3["id"]])
    # no body and no filter: refused instead of deleting everything
    assert api.delete("/configurations").status_code == 400
    nested = f"/organizations/{other['id']}/relationships/configurations"
    assert api.delete(nested).status_code == 400
    r = api.delete(nested, {"data": [{"type": "configurations", "attributes": {"id": c1["id"]}}]})
    assert r.status_code == 404  # c1 is gone, and it never belonged to "other"
    assert [c["id"] for c in emu.state()["records"]["configurations"]] == [c4["id"]]
    # organizations bulk
    r = api.patch(
        "/organizations",
        {"data": [{"type": "organizations", "attributes": {"id": other["id"], "alert": "!"}}]},
    )
    assert r.json()["data"][0]["attributes"]["alert"] == "!"
    r = api.delete(
        "/organizations", {"data": [{"type": "organizations", "attributes": {"id": other["id"]}}]}
    )
    assert r.status_code == 200
    assert emu.state()["records"]["configurations"] == []  # cascaded with the org


def _network_type(api: Api) -> dict[str, Any]:
    body = {
        "data": {
            "type": "flexible_asset_types",
            "attributes": {"name": "Network", "icon": "sitemap"},
            "relationships": {
                "flexible_asset_fields": {
                    "data": [
                        {
                            "type": "flexible_asset_fields",
                            "attributes": {
                                "order": 1,
                                "name": "Name",
                                "kind": "Textbox",
                                "required": True,
                                "show_in_list": True,
                            },
                        },
                        {
                            "type": "flexible_asset_fields",
                            "attributes": {"order": 2, "name": "Subnet", "kind": "Textbox"},
                        },
                        {
                            "type": "flexible_asset_fields",
                            "attributes": {
                                "order": 3,
                                "name": "Firewall",
                                "kind": "Tag",
                                "tag_type": "Configurations",
                            },
                        },
                        {
                            "type": "flexible_asset_fields",
                            "attributes": {
                                "order": 4,
                                "name": "Default Gateway",
                                "kind": "Textbox",
                            },
                        },
                    ]
                }
            },
        }
    }
    r = api.post("/flexible_asset_types", body)
    assert r.status_code == 201, r.text
    doc: dict[str, Any] = r.json()
    return doc


def test_flexible_asset_types_and_fields(api: Api) -> None:
    doc = _network_type(api)
    fat = doc["data"]
    keys = [f["attributes"]["name-key"] for f in doc["included"]]
    assert keys == ["name", "subnet", "firewall", "default-gateway"]
    r = api.get(f"/flexible_asset_types/{fat['id']}", params={"include": "flexible_asset_fields"})
    assert len(r.json()["included"]) == 4
    fields_url = f"/flexible_asset_types/{fat['id']}/relationships/flexible_asset_fields"
    assert api.get(fields_url).json()["meta"]["total-count"] == 4
    extra = api.create(fields_url, "flexible_asset_fields", name="Notes", kind="Textarea")
    assert extra["attributes"]["name-key"] == "notes"
    r = api.patch(
        f"/flexible_asset_fields/{extra['id']}",
        {"data": {"type": "flexible_asset_fields", "attributes": {"hint": "free"}}},
    )
    assert r.json()["data"]["attributes"]["hint"] == "free"
    assert api.delete(f"/flexible_asset_fields/{extra['id']}").status_code == 204
    assert api.get(f"/flexible_asset_fields/{extra['id']}").status_code == 404
    r = api.post(
        fields_url,
        {
            "data": {
                "type": "flexible_asset_fields",
                "attributes": {"name": "Subnet", "kind": "Textbox"},
            }
        },
    )
    assert r.status_code == 422  # name-key taken
    assert (
        api.get("/flexible_asset_types", params={"filter[name]": "Network"}).json()["meta"][
            "total-count"
        ]
        == 1
    )


def test_flexible_assets_traits_validation_and_patch_replaces_all(api: Api) -> None:
    fat = _network_type(api)["data"]
    org = api.org()
    fw = api.configuration(org["id"], api.config_type()["id"], "fw01")
    body = {
        "data": {
            "type": "flexible-assets",
            "attributes": {
                "organization-id": org["id"],
                "flexible-asset-type-id": fat["id"],
                "traits": {
                    "name": "Corp LAN",
                    "subnet": "10.0.0.0/24",
                    "firewall": [fw["id"]],
                    "default_gateway": "10.0.0.1",
                },
            },
        }
    }
    r = api.post(f"/organizations/{org['id']}/relationships/flexible_assets", body)
    assert r.status_code == 201, r.text
    fa = r.json()["data"]
    traits = fa["attributes"]["traits"]
    assert fa["type"] == "flexible-assets"
    assert fa["attributes"]["name"] == "Corp LAN"
    assert fa["attributes"]["flexible-asset-type-name"] == "Network"
    assert traits["subnet"] == "10.0.0.0/24"
    assert traits["default-gateway"] == "10.0.0.1"
    assert traits["firewall"]["type"] == "Configurations"
    assert traits["firewall"]["values"][0]["id"] == int(fw["id"])
    assert traits["firewall"]["values"][0]["name"] == "fw01"
    # PATCH replaces the whole trait set: subnet/firewall disappear
    r = api.patch(
        f"/flexible_assets/{fa['id']}",
        {"data": {"type": "flexible_assets", "attributes": {"traits": {"name": "Corp LAN 2"}}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["attributes"]["traits"] == {"name": "Corp LAN 2"}
    # invalid trait keys
    r = api.patch(
        f"/flexible_assets/{fa['id']}",
        {
            "data": {
                "type": "flexible_assets",
                "attributes": {"traits": {"name": "x", "colour": "blue"}},
            }
        },
    )
    assert r.status_code == 422
    (entry,) = error_entries(r)
    assert entry == {
        "status": 422,
        "title": "Unprocessable Entity",
        "detail": "Request contains invalid trait keys",
        "source": {"pointer": "data/attributes/traits"},
    }
    # required trait missing
    body["data"]["attributes"]["traits"] = {"subnet": "10.1.0.0/24"}
    r = api.post("/flexible_assets", body)
    assert r.status_code == 422
    (entry,) = error_entries(r)
    assert entry["detail"] == ["can't be blank"]
    assert entry["source"]["pointer"] == "/data/attributes/flexible-asset-traits.name"
    # list by type (required filter), bulk create refused, delete
    listed = api.get("/flexible_assets", params={"filter[flexible_asset_type_id]": fat["id"]})
    assert listed.json()["meta"]["total-count"] == 1
    r = api.post("/flexible_assets", {"data": [body["data"]]})
    assert r.status_code == 422
    assert error_entries(r)[0]["title"] == (
        "bulk action not allowed for Flexible Asset using this route"
    )
    assert api.delete(f"/flexible_assets/{fa['id']}").status_code == 204
    assert api.get(f"/flexible_assets/{fa['id']}").status_code == 404


def test_related_items_create_update_delete(api: Api, emu: Emulator) -> None:
    org = api.org()
    ct = api.config_type()
    a = api.configuration(org["id"], ct["id"], "a")
    b = api.configuration(org["id"], ct["id"], "b")
    doc = api.document(org["id"])
    url = f"/configurations/{a['id']}/relationships/related_items"
    r = api.post(
        url,
        {
            "data": {
                "type": "related_items",
                "attributes": {
                    "destination_id": b["id"],
                    "destination_type": "Configuration",
                    "notes": "peer",
                },
            }
        },
    )
    assert r.status_code == 201, r.text
    item = r.json()["data"]
    assert item["type"] == "related-items"
    assert item["attributes"]["destination-name"] == "b"
    r = api.post(
        url,
        {
            "data": [
                {
                    "type": "related_items",
                    "attributes": {"destination_id": doc["id"], "destination_type": "Document"},
                }
            ]
        },
    )
    assert r.status_code == 201 and isinstance(r.json()["data"], list)
    r = api.post(
        url,
        {
            "data": {
                "type": "related_items",
                "attributes": {"destination_id": 1, "destination_type": "Configuration"},
            }
        },
    )
    assert r.status_code == 422
    r = api.patch(
        f"{url}/{item['id']}",
        {"data": {"type": "related_items", "attributes": {"notes": "changed"}}},
    )
    assert r.json()["data"]["attributes"]["notes"] == "changed"
    shown = api.get(f"/configurations/{a['id']}", params={"include": "related_items"}).json()
    assert len(shown["included"]) == 2
    r = api.delete(url, {"data": [{"type": "related_items", "attributes": {"id": item["id"]}}]})
    assert r.status_code == 200
    assert len(emu.state()["records"]["related_items"]) == 1
    assert (
        api.post(
            "/configurations/1/relationships/related_items",
            {
                "data": {
                    "type": "related_items",
                    "attributes": {"destination_id": b["id"], "destination_type": "Configuration"},
                }
            },
        ).status_code
        == 404
    )
