"""Errors, injected faults, the circuit breaker and TLS, against the emulator."""

from __future__ import annotations

import io
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from core_client import (
    AmbiguousOutcomeError,
    AuthenticationError,
    CircuitOpenError,
    InsecureURLError,
    ITGlueClient,
    NotFoundError,
    PayloadTooLargeError,
    ServerError,
    TransportError,
    ValidationError,
)
from itglue_emulator import run_emulator
from tests.client.conftest import ClientFactory, requests_seen
from tests.waiting import wait_for


def test_wrong_key_is_authentication_error(
    itglue_emulator: Any, make_client: ClientFactory
) -> None:
    client = make_client(itglue_emulator, api_key="ITG.wrong-key-0000")
    with pytest.raises(AuthenticationError) as info:
        list(client.list_organizations())
    err = info.value
    assert err.status == 401 and not err.transient
    assert err.errors == [("/id", "Missing or invalid x-api-key header")]
    assert err.request_id and err.request_id in str(err)
    health = client.health_check()
    assert health.status == "unhealthy" and health.api_key_valid is False
    assert client.circuit_breaker.state == "closed"  # 4xx never counts


def test_validation_variants(itglue_emulator: Any, make_client: ClientFactory) -> None:
    client = make_client(itglue_emulator)
    org = client.create_organization("Acme")
    # required reference missing -> "must exist" (detail string, leading slash)
    with pytest.raises(ValidationError) as info:
        client.create_configuration(org.id, "srv", configuration_type_id=999999)
    assert info.value.status == 422
    assert any(
        p.startswith("/data/attributes/configuration-type") and "must exist" in d
        for p, d in info.value.errors
    )
    # blank required attribute -> detail as a list
    with pytest.raises(ValidationError) as info:
        client.create_organization("")
    assert ("/data/attributes/name", "can't be blank") in info.value.errors
    # organization missing -> title only, no detail, pointer without slash
    with pytest.raises(ValidationError) as info:
        client.create_configuration(99999999, "srv")
    assert any("organization" in p and d for p, d in info.value.errors)
    # bulk create of flexible assets -> symbolic status
    with pytest.raises(ValidationError) as info:
        client.request(
            "POST",
            "/flexible_assets",
            json={"data": [{"type": "flexible-assets", "attributes": {}}]},
        )
    assert info.value.errors and all(d for _, d in info.value.errors)
    assert client.circuit_breaker.get_stats()["consecutive_failures"] == 0


def test_not_found(itglue_emulator: Any, make_client: ClientFactory) -> None:
    client = make_client(itglue_emulator)
    with pytest.raises(NotFoundError) as info:
        client.get_organization(123456789)
    assert "123456789" in str(info.value) and info.value.status == 404
    with pytest.raises(NotFoundError):  # POST /documents/:id/publish is not a route
        client.request("POST", "/documents/1/publish")


def test_payload_too_large(make_client: ClientFactory) -> None:
    with run_emulator(max_body_bytes=64 * 1024) as emu:
        client = make_client(emu)
        org = client.create_organization("Acme")
        doc = client.create_document(org.id, "Big")
        with pytest.raises(PayloadTooLargeError) as info:
            client.upload_attachment(
                "documents", doc.id, stream=io.BytesIO(b"x" * 200_000), file_name="big.bin"
            )
        assert info.value.status == 413 and not info.value.transient
        assert emu.state()["records"]["attachments"] == []


def test_20_percent_5xx_on_gets_every_list_complete(
    itglue_emulator: Any, make_client: ClientFactory
) -> None:
    itglue_emulator.seed({"organizations": 30, "configurations": 2500, "contacts": 1200})
    truth = {c: len(rows) for c, rows in itglue_emulator.state()["records"].items()}
    itglue_emulator.set_faults(
        seed=7,
        errors=[
            {"rate": 0.2, "status": 500, "methods": ["GET"]},
            {"rate": 0.05, "status": 503, "methods": ["GET"]},
        ],
    )
    client = make_client(itglue_emulator)
    for _ in range(5):
        assert len(list(client.list_configurations())) == truth["configurations"]
        assert len(list(client.list_organizations())) == truth["organizations"]
        assert len(list(client.list_contacts())) == truth["contacts"]
    failed = requests_seen(itglue_emulator, status=500) + requests_seen(itglue_emulator, status=503)
    assert failed > 0  # the faults did fire
    m = client.get_metrics()
    assert m.retries == failed and m.failed_operations == 0
    assert client.circuit_breaker.state == "closed"


def test_commit_then_drop_on_post_is_ambiguous_without_duplicate(
    itglue_emulator: Any, make_client: ClientFactory
) -> None:
    client = make_client(itglue_emulator)
    before = len(itglue_emulator.state()["records"]["organizations"])
    itglue_emulator.set_faults(drop=[{"next": 1, "methods": ["POST"]}])
    with pytest.raises(AmbiguousOutcomeError) as info:
        client.create_organization("Dropped Inc")
    assert info.value.transient and info.value.method == "POST"
    orgs = itglue_emulator.state()["records"]["organizations"]
    assert len(orgs) == before + 1  # committed exactly once, never resent
    assert requests_seen(itglue_emulator, "POST", "/organizations") == 1
    assert client.get_metrics().ambiguous_outcomes == 1
    # the caller reconciles: the record is there
    assert [o.name for o in client.list_organizations(filters={"name": "Dropped Inc"})] == [
        "Dropped Inc"
    ]


def test_drop_on_upload_is_ambiguous_too(itglue_emulator: Any, make_client: ClientFactory) -> None:
    client = make_client(itglue_emulator)
    org = client.create_organization("Acme")
    doc = client.create_document(org.id, "D")
    itglue_emulator.set_faults(drop=[{"next": 1, "methods": ["POST"], "path_prefix": "/documents"}])
    with pytest.raises(AmbiguousOutcomeError):
        client.upload_attachment(
            "documents", doc.id, stream=io.BytesIO(b"abc" * 1000), file_name="a.txt"
        )
    assert len(itglue_emulator.state()["records"]["attachments"]) == 1


def test_dropped_patch_is_retried(itglue_emulator: Any, make_client: ClientFactory) -> None:
    client = make_client(itglue_emulator)
    org = client.create_organization("Acme")
    itglue_emulator.set_faults(drop=[{"next": 1, "methods": ["PATCH"]}])
    assert client.update_organization(org.id, description="x").description == "x"
    assert requests_seen(itglue_emulator, "PATCH") == 2


def test_post_5xx_before_handler(itglue_emulator: Any, make_client: ClientFactory) -> None:
    client = make_client(itglue_emulator)
    itglue_emulator.set_faults(errors=[{"next": 1, "status": 503, "methods": ["POST"]}])
    with pytest.raises(ServerError) as info:
        client.create_organization("A")
    assert info.value.status == 503 and info.value.transient
    itglue_emulator.set_faults(errors=[{"next": 1, "status": 502, "methods": ["POST"]}])
    with pytest.raises(AmbiguousOutcomeError) as amb:
        client.create_organization("B")
    assert amb.value.status == 502
    assert requests_seen(itglue_emulator, "POST") == 2  # never resent


def test_breaker_opens_fails_fast_and_recovers(
    itglue_emulator: Any, make_client: ClientFactory
) -> None:
    client = make_client(itglue_emulator, max_retries=2, breaker_cooldown=0.5)
    itglue_emulator.set_faults(errors=[{"rate": 1.0, "status": 500}])
    with pytest.raises(ServerError):  # 3 failed attempts
        client.get_organization(1)
    assert client.circuit_breaker.state == "closed"
    # each failed attempt counts: the 5th opens the breaker, the operation stops retrying
    with pytest.raises(CircuitOpenError):
        client.get_organization(1)
    assert requests_seen(itglue_emulator) == 5
    assert client.circuit_breaker.state == "open"
    seen = requests_seen(itglue_emulator)
    with pytest.raises(CircuitOpenError) as info:
        client.get_organization(1)
    assert info.value.transient and 0 < (info.value.retry_after or 0) <= 0.5
    with pytest.raises(CircuitOpenError):
        list(client.list_organizations())
    assert requests_seen(itglue_emulator) == seen  # nothing reached the emulator
    m = client.get_metrics()
    assert m.circuit_breaker_state == "open" and m.circuit_rejections == 3
    assert client.health_check().status == "unhealthy"
    itglue_emulator.set_faults()  # the API recovers
    wait_for(lambda: client.circuit_breaker.state == "half_open", message="the cool-down")
    assert client.circuit_breaker.state == "half_open"
    assert list(client.list_organizations()) == []
    assert client.circuit_breaker.state == "closed"
    assert client.health_check().status == "healthy"


def test_one_operation_retrying_through_an_outage_opens_the_breaker(
    itglue_emulator: Any, make_client: ClientFactory
) -> None:
    """The default 5 retries of one operation are 6 failed attempts: counting operations
    let a lone record retry through a whole outage with the breaker closed."""
    client = make_client(itglue_emulator)
    itglue_emulator.set_faults(errors=[{"rate": 1.0, "status": 503}])
    with pytest.raises(CircuitOpenError) as info:
        client.get_organization(1)
    assert info.value.transient and info.value.retry_after
    assert client.circuit_breaker.state == "open"
    assert requests_seen(itglue_emulator) == 5  # the threshold: no 6th attempt


def test_breaker_probe_is_one_attempt(itglue_emulator: Any, make_client: ClientFactory) -> None:
    client = make_client(itglue_emulator, breaker_threshold=1, breaker_cooldown=0.2)
    itglue_emulator.set_faults(errors=[{"rate": 1.0, "status": 503}])
    with pytest.raises(CircuitOpenError):
        client.get_organization(1)
    wait_for(lambda: client.circuit_breaker.state == "half_open", message="the cool-down")
    seen = requests_seen(itglue_emulator)
    with pytest.raises(CircuitOpenError):  # the probe failed: open again, no retries
        client.get_organization(1)
    assert requests_seen(itglue_emulator) == seen + 1
    assert client.circuit_breaker.state == "open"


def test_breaker_failed_probe_reopens_and_manual_reset(
    itglue_emulator: Any, make_client: ClientFactory
) -> None:
    client = make_client(itglue_emulator, max_retries=0, breaker_cooldown=0.3)
    itglue_emulator.set_faults(errors=[{"rate": 1.0, "status": 502, "methods": ["GET"]}])
    for _ in range(5):
        with pytest.raises(ServerError):
            client.get_organization(1)
    wait_for(lambda: client.circuit_breaker.state == "half_open", message="the cool-down")
    with pytest.raises(ServerError):  # the probe
        client.get_organization(1)
    assert client.circuit_breaker.state == "open"
    client.circuit_breaker.reset()
    itglue_emulator.set_faults()
    assert client.circuit_breaker.state == "closed"
    with pytest.raises(NotFoundError):
        client.get_organization(1)


def test_transport_errors_open_the_breaker(make_client: ClientFactory, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    with run_emulator() as emu:
        base, key = emu.base_url, emu.api_key
        ca.write_bytes(Path(emu.ca_file).read_bytes())
    # the emulator is gone: connection refused (before send) -> retried, then TransportError
    client = ITGlueClient.from_instance(
        "gone",
        base_url=base,
        api_key=key,
        ca_bundle=ca,
        state_dir=tmp_path,
        backoff_base=0.01,
        backoff_max=0.02,
        max_retries=1,
        connect_timeout=2,
    )
    try:
        for _ in range(2):
            with pytest.raises(TransportError) as info:
                client.create_organization("x")  # connect failures are safe to retry, even POST
            assert info.value.transient
        with pytest.raises(CircuitOpenError):  # the 5th failed attempt opened it
            client.create_organization("x")
        assert client.get_metrics().transport_errors == 5
        with pytest.raises(CircuitOpenError):
            client.create_organization("x")
        health = client.health_check()
        assert health.status == "unhealthy" and health.api_key_valid is None
    finally:
        client.close()


def test_tls_verification_is_on(itglue_emulator: Any, tmp_path: Path) -> None:
    client = ITGlueClient.from_instance(
        "t", base_url=itglue_emulator.base_url, api_key="k-1234", state_dir=tmp_path
    )  # no CA bundle: the test CA is not trusted
    try:
        with pytest.raises(TransportError) as info:
            client.get_organization(1)
        assert info.value.transient is False
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
        assert requests_seen(itglue_emulator) == 0
    finally:
        client.close()


def test_plain_http_needs_loopback_opt_in(make_client: ClientFactory, tmp_path: Path) -> None:
    with run_emulator(tls=False) as emu:
        assert emu.base_url.startswith("http://127.0.0.1")
        with pytest.raises(InsecureURLError, match="allow_insecure_loopback"):
            ITGlueClient.from_instance(
                "t", base_url=emu.base_url, api_key=emu.api_key, state_dir=tmp_path
            )
        client = make_client(emu, ca_bundle=None, allow_insecure_loopback=True)
        assert client.create_organization("Plain").name == "Plain"
        assert client.health_check().status == "healthy"


def test_read_timeout_on_get_is_retried_on_post_ambiguous(make_client: ClientFactory) -> None:
    with run_emulator() as emu:
        client = make_client(emu, read_timeout=0.3, max_retries=1)
        emu.set_faults(latency={"ms": 800, "methods": ["GET", "POST"]})
        with pytest.raises(TransportError):
            client.get_organization(1)
        assert requests_seen(emu, "GET") in (0, 2)  # logged when answered, if at all
        with pytest.raises(AmbiguousOutcomeError):
            client.create_organization("Slow")
        emu.set_faults()
        wait_for(lambda: emu.state()["records"]["organizations"], message="the slow create")
        assert len(emu.state()["records"]["organizations"]) == 1


def test_health_check_does_not_block_behind_the_limiter(
    itglue_emulator: Any, make_client: ClientFactory
) -> None:
    client = make_client(itglue_emulator, rate_limit=2, rate_window=60.0)
    assert client.health_check().status == "healthy"
    client.get_json("/organizations", {"page[size]": 1})
    started = time.monotonic()
    health = client.health_check()
    assert time.monotonic() - started < 1.0
    assert health.status == "degraded" and health.api_key_valid is None
    assert "rate limited" in health.error


def test_closed_client_refuses_and_interrupts(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    from core_client import ClientClosedError

    with run_emulator(rate_limit=(100, 60.0)) as emu:
        client = make_client(emu, rate_limit=1, rate_window=60.0)
        client.get_json("/organizations", {"page[size]": 1})
        errors: list[BaseException] = []

        def blocked() -> None:
            try:
                client.get_json("/organizations", {"page[size]": 1})  # waits ~60 s for budget
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=blocked)
        caplog.set_level(logging.DEBUG, logger="itglue_ingest.client.ratelimit")
        t.start()
        wait_for(lambda: "rate limiter: waiting" in caplog.text, message="the blocked request")
        client.close()
        t.join(5)
        assert not t.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], ClientClosedError)
        assert errors[0].transient
        with pytest.raises(ClientClosedError):
            client.get_organization(1)
        assert client.circuit_breaker.state == "closed"  # cancellation is not a failure
        client.close()  # idempotent


def test_an_outage_and_a_429_storm_are_a_few_lines(
    itglue_emulator: Any, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Each failed attempt and each 429 is a DEBUG line; at INFO an outage and a storm
    are a line when they start and one when they end."""
    client = make_client(itglue_emulator, rate_penalty_seconds=0.05)
    org = client.create_organization("Acme")
    caplog.set_level(logging.INFO, logger="itglue_ingest")
    itglue_emulator.set_faults(errors=[{"next": 3, "status": 503, "methods": ["GET"]}])
    assert client.get_organization(org.id).name == "Acme"  # 3 failed attempts, then ok
    itglue_emulator.set_faults(storm={"next": 6})
    assert client.get_organization(org.id).name == "Acme"  # 6 429s waited out
    told = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("itglue_ingest.client") and r.levelno >= logging.INFO
    ]
    assert len(told) == 4, told
    assert told[0] == (
        f"IT Glue unavailable: GET /organizations/{org.id} -> 503; retrying (every attempt"
        " at DEBUG)"
    )
    assert re.fullmatch(r"IT Glue unavailable: recovered after \d+ s, 3 failed attempts", told[1])
    assert told[2].startswith(f"IT Glue rate limit (429): GET /organizations/{org.id}, paused")
    assert re.fullmatch(
        r"IT Glue rate limit \(429\): recovered after \d+ s, 6 429 answers", told[3]
    )
