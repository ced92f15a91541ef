"""Typed resource methods against the emulator over real HTTPS."""

from __future__ import annotations

import math
from typing import Any

import pytest

from core_client import ITGlueClient, NotFoundError, ValidationError
from tests.client.conftest import ClientFactory, requests_seen


def _config_type(client: ITGlueClient) -> str:
    resp = client.request(
        "POST",
        "/configuration_types",
        json={"data": {"type": "configuration-types", "attributes": {"name": "Server"}}},
    )
    return str(resp.body["data"]["id"])


def test_listing_10000_configurations_takes_10_requests(
    itglue_emulator: Any, make_client: ClientFactory
) -> None:
    itglue_emulator.seed({"configurations": 10_000})
    client = make_client(itglue_emulator)
    before = requests_seen(itglue_emulator, "GET", "/configurations")
    configs = list(client.list_configurations())
    assert len(configs) == 10_000
    assert len({c.id for c in configs}) == 10_000
    assert requests_seen(itglue_emulator, "GET", "/configurations") - before == 10
    assert client.get_metrics().request_count == 10


@pytest.mark.parametrize("n", [0, 1, 999, 1000, 1001, 2000])
def test_pages_cost_ceil_n_over_1000(
    itglue_emulator: Any, make_client: ClientFactory, n: int
) -> None:
    client = make_client(itglue_emulator)
    if n:
        itglue_emulator.seed({"configurations": n})
    assert sum(1 for _ in client.list_configurations()) == n
    assert requests_seen(itglue_emulator, "GET", "/configurations") == max(1, math.ceil(n / 1000))


def test_filters_sort_include(itglue_emulator: Any, make_client: ClientFactory) -> None:
    client = make_client(itglue_emulator)
    a = client.create_organization("Kub, Reynolds and Gibson")
    b = client.create_organization("Zeta")
    client.create_organization("Alpha")
    got = list(client.list_organizations(filters={"name": "Kub, Reynolds and Gibson"}))
    assert [o.id for o in got] == [a.id]
    got = list(client.list_organizations(filters={"id": [a.id, b.id]}, sort="-name"))
    assert [o.name for o in got] == ["Zeta", "Kub, Reynolds and Gibson"]
    got = list(client.list_organizations(filters={"exclude": {"name": "Zeta"}}, sort=["name"]))
    assert [o.name for o in got] == ["Alpha", "Kub, Reynolds and Gibson"]
    assert list(client.list_organizations(include="attachments", filters={"name": "Alpha"}))
    with pytest.raises(ValidationError):
        list(client.list_organizations(sort="no_such_field"))


def test_crud_organizations_configurations_contacts_locations(
    itglue_emulator: Any, make_client: ClientFactory
) -> None:
    client = make_client(itglue_emulator)
    org = client.create_organization("Acme", short_name="ACME", brand_new_attribute="kept?")
    assert org.short_name == "ACME"
    assert client.get_organization(org.id).name == "Acme"
    assert client.update_organization(org.id, description="d").description == "d"

    type_id = _config_type(client)
    assert [t.id for t in client.list_resources("configuration_types")] == [type_id]
    conf = client.create_configuration(
        org.id, "srv-1", configuration_type_id=type_id, serial_number="SN1"
    )
    assert conf.organization_id == org.id and conf.configuration_type_id == type_id
    assert client.configurations.update(conf.id, hostname="h1").hostname == "h1"
    conf2 = client.create_configuration(org.id, "srv-2", configuration_type_id=type_id)
    updated = client.configurations.bulk_update(
        [{"id": conf.id, "asset_tag": "T1"}, {"id": conf2.id, "asset_tag": "T2"}]
    )
    assert {u.asset_tag for u in updated} == {"T1", "T2"} or updated == []
    assert client.get_configuration(conf2.id).asset_tag == "T2"
    nested = list(client.list_configurations(organization_id=org.id))
    assert {c.id for c in nested} == {conf.id, conf2.id}
    client.configurations.bulk_delete([conf2.id])
    with pytest.raises(NotFoundError):
        client.get_configuration(conf2.id)

    contact = client.create_contact(
        org.id,
        "Ada",
        last_name="Lovelace",
        contact_emails=[{"value": "ada@example.com", "primary": True, "label-name": "Work"}],
    )
    assert contact.primary_email == "ada@example.com"
    assert client.contacts.update(contact.id, title="CTO").title == "CTO"
    assert [c.id for c in client.list_contacts(filters={"organization_id": org.id})] == [contact.id]
    client.contacts.bulk_delete([contact.id])
    assert list(client.list_contacts(organization_id=org.id)) == []

    # a scoped collection puts its organization into the new record's attributes
    loc = client.locations.within(org.id).create(name="HQ", city="Oslo")
    assert loc.organization_id == org.id
    assert client.locations.get(loc.id).city == "Oslo"
    assert client.locations.update(loc.id, city="Bergen").city == "Bergen"
    client.locations.bulk_update([{"id": loc.id, "name": "Head office"}])
    assert client.locations.get(loc.id).name == "Head office"
    client.locations.bulk_delete([loc.id])
    assert list(client.locations.within(org.id).list()) == []

    client.organizations.bulk_update([{"id": org.id, "quick_notes": "q"}])
    assert client.get_organization(org.id).quick_notes == "q"
    client.organizations.bulk_delete([org.id])
    with pytest.raises(NotFoundError):
        client.get_organization(org.id)


def test_flexible_asset_update_merges_traits(
    itglue_emulator: Any, make_client: ClientFactory
) -> None:
    client = make_client(itglue_emulator)
    org = client.create_organization("Acme")
    type_id = _config_type(client)
    fw = client.create_configuration(org.id, "fw-1", configuration_type_id=type_id)
    fat = client.request(
        "POST",
        "/flexible_asset_types",
        json={
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
                                    "kind": "Text",
                                    "required": True,
                                },
                            },
                            {
                                "type": "flexible_asset_fields",
                                "attributes": {"order": 2, "name": "Subnet", "kind": "Text"},
                            },
                            {
                                "type": "flexible_asset_fields",
                                "attributes": {
                                    "order": 3,
                                    "name": "Firewall",
                                    "kind": "Tag",
                                    "tag-type": "Configurations",
                                },
                            },
                        ]
                    }
                },
            }
        },
    ).body["data"]["id"]
    asset = client.create_flexible_asset(
        org.id, fat, {"name": "Corp LAN", "subnet": "10.0.0.0/24", "firewall": [int(fw.id)]}
    )
    assert asset.traits is not None and asset.traits["subnet"] == "10.0.0.0/24"
    updated = client.update_flexible_asset(asset.id, {"subnet": "10.0.1.0/24"})
    traits = updated.traits or {}
    assert traits["name"] == "Corp LAN"  # not deleted by the PATCH
    assert traits["subnet"] == "10.0.1.0/24"
    fw_trait = traits["firewall"]
    ids = [v["id"] for v in fw_trait["values"]] if isinstance(fw_trait, dict) else fw_trait
    assert [str(i) for i in ids] == [fw.id]
    listed = list(client.list_flexible_assets(fat, filters={"organization_id": org.id}))
    assert [a.id for a in listed] == [asset.id]
    client.flexible_assets.delete(asset.id)
    with pytest.raises(NotFoundError):
        client.get_flexible_asset(asset.id)


def test_documents_sections_publish_related_items(
    itglue_emulator: Any, make_client: ClientFactory
) -> None:
    client = make_client(itglue_emulator)
    org = client.create_organization("Acme")
    doc = client.create_document(org.id, "Runbook")
    assert doc.organization_id == org.id and doc.published is False
    s1 = client.create_document_section(doc.id, "Document::Heading", "Intro", level=2)
    s2 = client.create_document_section(doc.id, "Document::Text", "<p>Body</p>")
    assert s1.section_type == "Document::Heading" and s1.level == 2
    assert [s.id for s in client.list_document_sections(doc.id)] == [s1.id, s2.id]
    with pytest.raises(ValidationError):
        client.request(
            "POST",
            f"/documents/{doc.id}/relationships/sections",
            json={"data": {"type": "document-sections", "attributes": {}}},
        )
    published = client.publish_document(doc.id)
    assert client.get_document(doc.id).published is True
    assert published is None or published.published is True
    assert client.documents.update(doc.id, name="Runbook v2").name == "Runbook v2"
    assert [d.name for d in client.list_documents(org.id)] == ["Runbook v2"]

    type_id = _config_type(client)
    conf = client.create_configuration(org.id, "srv", configuration_type_id=type_id)
    rel = client.create_related_item("documents", doc.id, "Configuration", conf.id, notes="n")
    assert rel.destination_id == conf.id
    client.documents.bulk_delete([doc.id])
    with pytest.raises(NotFoundError):
        client.get_document(doc.id)


def test_upload_document_seed_api(
    itglue_emulator: Any, make_client: ClientFactory, tmp_path: Any
) -> None:
    client = make_client(itglue_emulator)
    org = client.create_organization("Acme")
    f = tmp_path / "diagram.pdf"
    f.write_bytes(b"%PDF-1.4 fake" * 100)
    doc = client.upload_document(org.id, f, "Network Diagram.pdf", publish=True)
    assert doc.name == "Network Diagram.pdf"
    atts = list(client.list_attachments("documents", doc.id))
    assert len(atts) == 1 and atts[0].attachment_file_size == f.stat().st_size
    assert itglue_emulator.attachment_content(atts[0].id) == f.read_bytes()
    assert client.download_attachment("documents", doc.id, atts[0]) == f.read_bytes()
    assert client.download_attachment("documents", doc.id, atts[0].id) == f.read_bytes()


def test_client_never_follows_foreign_pagination(
    make_client: ClientFactory, itglue_emulator: Any
) -> None:
    client = make_client(itglue_emulator)
    body = {"links": {"next": "https://evil.example/organizations?page[number]=2"}}
    assert client._next_page(body, "/organizations", {}) is None
    body = {"links": {"next": itglue_emulator.base_url + "/organizations?page%5Bnumber%5D=2"}}
    nxt = client._next_page(body, "/organizations", {})
    assert nxt is not None and "page%5Bsize%5D=1000" in nxt[0]
    assert (
        client._next_page({"meta": {"next-page": None}, "links": {"next": "x"}}, "/o", {}) is None
    )


def test_repr_shows_instance_and_url_only(itglue_emulator: Any, make_client: ClientFactory) -> None:
    client = make_client(itglue_emulator, instance="prod")
    assert repr(client) == f"ITGlueClient(instance='prod', base_url='{itglue_emulator.base_url}')"
    assert str(client) == repr(client)
    assert isinstance(client, ITGlueClient)


def test_key_is_never_sent_to_another_origin(
    itglue_emulator: Any, make_client: ClientFactory, tmp_path: Any
) -> None:
    from pathlib import Path

    from core_client import ConfigurationError
    from itglue_emulator import run_emulator

    with run_emulator(api_key=itglue_emulator.api_key) as other:
        both = tmp_path / "both.pem"  # trust both emulators' test CAs
        both.write_bytes(
            Path(itglue_emulator.ca_file).read_bytes() + Path(other.ca_file).read_bytes()
        )
        client = make_client(itglue_emulator, ca_bundle=both)
        # the typed path refuses to aim the key at a foreign origin at all
        with pytest.raises(ConfigurationError, match="another origin"):
            client.request("GET", other.base_url + "/organizations")
        # downloads from another host go without the key: the other server says 401
        from core_client import AuthenticationError

        with pytest.raises(AuthenticationError):
            client._transport.request("GET", other.base_url + "/organizations", send_key=False)
        assert requests_seen(other, status=401) == 1


def test_one_client_many_threads(itglue_emulator: Any, make_client: ClientFactory) -> None:
    from concurrent.futures import ThreadPoolExecutor

    itglue_emulator.seed({"configurations": 1500})
    client = make_client(itglue_emulator)
    with ThreadPoolExecutor(6) as pool:
        counts = list(pool.map(lambda _: sum(1 for _ in client.list_configurations()), range(12)))
    assert counts == [1500] * 12
    m = client.get_metrics()
    assert m.request_count == 24 and m.error_count == 0
    assert client.rate_limiter.get_stats()["requests_in_window"] == 24


def test_generic_resource_collections(itglue_emulator: Any, make_client: ClientFactory) -> None:
    client = make_client(itglue_emulator)
    a = client.organizations.create(name="Alpha", short_name="A")
    client.organizations.create(name="Beta")
    assert a.short_name == "A"
    got = client.organizations.list(filter={"name": ["Alpha", "Beta"]}, sort="-name")
    assert [o.name for o in got] == ["Beta", "Alpha"]
    assert client.organizations.get(a.id, include="attachments").name == "Alpha"
    assert client.organizations.update(a.id, description="d").description == "d"

    # documents are listed and created per organization; members are top-level
    with pytest.raises(ValueError, match=r"within\(organization_id\)"):
        list(client.documents.list())
    doc = client.documents.within(a.id).create(name="Runbook")
    same_route = client.documents.create(organization_id=a.id, name="Second")
    assert same_route.organization_id == a.id
    assert {d.name for d in client.documents.within(a.id).list()} == {"Runbook", "Second"}
    assert client.documents.get(doc.id).name == "Runbook"

    # sections: every route under the document
    sections = client.document_sections.within(doc.id)
    text = sections.create(resource_type="Document::Text", content="<p>one</p>")
    assert sections.get(text.id).content == "<p>one</p>"
    assert sections.update(text.id, content="<p>two</p>").content == "<p>two</p>"
    sections.delete(text.id)
    assert list(sections.list()) == []
    with pytest.raises(ValueError, match=r"within\(document_id\)"):
        client.document_sections.get(text.id)
    with pytest.raises(ValueError, match="parent"):
        client.organizations.within(a.id)
    assert repr(sections) == f"<Resources sections within {doc.id}>"


def test_a_new_resource_is_one_table_line(itglue_emulator: Any, make_client: ClientFactory) -> None:
    """What another resource costs: a line in the table (here on a subclass) and a model."""
    from core_client.models import GenericResource
    from core_client.resources import resource

    class Extended(ITGlueClient):
        configuration_types = resource(
            "configuration_types", GenericResource, json_type="configuration-types"
        )

    base = make_client(itglue_emulator)
    client = Extended(base.base_url, itglue_emulator.api_key, ca_bundle=itglue_emulator.ca_file)
    try:
        created = client.configuration_types.create(name="Server")
        assert [t.id for t in client.configuration_types.list()] == [created.id]
        assert client.configuration_types.get(created.id).attr("name") == "Server"
    finally:
        client.close()
