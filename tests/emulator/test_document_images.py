"""``/document_images``: POST with a gallery or document target and strict base64, GET,
DELETE; a gallery lists its images; ``/_emulator/state`` shows them; inline ``<svg>`` is
stripped from section HTML like the real API does."""

from __future__ import annotations

import base64
from typing import Any

from itglue_emulator import Emulator
from tests.emulator.emulator_helpers import Api, error_entries

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def image_body(target_type: str, target_id: Any, content: str | None = None) -> dict[str, Any]:
    return {
        "data": {
            "type": "document-images",
            "attributes": {
                "target": {"type": target_type, "id": target_id},
                "image": {
                    "content": base64.b64encode(PNG).decode() if content is None else content,
                    "file_name": "rack.png",
                },
            },
        }
    }


def test_images_into_a_gallery_or_a_document_then_show_and_delete(api: Api, emu: Emulator) -> None:
    doc = api.document(api.org()["id"])
    url = f"/documents/{doc['id']}/relationships/sections"
    gallery = api.create(url, "document_sections", resource_type="Document::Gallery")
    r = api.post("/document_images", image_body("gallery", gallery["id"]))
    assert r.status_code == 201
    image = r.json()["data"]
    assert image["type"] == "document-images"
    attrs = image["attributes"]
    assert attrs["file-name"] == "rack.png" and attrs["image-file-size"] == len(PNG)
    assert attrs["target-type"] == "gallery" and str(attrs["document-id"]) == doc["id"]
    shown = api.get(f"{url}/{gallery['id']}").json()["data"]["attributes"]["images"]
    assert [(str(i["id"]), i["file-name"]) for i in shown] == [(image["id"], "rack.png")]
    on_doc = api.post("/document_images", image_body("document", doc["id"])).json()["data"]
    state = emu.state()["records"]["document_images"]
    assert sorted(row["id"] for row in state) == sorted([image["id"], on_doc["id"]])
    assert api.get(f"/document_images/{image['id']}").json()["data"]["id"] == image["id"]
    assert api.delete(f"/document_images/{image['id']}").status_code == 204
    assert api.get(f"/document_images/{image['id']}").status_code == 404
    assert api.get(f"{url}/{gallery['id']}").json()["data"]["attributes"]["images"] == []


def test_image_targets_and_content_are_validated(api: Api) -> None:
    doc = api.document(api.org()["id"])
    url = f"/documents/{doc['id']}/relationships/sections"
    text = api.create(url, "document_sections", resource_type="Document::Text", content="x")
    assert api.post("/document_images", image_body("gallery", text["id"])).status_code == 404
    assert api.post("/document_images", image_body("document", 999)).status_code == 404
    r = api.post("/document_images", image_body("folder", doc["id"]))
    assert r.status_code == 422
    r = api.post("/document_images", image_body("document", doc["id"], content="not base64!"))
    assert r.status_code == 422
    assert error_entries(r)[0]["detail"] == ["is not valid strict base64"]
    # a guessed nested route does not exist (PR #99)
    nested = api.post(f"/documents/{doc['id']}/relationships/document_images", {})
    assert nested.status_code == 404


def test_deleting_a_document_or_its_gallery_deletes_its_images(api: Api, emu: Emulator) -> None:
    org = api.org()
    doc = api.document(org["id"])
    url = f"/documents/{doc['id']}/relationships/sections"
    gallery = api.create(url, "document_sections", resource_type="Document::Gallery")
    api.post("/document_images", image_body("gallery", gallery["id"]))
    assert api.delete(f"{url}/{gallery['id']}").status_code == 204
    assert emu.state()["records"]["document_images"] == []
    api.post("/document_images", image_body("document", doc["id"]))
    body = {"data": [{"type": "documents", "attributes": {"id": int(doc["id"])}}]}
    assert api.delete("/documents", body).status_code == 200
    assert emu.state()["records"]["document_images"] == []


def test_inline_svg_is_stripped_from_section_html(api: Api) -> None:
    doc = api.document(api.org()["id"])
    url = f"/documents/{doc['id']}/relationships/sections"
    made = api.create(
        url,
        "document_sections",
        resource_type="Document::Text",
        content='<p>a</p><svg viewBox="0 0 1 1"><circle r="1"/></svg><p>b</p>',
    )
    assert made["attributes"]["content"] == "<p>a</p><p>b</p>"
