"""MetadataCache fed by the real client from the emulator over HTTPS: refresh through
the paginated lists, smart_get with API fallback, stale answers while IT Glue is down."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core_client.client import ITGlueClient
from core_client.database import SQLiteDatabase
from core_client.exceptions import CircuitOpenError, ServerError
from core_client.models import Organization
from tests.conftest import DatabaseFactory, everything_stored


@pytest.fixture
def client(
    itglue_emulator: Any, ingest_state_dir: Path, make_database: DatabaseFactory
) -> Iterator[ITGlueClient]:
    c = ITGlueClient.from_instance(
        "test",
        base_url=itglue_emulator.base_url,
        api_key=itglue_emulator.api_key,
        ca_bundle=itglue_emulator.ca_file,
        state_dir=ingest_state_dir,
        cache_database=lambda: make_database("cache"),
        max_retries=1,
        backoff_base=0.01,
        backoff_max=0.02,
        breaker_threshold=3,
        breaker_cooldown=60.0,
    )
    try:
        yield c
    finally:
        c.close()


def _requests(client: ITGlueClient) -> int:
    return int(client.get_metrics().request_count)


def test_refresh_from_the_paginated_lists(client: ITGlueClient, itglue_emulator: Any) -> None:
    acme = client.create_organization("Acme Dental")
    other = client.create_organization("Happy Frog")
    client.create_configuration(
        acme.id, "FW-01", configuration_type_id=_type_id(client, itglue_emulator)
    )
    client.create_contact(other.id, "Ada", last_name="Lovelace")
    cache = client.cache
    assert cache.refresh_organizations(client.list_organizations()) >= 2
    assert cache.refresh_configurations(client.list_configurations()) == 1
    assert cache.refresh_contacts(client.list_contacts()) == 1

    found = cache.find_organization_by_name("ACME DENTAL")
    assert isinstance(found, Organization) and found.id == acme.id
    fw = cache.find_configuration_by_name("fw-01", organization_id=acme.id)
    assert fw is not None and fw.organization_id == acme.id
    assert cache.find_contact_by_name("ada lovelace", organization_id=other.id) is not None
    assert not cache.is_stale("organizations", max_age_hours=1)
    stats = cache.get_statistics()
    assert stats["configuration_count"] == 1 and stats["contact_count"] == 1


def _type_id(client: ITGlueClient, emu: Any) -> str:
    emu.seed({"configuration_types": 1})
    return next(iter(client.list_resources("configuration_types"))).id


def test_smart_get_is_cache_first_with_api_fallback(client: ITGlueClient) -> None:
    org = client.create_organization("Blue River")
    cache = client.cache
    assert cache.invalidate("organizations", org.id)  # the create wrote it through
    before = _requests(client)
    got = cache.smart_get_organization(org.id, api_client=client)  # miss: one GET
    assert got is not None and got.name == "Blue River"
    assert _requests(client) == before + 1
    again = cache.smart_get_organization(org.id, api_client=client)  # hit: no request
    assert again is not None and again.name == "Blue River"
    assert _requests(client) == before + 1
    stats = cache.get_statistics()
    assert stats["hits"] >= 1 and stats["misses"] >= 1
    # max_age=0: the cached copy is too old, the API is asked again
    client.update_organization(org.id, name="Blue River Ltd")
    fresh = cache.smart_get_organization(org.id, api_client=client, max_age=0)
    assert fresh is not None and fresh.name == "Blue River Ltd"
    assert cache.find_organization_by_name("blue river ltd") is not None


def test_stale_data_is_served_while_the_api_is_down(
    client: ITGlueClient, itglue_emulator: Any
) -> None:
    org = client.create_organization("Straße AG")
    cache = client.cache
    assert cache.smart_get_organization(org.id, api_client=client) is not None
    itglue_emulator.set_faults(errors=[{"rate": 1.0, "status": 503, "methods": ["GET"]}])

    stale = cache.smart_get_organization(org.id, api_client=client, max_age=0)  # 5xx
    assert stale is not None and stale.name == "Straße AG"
    # nothing cached for this one: the error propagates (each failed attempt counted for
    # the breaker, which has opened by now)
    with pytest.raises((ServerError, CircuitOpenError)):
        cache.smart_get_organization("999999999", api_client=client)
    assert client.circuit_breaker.get_stats()["state"] == "open"
    with pytest.raises(CircuitOpenError):
        client.get_organization(org.id)
    stale = cache.smart_get_organization(org.id, api_client=client, max_age=0)  # breaker open
    assert stale is not None and stale.id == org.id
    assert cache.get_statistics()["stale_served"] == 2


def test_a_record_deleted_in_it_glue_leaves_the_cache(client: ITGlueClient) -> None:
    org = client.create_organization("Gone Soon")
    cache = client.cache
    cache.put("organizations", org)
    client.organizations.bulk_delete([org.id])
    assert cache.smart_get_organization(org.id, api_client=client, max_age=0) is None
    assert cache.get("organizations", org.id) is None


def test_documents_recorded_after_upload_and_refreshed(
    client: ITGlueClient, tmp_path: Path
) -> None:
    org = client.create_organization("Docs Inc")
    f = tmp_path / "scan.pdf"
    f.write_bytes(b"%PDF-1.4 scanned page\n")
    digest = hashlib.sha256(f.read_bytes()).hexdigest()
    doc = client.create_document(org.id, "Scan 2026-11-25")
    att = client.upload_attachment("documents", doc.id, path=f)
    cache = client.cache
    cache.record_document(doc, sha256=digest, size=f.stat().st_size, attachment_ids=[att.id])

    assert [d.id for d in cache.find_documents_by_hash(digest, organization_id=org.id)] == [doc.id]
    # a full refresh of the organization's documents keeps what the sink recorded
    assert cache.refresh_documents(client.list_documents(org.id), organization_id=org.id) == 1
    kept = cache.find_documents_by_hash(digest)
    assert len(kept) == 1 and kept[0].attachment_ids == (att.id,)
    assert kept[0].organization_id == org.id and kept[0].name == "Scan 2026-11-25"
    got = cache.smart_get_document(doc.id, api_client=client)
    assert got is not None and got.name == "Scan 2026-11-25"


def test_the_api_key_never_reaches_the_database(
    itglue_emulator: Any, ingest_state_dir: Path, make_database: DatabaseFactory
) -> None:
    key = itglue_emulator.api_key
    with ITGlueClient.from_instance(
        "canary",
        base_url=itglue_emulator.base_url,
        api_key=key,
        ca_bundle=itglue_emulator.ca_file,
        state_dir=ingest_state_dir,
        cache_database=lambda: make_database("cache"),
    ) as c:
        org = c.create_organization("Canary Org")
        c.cache.refresh_organizations(c.list_organizations())
        c.cache.smart_get_organization(org.id, api_client=c, max_age=0)
        c.cache.record_document("1", sha256="0" * 64, size=1, organization_id=org.id)
        c.cache.vacuum()
    stored = everything_stored(make_database("inspect"))
    assert "Canary Org" in stored and key not in stored
    database = make_database("inspect")
    if isinstance(database, SQLiteDatabase):  # and not in the file's free pages either
        for p in database.path.parent.glob(database.path.name + "*"):
            assert key.encode() not in p.read_bytes()
