"""Auth, JSON:API shape, body parsing, 404 and 400 -- through real HTTPS."""

from __future__ import annotations

import json
import ssl
import urllib.request

import pytest
import requests

from itglue_emulator import Emulator
from tests.emulator.emulator_helpers import JSONAPI, Api, error_entries


def test_missing_and_wrong_key_get_401_with_errors_body(api: Api) -> None:
    for key in (None, "wrong-key", ""):
        r = api.get("/organizations", key=key)
        assert r.status_code == 401
        (entry,) = error_entries(r)
        assert entry["status"] == "401"
        assert entry["source"]["pointer"] == "id"
        assert "test-key" not in r.text


def test_tls_certificate_is_trusted_for_ip_and_localhost(emu: Emulator) -> None:
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    for host in ("127.0.0.1", "localhost"):
        req = urllib.request.Request(
            f"https://{host}:{emu.port}/organizations", headers={"x-api-key": emu.api_key}
        )
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            assert resp.status == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(emu.base_url + "/organizations", verify=True, timeout=10)


def test_single_resource_shape(api: Api) -> None:
    org = api.org("Happy Frog", description="pond")
    r = api.get(f"/organizations/{org['id']}")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith(JSONAPI)
    data = r.json()["data"]
    assert isinstance(data["id"], str) and data["id"].isdigit()
    assert data["type"] == "organizations"
    assert data["relationships"] == {}
    attrs = data["attributes"]
    assert attrs["name"] == "Happy Frog"
    for key in ("created-at", "updated-at", "resource-url", "organization-type-name"):
        assert key in attrs
    assert attrs["created-at"].endswith("Z")


def test_snake_and_kebab_attribute_keys_and_type_spellings(api: Api) -> None:
    org = api.org()
    ct = api.config_type()
    r1 = api.post(
        "/configurations",
        {
            "data": {
                "type": "configurations",
                "attributes": {
                    "name": "snake",
                    "organization_id": org["id"],
                    "configuration_type_id": ct["id"],
                    "serial_number": "S1",
                },
            }
        },
    )
    r2 = api.post(
        "/configurations",
        {
            "data": {
                "type": "configurations",
                "attributes": {
                    "name": "kebab",
                    "organization-id": int(org["id"]),
                    "configuration-type-id": int(ct["id"]),
                    "serial-number": "S2",
                },
            }
        },
    )
    assert r1.status_code == r2.status_code == 201, (r1.text, r2.text)
    assert r1.json()["data"]["attributes"]["serial-number"] == "S1"
    assert r2.json()["data"]["attributes"]["organization-id"] == int(org["id"])
    for spelling in ("configuration_types", "configuration-types"):
        r = api.post(
            "/configuration_types", {"data": {"type": spelling, "attributes": {"name": spelling}}}
        )
        assert r.status_code == 201, r.text
    r = api.post(
        "/configuration_types", {"data": {"type": "organizations", "attributes": {"name": "x"}}}
    )
    assert r.status_code == 422
    assert error_entries(r)[0]["source"]["pointer"] == "/data/type"


def test_unknown_attributes_are_dropped_like_strong_params(api: Api) -> None:
    org = api.org("Acme", favourite_colour="blue")
    assert "favourite-colour" not in org["attributes"]
    assert "favourite_colour" not in org["attributes"]


def test_404_for_unknown_ids_routes_and_cross_type_ids(api: Api) -> None:
    org = api.org()
    r = api.get("/organizations/999")
    assert r.status_code == 404
    assert error_entries(r)[0]["status"] == "404"
    # a configuration-sized id space: an organization id is not a configuration id
    assert api.get(f"/configurations/{org['id']}").status_code == 404
    r = api.get("/no_such_thing")
    assert r.status_code == 404
    assert error_entries(r)[0]["status"] == 404
    assert api.get("/organizations/abc").status_code == 404
    assert api.request("PUT", "/organizations").status_code == 404


def test_malformed_json_is_400_and_double_encoded_is_500(api: Api) -> None:
    r = api.post("/organizations", data=b"{not json", headers={"Content-Type": JSONAPI})
    assert r.status_code == 400
    assert error_entries(r)[0]["title"] == "Bad Request"
    doc = json.dumps({"type": "organizations", "attributes": {"name": "x"}})
    r = api.post("/organizations", {"data": doc})
    assert r.status_code == 500
    r = api.post("/organizations", {"nodata": {}})
    assert r.status_code == 400
    assert error_entries(r)[0]["detail"] == "param is missing or the value is empty: data"


def test_keep_alive_reuses_one_connection(api: Api, emu: Emulator) -> None:
    api.org()
    for _ in range(5):
        assert api.get("/organizations").status_code == 200
    before = emu.state()["connections"]  # the state call itself is one more connection
    assert api.get("/organizations").status_code == 200
    assert emu.state()["connections"] == before + 1
    assert before == 2  # the six API calls above shared one connection


def test_inspection_needs_no_key_and_is_not_counted(api: Api, emu: Emulator) -> None:
    r = requests.get(emu.base_url + "/_emulator/state", verify=emu.ca_file, timeout=10)
    assert r.status_code == 200
    assert r.json()["request_total"] == 0
    api.get("/organizations")
    state = emu.state()
    assert state["request_total"] == 1
    assert state["requests"] == [
        {"method": "GET", "route": "/organizations", "status": 200, "dropped": False, "count": 1}
    ]
    r = requests.get(emu.base_url + "/_emulator/nothing", verify=emu.ca_file, timeout=10)
    assert r.status_code == 404


def test_reset_clears_records_and_counts(api: Api, emu: Emulator) -> None:
    api.org()
    emu.reset()
    state = emu.state()
    assert state["records"]["organizations"] == []
    assert state["request_total"] == 0


def test_bodies_need_a_json_content_type(api: Api) -> None:
    body = json.dumps({"data": {"type": "organizations", "attributes": {"name": "x"}}})
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        headers = {"Content-Type": content_type} if content_type else {}
        r = api.post("/organizations", data=body.encode(), headers=headers)
        assert r.status_code == 400, content_type
        assert error_entries(r)[0]["detail"] == "param is missing or the value is empty: data"
    for content_type in ("application/json", "application/vnd.api+json; charset=utf-8"):
        r = api.post("/organizations", data=body.encode(), headers={"Content-Type": content_type})
        assert r.status_code == 201, content_type
