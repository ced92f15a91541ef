"""Injected faults: 5xx rates, 429 storms, latency, commit-then-drop."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
import requests

from itglue_emulator import Emulator, EmulatorError
from tests.emulator.emulator_helpers import Api, error_entries

MakeApi = Callable[..., AbstractContextManager[Api]]


def test_error_rate_scoped_by_method_and_path(api: Api, emu: Emulator) -> None:
    org = api.org()
    ct = api.config_type()
    emu.set_faults(error_rate=1.0, methods=["GET"], path_prefix="/configurations", status=503)
    r = api.get("/configurations")
    assert r.status_code == 503
    assert error_entries(r)[0]["status"] == "503"
    assert api.get("/organizations").status_code == 200
    api.configuration(org["id"], ct["id"], "still-writable")  # POST is not in scope
    emu.set_faults()
    assert api.get("/configurations").status_code == 200


def test_error_rate_is_reproducible_with_a_seed(api: Api, emu: Emulator) -> None:
    def run() -> list[int]:
        emu.set_faults(seed=7, errors=[{"rate": 0.5, "status": 502}])
        return [api.get("/organizations").status_code for _ in range(30)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 502}


def test_error_next_n_then_healthy(api: Api, emu: Emulator) -> None:
    emu.set_faults(errors=[{"next": 2, "status": 504, "methods": ["GET"]}])
    codes = [api.get("/organizations").status_code for _ in range(4)]
    assert codes == [504, 504, 200, 200]
    assert emu.state()["faults"]["errors"][0]["next"] == 0


def test_storm_next_n(make_api: MakeApi) -> None:
    with make_api(retry_after=True) as api:
        api.emu.set_faults(storm={"next": 3})
        responses = [api.get("/organizations") for _ in range(4)]
        assert [r.status_code for r in responses] == [429, 429, 429, 200]
        assert responses[0].headers["Retry-After"] == "1"
        assert error_entries(responses[0])[0]["status"] == "429"


def test_storm_time_window_without_retry_after(api: Api, emu: Emulator) -> None:
    emu.set_faults(storm_seconds=1.5)
    started = time.monotonic()  # the storm started before this
    r = api.get("/organizations")
    assert r.status_code == 429
    assert "Retry-After" not in r.headers
    time.sleep(max(0.0, 1.6 - (time.monotonic() - started)))  # deliberate: the window ends
    assert api.get("/organizations").status_code == 200


def test_latency_fixed_and_jitter(api: Api, emu: Emulator) -> None:
    emu.set_faults(latency={"ms": 600, "jitter_ms": 50, "path_prefix": "/organizations"})
    start = time.monotonic()
    assert api.get("/organizations").status_code == 200
    assert time.monotonic() - start >= 0.6
    start = time.monotonic()
    assert api.get("/contacts").status_code == 200  # out of scope: no added delay
    assert time.monotonic() - start < 0.6
    assert emu.state()["faults"]["latency"]["ms"] == 600


def test_commit_then_drop_stores_the_write_but_sends_nothing(api: Api, emu: Emulator) -> None:
    emu.set_faults(drop_next=1)
    with pytest.raises(requests.ConnectionError):
        api.post(
            "/organizations", {"data": {"type": "organizations", "attributes": {"name": "Ghost"}}}
        )
    names = [o["name"] for o in emu.state()["records"]["organizations"]]
    assert names == ["Ghost"]  # committed although the client saw no answer
    # the next write answers normally; a blind retry would have made a duplicate
    api.org("Ghost")
    assert [o["name"] for o in emu.state()["records"]["organizations"]] == ["Ghost", "Ghost"]
    dropped = [q for q in emu.state()["requests"] if q["dropped"]]
    assert dropped == [
        {"method": "POST", "route": "/organizations", "status": 201, "dropped": True, "count": 1}
    ]


def test_commit_then_drop_on_patch_by_rate(api: Api, emu: Emulator) -> None:
    org = api.org("Before")
    emu.set_faults(drop=[{"rate": 1.0, "methods": ["PATCH"]}])
    with pytest.raises(requests.ConnectionError):
        api.patch(
            f"/organizations/{org['id']}",
            {"data": {"type": "organizations", "attributes": {"name": "After"}}},
        )
    assert emu.state()["records"]["organizations"][0]["name"] == "After"
    assert api.get(f"/organizations/{org['id']}").status_code == 200  # reads unaffected


def test_faults_at_start_and_invalid_documents(make_api: MakeApi) -> None:
    with make_api(faults={"errors": [{"next": 1, "status": 500}]}, tls=False) as api:
        assert api.emu.base_url.startswith("http://")
        assert api.get("/organizations").status_code == 500
        assert api.get("/organizations").status_code == 200
        for bad in (
            {"error_rate": 2},
            {"bogus": 1},
            {"errors": [{"status": 404}]},
            {"latency": {"ms": -1}},
            {"errors": [{"path_prefix": "x"}]},
        ):
            with pytest.raises(EmulatorError):
                api.emu.set_faults(**bad)
