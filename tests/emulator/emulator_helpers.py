"""HTTP helper for the emulator tests (imported by the tests and conftest).

Calls pass ``verify=<the emulator's CA>`` on every request: a session-level ``verify``
would lose to ``REQUESTS_CA_BUNDLE`` from the environment.
"""

from __future__ import annotations

import base64
from typing import Any

import requests

from itglue_emulator import Emulator

JSONAPI = "application/vnd.api+json"


class Api:
    def __init__(self, emu: Emulator, key: str | None = None) -> None:
        self.emu = emu
        self.key = emu.api_key if key is None else key
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, path: str, *, key: Any = ..., **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})
        api_key = self.key if key is ... else key
        if api_key is not None:
            headers["x-api-key"] = api_key
        if "json" in kw:
            headers.setdefault("Content-Type", JSONAPI)
        url = path if path.startswith("http") else self.emu.base_url + path
        return self.session.request(
            method, url, headers=headers, verify=self.emu.ca_file or True, timeout=30, **kw
        )

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        if body is not None:
            kw["json"] = body
        return self.request("POST", path, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        if body is not None:
            kw["json"] = body
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        if body is not None:
            kw["json"] = body
        return self.request("DELETE", path, **kw)

    # -- creation shortcuts (they assert success) ----------------------------------------

    def create(self, path: str, type_: str, **attributes: Any) -> dict[str, Any]:
        r = self.post(path, {"data": {"type": type_, "attributes": attributes}})
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()["data"]
        return data

    def org(self, name: str = "Acme", **attrs: Any) -> dict[str, Any]:
        return self.create("/organizations", "organizations", name=name, **attrs)

    def config_type(self, name: str = "Server") -> dict[str, Any]:
        return self.create("/configuration_types", "configuration-types", name=name)

    def configuration(self, org_id: str, type_id: str, name: str, **attrs: Any) -> dict[str, Any]:
        return self.create(
            "/configurations",
            "configurations",
            name=name,
            organization_id=org_id,
            configuration_type_id=type_id,
            **attrs,
        )

    def document(self, org_id: str, name: str = "Doc", **attrs: Any) -> dict[str, Any]:
        return self.create(
            f"/organizations/{org_id}/relationships/documents", "documents", name=name, **attrs
        )

    def attach(
        self, parent: str, parent_id: str, content: bytes, file_name: str
    ) -> requests.Response:
        body = {
            "data": {
                "type": "attachments",
                "attributes": {
                    "attachment": {
                        "content": base64.b64encode(content).decode(),
                        "file_name": file_name,
                    }
                },
            }
        }
        return self.post(f"/{parent}/{parent_id}/relationships/attachments", body)


def error_entries(r: requests.Response) -> list[dict[str, Any]]:
    assert r.headers["Content-Type"].startswith(JSONAPI), r.headers
    errors: list[dict[str, Any]] = r.json()["errors"]
    assert errors
    return errors
