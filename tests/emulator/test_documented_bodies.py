"""Peers' conventions: the JSON:API bodies docs/itglue-api.md (and the public reference
it is written from) shows as examples are accepted unchanged.

Each body is copied verbatim; the records it names (organization 123, type 45, ...) are
stored first with those ids, as they would exist in the account the example came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.emulator.emulator_helpers import Api

ORG_123 = {"id": 123, "name": "Happy Frog"}
CONFIG = {"organization-id": 123, "configuration-type-id": None, "archived": False}


@dataclass(frozen=True)
class Example:
    name: str
    method: str
    path: str
    body: str  # verbatim from the documentation
    records: dict[str, list[dict[str, Any]]]
    status: int


EXAMPLES = (
    Example(
        "create organization",
        "POST",
        "/organizations",
        '{"data":{"type":"organizations","attributes":{"name":"Acme",'
        '"organization-type-id":12345,"organization-status-id":1}}}',
        {
            "organization_types": [{"id": 12345, "name": "Customer"}],
            "organization_statuses": [{"id": 1, "name": "Active"}],
        },
        201,
    ),
    Example(
        "create flexible asset",
        "POST",
        "/flexible_assets",
        """{"data":{"type":"flexible-assets","attributes":{"organization-id":123,"flexible-asset-type-id":45,
           "traits":{"name":"Corp LAN","subnet":"10.0.0.0/24","firewall":[6789]}}}}""",
        {
            "organizations": [ORG_123],
            "configurations": [{"id": 6789, "name": "fw-1", **CONFIG}],
            "flexible_asset_types": [{"id": 45, "name": "Network", "enabled": True}],
            "flexible_asset_fields": [
                {
                    "flexible-asset-type-id": 45,
                    "order": 1,
                    "name": "Name",
                    "name-key": "name",
                    "kind": "Text",
                    "required": True,
                },
                {
                    "flexible-asset-type-id": 45,
                    "order": 2,
                    "name": "Subnet",
                    "name-key": "subnet",
                    "kind": "Text",
                    "required": False,
                },
                {
                    "flexible-asset-type-id": 45,
                    "order": 3,
                    "name": "Firewall",
                    "name-key": "firewall",
                    "kind": "Tag",
                    "tag-type": "Configurations",
                    "required": False,
                },
            ],
        },
        201,
    ),
    Example(
        "create related item",
        "POST",
        "/configurations/986/relationships/related_items",
        '{"data":{"type":"related_items","attributes":{"destination_id":987,'
        '"destination_type":"Configuration","notes":"…"}}}',
        {
            "organizations": [ORG_123],
            "configurations": [
                {"id": 986, "name": "a", **CONFIG},
                {"id": 987, "name": "b", **CONFIG},
            ],
        },
        201,
    ),
    Example(
        "bulk destroy configurations",
        "DELETE",
        "/configurations",
        '{"data":[{"type":"configurations","attributes":{"id":123}}]}',
        {"configurations": [{"id": 123, "name": "old", **CONFIG}], "organizations": [ORG_123]},
        200,
    ),
    Example(
        "bulk destroy attachments",
        "DELETE",
        "/configurations/986/relationships/attachments",
        '{"data":[{"type":"attachments","attributes":{"id":1111}}]}',
        {
            "organizations": [ORG_123],
            "configurations": [{"id": 986, "name": "a", **CONFIG}],
            "attachments": [
                {
                    "id": 1111,
                    "resource-type": "configurations",
                    "resource-id": 986,
                    "name": "a.txt",
                    "file-name": "a.txt",
                    "attachment-file-size": 1,
                    "attachment-content-type": "text/plain",
                    "_token": "t",
                }
            ],
        },
        200,
    ),
    Example(
        "update document section",
        "PATCH",
        "/documents/50/relationships/sections/51",
        '{"data":{"type":"document-sections","attributes":{"content":"<p>…</p>"}}}',
        {
            "organizations": [ORG_123],
            "documents": [{"id": 50, "organization-id": 123, "name": "Runbook"}],
            "document_sections": [
                {
                    "id": 51,
                    "document-id": 50,
                    "resource-type": "Document::Text",
                    "content": "<p>old</p>",
                    "sort": 0,
                }
            ],
        },
        200,
    ),
)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_a_documented_body_is_accepted_unchanged(api: Api, example: Example) -> None:
    api.emu.add_records(example.records)
    r = api.request(
        example.method,
        example.path,
        data=example.body.encode(),
        headers={"Content-Type": "application/vnd.api+json"},
    )
    assert r.status_code == example.status, r.text
    sent = json.loads(example.body)["data"]
    answer = r.json()["data"]
    if isinstance(sent, dict) and isinstance(answer, dict):
        for key, value in sent["attributes"].items():
            if key != "traits":
                assert answer["attributes"][key.replace("_", "-")] == value
