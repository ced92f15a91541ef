"""Index routes: pagination edges, meta and links, filters, sort, include."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from itglue_emulator import Emulator
from tests.emulator.emulator_helpers import Api, error_entries


@pytest.mark.parametrize(
    ("count", "size", "pages"),
    [(0, None, 1), (1, None, 1), (1000, 1000, 1), (1001, 1000, 2), (120, None, 3)],
)
def test_pagination_edges(
    api: Api, emu: Emulator, count: int, size: int | None, pages: int
) -> None:
    if count:
        emu.seed({"organizations": count})
    params = {} if size is None else {"page[size]": size}
    r = api.get("/organizations", params=params)
    assert r.status_code == 200
    body = r.json()
    meta, links = body["meta"], body["links"]
    per_page = size or 50
    assert meta["total-count"] == count
    assert meta["total-pages"] == pages
    assert meta["current-page"] == 1
    assert meta["prev-page"] is None
    assert len(body["data"]) == min(count, per_page)
    assert set(links) >= {"self", "first", "last"}
    assert links["self"].startswith(emu.base_url + "/organizations?")
    if pages == 1:
        assert meta["next-page"] is None
        assert "next" not in links
        return
    # follow links.next to the end and collect every id exactly once
    seen = [d["id"] for d in body["data"]]
    url = links["next"]
    while url:
        page = api.get(url).json()
        seen += [d["id"] for d in page["data"]]
        url = page["links"].get("next")
        if url is None:
            assert page["meta"]["next-page"] is None
            assert page["meta"]["current-page"] == pages
            assert page["meta"]["prev-page"] == pages - 1
            assert "prev" in page["links"]
    assert len(seen) == len(set(seen)) == count
    q = parse_qs(urlsplit(links["last"]).query)
    assert q["page[number]"] == [str(pages)]
    assert q["page[size]"] == [str(per_page)]


def test_page_past_the_end_is_empty(api: Api, emu: Emulator) -> None:
    emu.seed({"organizations": 3})
    body = api.get("/organizations", params={"page[number]": 5}).json()
    assert body["data"] == []
    assert body["meta"]["total-count"] == 3
    assert "next" not in body["links"]


def test_page_size_limits(api: Api) -> None:
    r = api.get("/organizations", params={"page[size]": 1001})
    assert r.status_code == 422
    assert error_entries(r)[0]["status"] == "unprocessable_entity"
    assert api.get("/organizations", params={"page[size]": 0}).status_code == 422
    assert api.get("/organizations", params={"page[size]": "ten"}).status_code == 400
    assert api.get("/organizations", params={"page[number]": 0}).status_code == 400
    assert api.get("/organizations", params={"page[size]": 1000}).status_code == 200


def test_filters_with_escaped_commas_lists_and_unknown_keys(api: Api) -> None:
    api.org("Kub, Reynolds and Gibson")
    api.org("Kub")
    api.org("Reynolds and Gibson")
    other = api.org("Other")

    def names(**params: str) -> list[str]:
        r = api.get("/organizations", params=params)
        assert r.status_code == 200, r.text
        return sorted(d["attributes"]["name"] for d in r.json()["data"])

    assert names(**{"filter[name]": r"Kub\, Reynolds and Gibson"}) == ["Kub, Reynolds and Gibson"]
    assert names(**{"filter[name]": "Kub,Other"}) == ["Kub", "Other"]
    assert names(**{"filter[id]": other["id"]}) == ["Other"]
    assert names(**{"filter[exclude][name]": "Kub"}) == [
        "Kub, Reynolds and Gibson",
        "Other",
        "Reynolds and Gibson",
    ]
    # unknown filter keys are silently ignored: the full set comes back
    assert len(names(**{"filter[colour]": "blue"})) == 4
    r = api.get("/organizations", params={"filter[name]": "Kub"})
    assert r.json()["meta"]["filters"] == {"name": "Kub"}


def test_filters_by_reference_and_kebab_spelling(api: Api) -> None:
    a, b = api.org("A"), api.org("B")
    ct = api.config_type()
    for n in range(3):
        api.configuration(a["id"], ct["id"], f"a{n}")
    api.configuration(b["id"], ct["id"], "b0")
    for key in ("filter[organization_id]", "filter[organization-id]"):
        r = api.get("/configurations", params={key: a["id"]})
        assert r.json()["meta"]["total-count"] == 3


def test_nested_routes_ignore_filters(api: Api) -> None:
    a = api.org("A")
    ct = api.config_type()
    for n in range(3):
        api.configuration(a["id"], ct["id"], f"host{n}")
    nested = f"/organizations/{a['id']}/relationships/configurations"
    r = api.get(nested, params={"filter[name]": "host1"})
    assert r.json()["meta"]["total-count"] == 3
    r = api.get("/configurations", params={"filter[name]": "host1"})
    assert r.json()["meta"]["total-count"] == 1
    assert api.get("/organizations/999/relationships/configurations").status_code == 404


def test_sort_ascending_descending_and_multi_key(api: Api) -> None:
    for name in ("beta", "alpha", "gamma", "alpha"):
        api.org(name)

    def order(sort: str) -> list[tuple[str, int]]:
        r = api.get("/organizations", params={"sort": sort})
        assert r.status_code == 200, r.text
        return [(d["attributes"]["name"], int(d["id"])) for d in r.json()["data"]]

    asc = order("name")
    assert [n for n, _ in asc] == ["alpha", "alpha", "beta", "gamma"]
    desc = order("-name")
    assert [n for n, _ in desc] == ["gamma", "beta", "alpha", "alpha"]
    multi = order("name,-id")
    assert multi[0][1] > multi[1][1]
    assert order("-id") == sorted(asc, key=lambda t: -t[1])
    assert api.get("/organizations", params={"sort": "colour"}).status_code == 400


def test_include_attachments_on_configurations_and_documents(api: Api) -> None:
    org = api.org()
    ct = api.config_type()
    cfg = api.configuration(org["id"], ct["id"], "srv")
    doc = api.document(org["id"])
    assert api.attach("configurations", cfg["id"], b"cfg", "c.txt").status_code == 201
    assert api.attach("documents", doc["id"], b"doc", "d.txt").status_code == 201
    r = api.get("/configurations", params={"include": "attachments"})
    body = r.json()
    (item,) = body["data"]
    att_ids = [x["id"] for x in item["relationships"]["attachments"]["data"]]
    assert [x["id"] for x in body["included"]] == att_ids
    assert body["included"][0]["type"] == "attachments"
    r = api.get(f"/configurations/{cfg['id']}", params={"include": "attachments,nonsense"})
    assert r.json()["included"][0]["attributes"]["name"] == "c.txt"
    r = api.get(f"/documents/{doc['id']}", params={"include": "attachments"})
    assert r.json()["data"]["relationships"]["attachments"]["data"][0]["type"] == "attachments"
    # without include: no sideloads
    assert "included" not in api.get(f"/configurations/{cfg['id']}").json()


def test_flexible_assets_index_requires_type_filter(api: Api) -> None:
    r = api.get("/flexible_assets")
    assert r.status_code == 422
    r = api.get("/flexible_assets", params={"filter[flexible-asset-type-id]": "1"})
    assert r.status_code == 200
    assert r.json()["data"] == []


def test_seed_is_fast_enough_for_ten_thousand(api: Api, emu: Emulator) -> None:
    created = emu.seed({"organizations": 20, "configurations": 10000})
    assert created == {"organizations": 20, "configurations": 10000}
    r = api.get("/configurations", params={"page[size]": 1000, "page[number]": 10})
    assert r.json()["meta"]["total-count"] == 10000
    assert len(r.json()["data"]) == 1000
    assert "next" not in r.json()["links"]


def test_email_boolean_and_date_range_filters(api: Api) -> None:
    org = api.org()
    for first, important in (("Ann", True), ("Bob", False)):
        api.create(
            "/contacts",
            "contacts",
            first_name=first,
            organization_id=org["id"],
            important=important,
            contact_emails=[{"value": f"{first.lower()}@x.test", "primary": True}],
        )

    def firsts(**params: str) -> list[str]:
        r = api.get("/contacts", params=params)
        assert r.status_code == 200, r.text
        return [d["attributes"]["first-name"] for d in r.json()["data"]]

    assert firsts(**{"filter[primary_email]": "ANN@x.test"}) == ["Ann"]
    assert firsts(**{"filter[important]": "false"}) == ["Bob"]
    today = org["attributes"]["created-at"][:10]
    assert (
        len(api.get("/organizations", params={"filter[created_at]": f"{today},*"}).json()["data"])
        == 1
    )
    assert (
        api.get("/organizations", params={"filter[created_at]": "*,2000-01-01"}).json()["data"]
        == []
    )


def test_links_keep_escaped_filters_and_sort_across_pages(api: Api) -> None:
    for _ in range(3):
        api.org("Kub, Reynolds")
    api.org("Kub")
    r = api.get(
        "/organizations", params={"filter[name]": r"Kub\, Reynolds", "sort": "-id", "page[size]": 1}
    )
    ids = []
    body = r.json()
    while True:
        ids += [int(d["id"]) for d in body["data"]]
        if "next" not in body["links"]:
            break
        body = api.get(body["links"]["next"]).json()
    assert len(ids) == 3 and ids == sorted(ids, reverse=True)
    assert body["meta"]["filters"] == {"name": r"Kub\, Reynolds"}
