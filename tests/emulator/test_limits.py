"""413 body limit (Content-Length and chunked) and the 429 sliding-window rate limit."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import requests

from tests.emulator.emulator_helpers import JSONAPI, Api, error_entries

MakeApi = Callable[..., AbstractContextManager[Api]]


def _attachment_body(size: int) -> bytes:
    content = base64.b64encode(b"a" * size).decode()
    return json.dumps(
        {
            "data": {
                "type": "attachments",
                "attributes": {"attachment": {"content": content, "file_name": "big.bin"}},
            }
        }
    ).encode()


def test_413_when_content_length_exceeds_limit(make_api: MakeApi) -> None:
    with make_api(max_body_bytes=2000) as api:
        api.emu.seed({"configurations": 1})
        cfg = api.emu.state()["records"]["configurations"][0]["id"]
        url = f"/configurations/{cfg}/relationships/attachments"
        ok = api.post(url, data=_attachment_body(1000), headers={"Content-Type": JSONAPI})
        assert ok.status_code == 201
        for size in (2000, 2_000_000):  # just over, and far over (the server drains it)
            r = api.post(url, data=_attachment_body(size), headers={"Content-Type": JSONAPI})
            assert r.status_code == 413
            assert error_entries(r)[0]["status"] == 413
        assert len(api.emu.state()["records"]["attachments"]) == 1
        # the connection was closed after the 413; the next request works normally
        assert api.get("/configurations").status_code == 200
        counts = {(q["route"], q["status"]) for q in api.emu.state()["requests"]}
        assert ("/configurations/:parent_id/relationships/attachments", 413) in counts


def test_413_for_chunked_bodies(make_api: MakeApi) -> None:
    with make_api(max_body_bytes=1000) as api:

        def chunks(total: int) -> Iterator[bytes]:
            body = json.dumps(
                {
                    "data": {
                        "type": "organizations",
                        "attributes": {"name": "n", "description": "d" * total},
                    }
                }
            ).encode()
            for i in range(0, len(body), 300):
                yield body[i : i + 300]

        r = api.post("/organizations", data=chunks(100), headers={"Content-Type": JSONAPI})
        assert r.status_code == 201, r.text
        r = api.post("/organizations", data=chunks(5000), headers={"Content-Type": JSONAPI})
        assert r.status_code == 413
        assert len(api.emu.state()["records"]["organizations"]) == 1


def test_429_without_retry_after_by_default(make_api: MakeApi) -> None:
    with make_api(rate_limit=(5, 60.0)) as api:
        statuses = [api.get("/organizations").status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        r = api.get("/organizations")
        assert r.status_code == 429
        assert "Retry-After" not in r.headers
        (entry,) = error_entries(r)
        assert entry["status"] == "429"
        # inspection routes are neither counted nor limited
        for _ in range(3):
            assert api.emu.state()["records"]["organizations"] == []
        # a wrong key is refused before the budget is consulted
        assert api.get("/organizations", key="bad").status_code == 401


def test_429_with_retry_after_and_window_slides(make_api: MakeApi) -> None:
    import time

    with make_api(rate_limit=(3, 2.0), retry_after=True) as api:
        assert api.get("/organizations").status_code == 200
        first = time.monotonic()  # the server counted the first request before this
        for _ in range(2):
            assert api.get("/organizations").status_code == 200
        r = api.get("/organizations")
        assert r.status_code == 429
        assert r.headers["Retry-After"] in ("1", "2")
        time.sleep(max(0.0, first + 2.05 - time.monotonic()))  # deliberate: the window slides
        assert api.get("/organizations").status_code == 200


def test_rate_limit_is_per_key_budget_not_per_connection(make_api: MakeApi) -> None:
    with make_api(rate_limit=(4, 60.0)) as api:
        for _ in range(2):
            assert api.get("/organizations").status_code == 200
        with requests.Session() as other:
            for _ in range(2):
                r = other.get(
                    api.emu.base_url + "/organizations",
                    headers={"x-api-key": api.emu.api_key},
                    verify=api.emu.ca_file,
                    timeout=10,
                )
                assert r.status_code == 200
            r = other.get(
                api.emu.base_url + "/organizations",
                headers={"x-api-key": api.emu.api_key},
                verify=api.emu.ca_file,
                timeout=10,
            )
            assert r.status_code == 429
