"""Documents, sections and publish."""

from __future__ import annotations

from itglue_emulator import Emulator
from tests.emulator.emulator_helpers import Api, error_entries


def test_create_top_level_and_nested_show_list(api: Api) -> None:
    org = api.org()
    nested = api.document(org["id"], "Nested")
    top = api.create("/documents", "documents", name="Top", organization_id=org["id"])
    for doc in (nested, top):
        assert doc["type"] == "documents"
        assert doc["attributes"]["organization-id"] == int(org["id"])
        assert doc["attributes"]["published"] is False
    listed = api.get(f"/organizations/{org['id']}/relationships/documents").json()
    assert sorted(d["attributes"]["name"] for d in listed["data"]) == ["Nested", "Top"]
    assert api.get("/documents").status_code == 404  # no top-level index route
    r = api.post("/documents", {"data": {"type": "documents", "attributes": {"name": "x"}}})
    assert r.status_code == 422
    assert error_entries(r)[0]["title"] == "Valid organization_id is required"


def test_nested_list_shows_root_documents_unless_folder_filter(api: Api) -> None:
    org = api.org()
    api.document(org["id"], "root")
    api.document(org["id"], "in folder", document_folder_id=77)
    url = f"/organizations/{org['id']}/relationships/documents"
    assert [d["attributes"]["name"] for d in api.get(url).json()["data"]] == ["root"]
    r = api.get(url, params={"filter[document_folder_id]": "77"})
    assert [d["attributes"]["name"] for d in r.json()["data"]] == ["in folder"]


def test_show_includes_sections_and_content_rules(api: Api) -> None:
    org = api.org()
    doc = api.document(org["id"], "Runbook", content="<p>one</p><svg><circle/></svg>")
    shown = api.get(f"/documents/{doc['id']}").json()
    (section,) = shown["included"]
    assert section["type"] == "document-sections"
    assert section["attributes"]["resource-type"] == "Document::Text"
    assert section["attributes"]["content"] == "<p>one</p>"  # inline svg stripped
    assert shown["data"]["relationships"]["sections"]["data"] == [
        {"type": "document-sections", "id": section["id"]}
    ]
    # single-section document: PATCH content updates it
    r = api.patch(
        f"/documents/{doc['id']}",
        {"data": {"type": "documents", "attributes": {"content": "<p>two</p>"}}},
    )
    assert r.status_code == 200
    sections_url = f"/documents/{doc['id']}/relationships/sections"
    assert api.get(sections_url).json()["data"][0]["attributes"]["content"] == "<p>two</p>"
    # multi-section document: PATCH content silently does nothing
    api.create(
        sections_url,
        "document-sections",
        resource_type="Document::Heading",
        content="Title",
        level=2,
    )
    r = api.patch(
        f"/documents/{doc['id']}",
        {"data": {"type": "documents", "attributes": {"content": "<p>3</p>"}}},
    )
    assert r.status_code == 200
    contents = [s["attributes"]["content"] for s in api.get(sections_url).json()["data"]]
    assert contents == ["<p>two</p>", "Title"]


def test_sections_crud_and_validation(api: Api) -> None:
    org = api.org()
    doc = api.document(org["id"])
    url = f"/documents/{doc['id']}/relationships/sections"
    r = api.post(url, {"data": {"type": "document-sections", "attributes": {"content": "x"}}})
    assert r.status_code == 400
    (entry,) = error_entries(r)
    assert entry["detail"] == "param is missing or the value is empty: resource_type"
    r = api.post(
        url,
        {"data": {"type": "document-sections", "attributes": {"resource_type": "Document::Video"}}},
    )
    assert r.status_code == 422
    for level in (0, 7, None):
        r = api.post(
            url,
            {
                "data": {
                    "type": "document-sections",
                    "attributes": {
                        "resource_type": "Document::Heading",
                        "content": "H",
                        "level": level,
                    },
                }
            },
        )
        assert r.status_code == 422
    kinds = ["Document::Text", "Document::Heading", "Document::Gallery", "Document::Step"]
    ids = []
    for kind in kinds:
        attrs = {"resource_type": kind, "content": f"<p>{kind}</p>"}
        if kind == "Document::Heading":
            attrs["level"] = 1
        ids.append(api.create(url, "document_sections", **attrs)["id"])
    listed = api.get(url).json()["data"]
    assert [s["attributes"]["resource-type"] for s in listed] == kinds
    assert "content" not in listed[2]["attributes"]  # gallery has images, not content
    r = api.patch(
        f"{url}/{ids[0]}",
        {"data": {"type": "document-sections", "attributes": {"content": "<p>new</p>"}}},
    )
    assert r.json()["data"]["attributes"]["content"] == "<p>new</p>"
    r = api.patch(
        f"{url}/{ids[1]}", {"data": {"type": "document-sections", "attributes": {"level": 9}}}
    )
    assert r.status_code == 422
    assert api.get(f"{url}/{ids[3]}").json()["data"]["attributes"]["resource-type"] == (
        "Document::Step"
    )
    assert api.delete(f"{url}/{ids[3]}").status_code == 204
    assert api.get(f"{url}/{ids[3]}").status_code == 404
    assert len(api.get(url).json()["data"]) == 3
    other = api.document(org["id"], "Other")
    assert api.get(f"/documents/{other['id']}/relationships/sections/{ids[0]}").status_code == 404


def test_publish_is_patch_only(api: Api) -> None:
    org = api.org()
    doc = api.document(org["id"])
    r = api.post(f"/documents/{doc['id']}/publish")
    assert r.status_code == 404
    r = api.patch(f"/documents/{doc['id']}/publish")
    assert r.status_code == 200
    attrs = r.json()["data"]["attributes"]
    assert attrs["published"] is True and attrs["published-at"]
    assert api.patch("/documents/1/publish").status_code == 404


def test_document_update_bulk_update_and_bulk_destroy(api: Api, emu: Emulator) -> None:
    org = api.org()
    d1, d2 = api.document(org["id"], "one", content="<p>1</p>"), api.document(org["id"], "two")
    r = api.patch(
        f"/documents/{d1['id']}",
        {"data": {"type": "documents", "attributes": {"restricted": True}}},
    )
    assert r.json()["data"]["attributes"]["restricted"] is True
    r = api.patch(
        "/documents",
        {
            "data": [
                {"type": "documents", "attributes": {"id": d1["id"], "name": "uno"}},
                {"type": "documents", "attributes": {"id": d2["id"], "archived": True}},
            ]
        },
    )
    assert r.status_code == 200
    assert [d["attributes"]["name"] for d in r.json()["data"]] == ["uno", "two"]
    assert api.attach("documents", d1["id"], b"x", "x.bin").status_code == 201
    r = api.delete("/documents", {"data": [{"type": "documents", "attributes": {"id": d1["id"]}}]})
    assert r.status_code == 200
    state = emu.state()["records"]
    assert [d["id"] for d in state["documents"]] == [d2["id"]]
    assert state["document_sections"] == [] and state["attachments"] == []
