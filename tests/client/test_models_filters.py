"""Models (kebab aliases, extras kept, ids as str), filter encoding, trait merging."""

from __future__ import annotations

from datetime import UTC, date, datetime

from core_client.client import ITGlueClient, filter_params
from core_client.jsonapi import collection_name
from core_client.models import Attachment, Configuration, DocumentSection, Organization


def test_model_from_jsonapi_keeps_unknown_attributes() -> None:
    org = Organization.from_jsonapi(
        {
            "id": "12",
            "type": "organizations",
            "attributes": {
                "name": "Happy Frog",
                "organization-type-id": 5,
                "organization-type-name": "Customer",
                "brand-new-field": {"x": 1},
                "created-at": "2024-01-02T03:04:05.000Z",
            },
            "relationships": {"adapters-resources": {"data": []}},
        }
    )
    assert org.id == "12" and org.name == "Happy Frog"
    assert org.organization_type_id == "5"  # ids as str
    assert org.created_at == "2024-01-02T03:04:05.000Z"
    assert org.model_extra == {"brand-new-field": {"x": 1}}
    assert org.attr("brand_new_field") == {"x": 1}
    assert org.attr("brand-new-field") == {"x": 1}
    assert org.attr("organization-type-name") == "Customer"
    assert org.relationships == {"adapters-resources": {"data": []}}
    dumped = org.attributes()
    assert dumped["organization-type-id"] == "5" and dumped["brand-new-field"] == {"x": 1}


def test_populate_by_name_and_alias() -> None:
    a = Configuration(id=3, organization_id=7, name="srv")  # type: ignore[arg-type]
    b = Configuration.model_validate({"id": "3", "organization-id": "7", "name": "srv"})
    assert a == b and a.id == "3" and a.organization_id == "7"


def test_section_resource_type_is_section_type() -> None:
    s = DocumentSection.from_jsonapi(
        {
            "id": 1,
            "type": "document-sections",
            "attributes": {"resource-type": "Document::Text", "content": "<p>x</p>"},
        }
    )
    assert s.section_type == "Document::Text" and s.id == "1"


def test_attachment_fields() -> None:
    a = Attachment.from_jsonapi(
        {
            "id": "9",
            "type": "attachments",
            "attributes": {"name": "a.pdf", "attachment-file-size": 3, "download-url": "/x"},
        }
    )
    assert a.attachment_file_size == 3 and a.download_url == "/x"


def test_filter_params() -> None:
    got = filter_params(
        {
            "name": "Kub, Reynolds and Gibson",
            "id": [1, 2, 3],
            "created_at": (date(2017, 2, 1), datetime(2017, 2, 28, 1, 2, 3, tzinfo=UTC)),
            "archived": False,
            "exclude": {"id": 5, "name": ["a,b", "c"]},
            "skipped": None,
        }
    )
    assert got == {
        "filter[name]": "Kub\\, Reynolds and Gibson",
        "filter[id]": "1,2,3",
        "filter[created_at]": "2017-02-01,2017-02-28T01:02:03Z",
        "filter[archived]": "false",
        "filter[exclude][id]": "5",
        "filter[exclude][name]": "a\\,b,c",
    }


def test_collection_names() -> None:
    assert collection_name("flexible-assets") == "flexible_assets"
    assert collection_name("FlexibleAsset") == "flexible_assets"
    assert collection_name("documents") == "documents"
    assert collection_name("Configuration") == "configurations"


def test_merge_traits_converts_tags_and_keeps_others() -> None:
    current = {
        "name": "Corp LAN",
        "subnet": "10.0.0.0/24",
        "firewall": {
            "type": "Configurations",
            "values": [
                {"id": 6789, "name": "fw1", "resource-url": "u"},
                {"id": "42", "name": "fw2"},
            ],
        },
        "notes": "old",
    }
    merged = ITGlueClient.merge_traits(current, {"subnet": "10.0.1.0/24", "notes": None, "vlan": 7})
    assert merged == {
        "name": "Corp LAN",
        "subnet": "10.0.1.0/24",
        "firewall": [6789, 42],
        "vlan": 7,
    }
