"""Attachments on every allowed parent type; bytes checked via the inspection route."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
import requests

from itglue_emulator import Emulator
from tests.emulator.emulator_helpers import Api, error_entries

PARENTS = [
    "checklists",
    "checklist_templates",
    "configurations",
    "contacts",
    "documents",
    "domains",
    "locations",
    "passwords",
    "ssl_certificates",
    "flexible_assets",
    "tickets",
]


def _parent(api: Api, emu: Emulator, kind: str) -> str:
    created = emu.seed({kind: 1})
    assert created == {kind: 1}
    rows: list[dict[str, Any]] = emu.state()["records"][kind]
    return str(rows[-1]["id"])


@pytest.mark.parametrize("kind", PARENTS)
def test_upload_list_show_byte_identical(api: Api, emu: Emulator, kind: str) -> None:
    parent_id = _parent(api, emu, kind)
    payload = os.urandom(3000) + b"\x00\xff"
    r = api.attach(kind, parent_id, payload, "scan 01.pdf")
    assert r.status_code == 201, r.text
    att = r.json()["data"]
    assert att["type"] == "attachments"
    attrs = att["attributes"]
    assert attrs["attachment-file-size"] == len(payload)
    assert attrs["name"] == "scan 01.pdf"
    assert attrs["attachment-content-type"] == "application/pdf"
    assert attrs["download-url"].startswith(emu.base_url)
    assert emu.attachment_content(att["id"]) == payload
    downloaded = requests.get(attrs["download-url"], verify=emu.ca_file, timeout=10)
    assert downloaded.content == payload
    url = f"/{kind}/{parent_id}/relationships/attachments"
    assert [a["id"] for a in api.get(url).json()["data"]] == [att["id"]]
    shown = api.get(f"{url}/{att['id']}").json()["data"]["attributes"]
    assert shown["attachment-file-size"] == len(payload)
    (row,) = emu.state()["records"]["attachments"]
    assert row["sha256"] == hashlib.sha256(payload).hexdigest()
    assert row["size"] == len(payload)
    assert "content" not in row


def test_strict_base64_and_required_members(api: Api, emu: Emulator) -> None:
    parent = _parent(api, emu, "configurations")
    url = f"/configurations/{parent}/relationships/attachments"
    for content in ("aGVsbG8", "aGVs\nbG8=", "a-_b", "!!!!", 17):
        r = api.post(
            url,
            {
                "data": {
                    "type": "attachments",
                    "attributes": {"attachment": {"content": content, "file_name": "x.txt"}},
                }
            },
        )
        assert r.status_code == 422, content
        assert error_entries(r)[0]["status"] == 422
    r = api.post(
        url,
        {"data": {"type": "attachments", "attributes": {"attachment": {"content": "aGVsbG8="}}}},
    )
    assert r.status_code == 422
    r = api.post(url, {"data": {"type": "attachments", "attributes": {"file_name": "x"}}})
    assert r.status_code == 422
    assert emu.state()["records"]["attachments"] == []
    # file-name (kebab) is accepted as well
    r = api.post(
        url,
        {
            "data": {
                "type": "attachments",
                "attributes": {"attachment": {"content": "aGVsbG8=", "file-name": "k.txt"}},
            }
        },
    )
    assert r.status_code == 201


def test_missing_parent_and_unsupported_parent_type(api: Api) -> None:
    r = api.attach("configurations", "12345", b"x", "x.txt")
    assert r.status_code == 404
    org = api.org()
    r = api.attach("organizations", org["id"], b"x", "x.txt")
    assert r.status_code == 404  # organizations are not an attachment parent type


def test_rename_and_bulk_delete(api: Api, emu: Emulator) -> None:
    parent = _parent(api, emu, "contacts")
    url = f"/contacts/{parent}/relationships/attachments"
    a1 = api.attach("contacts", parent, b"one", "one.txt").json()["data"]
    a2 = api.attach("contacts", parent, b"two", "two.txt").json()["data"]
    r = api.patch(
        f"{url}/{a1['id']}",
        {
            "data": {
                "type": "attachments",
                "attributes": {
                    "name": "renamed.txt",
                    "file_name": "nope.txt",
                    "attachment-file-size": 1,
                },
            }
        },
    )
    assert r.status_code == 200
    attrs = r.json()["data"]["attributes"]
    assert attrs["name"] == "renamed.txt"
    assert attrs["file-name"] == "one.txt"  # the original file name cannot change
    assert attrs["attachment-file-size"] == 3
    other = _parent(api, emu, "contacts")
    assert api.get(f"/contacts/{other}/relationships/attachments/{a1['id']}").status_code == 404
    r = api.delete(
        url,
        {
            "data": [
                {"type": "attachments", "attributes": {"id": a1["id"]}},
                {"type": "attachments", "attributes": {"id": 1}},
            ]
        },
    )
    assert r.status_code == 404  # all or nothing
    r = api.delete(url, {"data": [{"type": "attachments", "attributes": {"id": a1["id"]}}]})
    assert r.status_code == 200
    assert [a["id"] for a in emu.state()["records"]["attachments"]] == [a2["id"]]
    with pytest.raises(KeyError):
        emu.attachment_content(a1["id"])
