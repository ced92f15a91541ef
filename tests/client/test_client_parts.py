"""ITGlueClient built from its parts: defaults that create no files, injected parts used."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests

from core_client import (
    CircuitBreaker,
    CircuitOpenError,
    ClientClosedError,
    ConfigurationError,
    InsecureURLError,
    ITGlueClient,
    Metrics,
    RateLimiter,
    RetryPolicy,
    ServerError,
    Timeouts,
)
from core_client.transport import default_adapter

from .conftest import requests_seen


def _files(*roots: Path) -> set[Path]:
    return {p for root in roots if root.exists() for p in root.rglob("*")}


def test_the_direct_constructor_creates_no_files(
    itglue_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = Path(os.environ["XDG_STATE_HOME"]).parent  # the test's private XDG folders
    home = tmp_path / "home"
    cwd = tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    before = _files(xdg, home, cwd)
    with ITGlueClient(
        itglue_emulator.base_url, itglue_emulator.api_key, ca_bundle=itglue_emulator.ca_file
    ) as client:
        org = client.create_organization("No Files")
        assert [o.id for o in client.organizations.list()] == [org.id]
        assert client.health_check().healthy
        assert client.state_dir is None and client.rate_limiter.state_path is None
        with pytest.raises(ConfigurationError, match="no metadata cache"):
            client.cache  # noqa: B018 - the property is what is tested
    assert _files(xdg, home, cwd) == before


def test_from_instance_keeps_the_shared_state(itglue_emulator: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with ITGlueClient.from_instance(
        "inst",
        state,
        base_url=itglue_emulator.base_url,
        api_key=itglue_emulator.api_key,
        ca_bundle=itglue_emulator.ca_file,
    ) as client:
        assert client.state_dir == state and state.stat().st_mode & 0o777 == 0o700
        assert (state / "inst.ratelimit").exists()
        assert not (state / "inst.db").exists()  # the cache opens on first use
        client.cache.get_statistics()
        assert (state / "inst.db").exists()


def test_from_instance_creates_nothing_for_a_bad_configuration(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with pytest.raises(InsecureURLError):
        ITGlueClient.from_instance("x", state, base_url="http://10.0.0.1", api_key="k-123456")
    with pytest.raises(ConfigurationError):
        ITGlueClient.from_instance("x", state, api_key="k-123456", max_retries=-1)
    assert not state.exists()


def test_the_client_uses_the_parts_it_is_given(itglue_emulator: Any) -> None:
    sent: list[str] = []

    class CountingAdapter(requests.adapters.HTTPAdapter):
        def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:
            sent.append(str(request.method))
            return super().send(request, **kw)

    metrics = Metrics()
    limiter = RateLimiter(100, 60.0)
    client = ITGlueClient(
        itglue_emulator.base_url,
        itglue_emulator.api_key,
        ca_bundle=itglue_emulator.ca_file,
        transport=CountingAdapter(max_retries=0),
        limiter=limiter,
        breaker=CircuitBreaker(failure_threshold=1, cooldown=60.0),
        retry=RetryPolicy(max_retries=0),
        timeouts=Timeouts(connect=5.0, read=5.0),
        metrics=metrics,
        instance="parts",
    )
    try:
        client.create_organization("Acme")
        assert sent == ["POST"] and metrics.snapshot().request_count == 1
        assert limiter.acquired == 1
        itglue_emulator.set_faults(errors=[{"rate": 1.0, "status": 500, "methods": ["GET"]}])
        with pytest.raises(ServerError):
            client.get_organization(1)  # max_retries=0: one attempt
        assert requests_seen(itglue_emulator, "GET") == 1
        with pytest.raises(CircuitOpenError):  # threshold 1: open after one failure
            client.get_organization(1)
        report = client.get_metrics()
        assert report.instance == "parts" and report.circuit_breaker_state == "open"
        assert report.request_count == 2 and report.circuit_rejections == 1
    finally:
        itglue_emulator.set_faults()
        client.close()
    with pytest.raises(ClientClosedError):  # the client closed the limiter it was given
        limiter.acquire()


def test_default_adapter_never_retries_underneath() -> None:
    adapter = default_adapter()
    assert adapter.max_retries.total == 0
