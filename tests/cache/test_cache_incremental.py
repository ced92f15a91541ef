"""The cache keeps itself current: the client writes what it reads through, and a
refresh asks IT Glue only for what changed (request counts from the emulator)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from core_client.cache.incremental import CacheRefresher, filter_time, parse_time
from core_client.client import ITGlueClient
from pipeline.commands.client import cache as cache_command
from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.testing import with_sections
from tests.conftest import DatabaseFactory
from tests.waiting import wait_for

OLD = "2026-01-01T00:00:00.000Z"


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
    )
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def other(itglue_emulator: Any) -> Iterator[ITGlueClient]:
    """Someone else changing the account: a client without a cache."""
    with ITGlueClient(
        itglue_emulator.base_url, itglue_emulator.api_key, ca_bundle=itglue_emulator.ca_file
    ) as c:
        yield c


def _gets(emu: Any, collection: str) -> int:
    return sum(
        r["count"]
        for r in emu.state()["requests"]
        if r["method"] == "GET" and r["route"].lstrip("/").split("/")[0] == collection
    )


def _seed_configurations(emu: Any, n: int) -> None:
    emu.add_records(
        {
            "organizations": [{"id": 1, "name": "Acme", "updated-at": OLD, "created-at": OLD}],
            "configurations": [
                {
                    "id": 100_000 + i,
                    "organization-id": 1,
                    "name": f"host-{i:05d}",
                    "hostname": f"host-{i:05d}.acme.local",
                    "created-at": OLD,
                    "updated-at": OLD,
                }
                for i in range(n)
            ],
        }
    )


def test_a_refresh_of_10000_configurations_with_50_changed_costs_one_request(
    client: ITGlueClient, other: ITGlueClient, itglue_emulator: Any
) -> None:
    _seed_configurations(itglue_emulator, 10_000)
    refresher = CacheRefresher(client)
    first = refresher.refresh("configurations")  # never refreshed: the full listing
    assert (first.mode, first.records, first.requests) == ("full", 10_000, 10)
    assert client.cache.refresh_info("configurations")["watermark"] == OLD

    changed = [100_000 + i * 200 for i in range(50)]
    other.configurations.bulk_update([{"id": i, "notes": "patched"} for i in changed])
    before = _gets(itglue_emulator, "configurations")
    result = refresher.refresh("configurations")

    assert _gets(itglue_emulator, "configurations") - before == result.requests == 1
    assert (result.mode, result.records) == ("incremental", 50)
    assert client.cache.get("configurations", changed[7]).attr("notes") == "patched"
    assert client.cache.count("configurations") == 10_000
    # nothing changed since: one request again, nothing written
    again = refresher.refresh("configurations")
    assert (again.mode, again.records, again.requests) == ("incremental", 0, 1)


def test_a_deletion_elsewhere_is_noticed_by_the_count(
    client: ITGlueClient, other: ITGlueClient, itglue_emulator: Any
) -> None:
    _seed_configurations(itglue_emulator, 30)
    refresher = CacheRefresher(client)
    refresher.refresh("configurations")
    other.configurations.bulk_delete(["100003", "100004"])
    result = refresher.refresh("configurations")
    assert result.mode == "full" and result.records == 28
    assert result.requests == 2  # the incremental page, then the full listing
    assert client.cache.get("configurations", "100003") is None


def test_organizations_are_asked_with_filter_updated_at(
    client: ITGlueClient, other: ITGlueClient, itglue_emulator: Any
) -> None:
    itglue_emulator.add_records(
        {
            "organizations": [
                {"id": i, "name": f"Org {i}", "created-at": OLD, "updated-at": _later(i)}
                for i in range(1, 2501)
            ]
        }
    )
    refresher = CacheRefresher(client)
    assert refresher.refresh("organizations").requests == 3  # full: 3 pages
    other.update_organization("42", quick_notes="moved office")
    result = refresher.refresh("organizations")
    # the changed records (one page) and the count (page[size]=1), not the 3 pages
    assert (result.mode, result.records, result.requests) == ("incremental", 1, 2)
    assert client.cache.get("organizations", "42").attr("quick_notes") == "moved office"


def _later(seconds: int) -> str:
    return f"2026-01-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"


def test_times_are_compared_as_times() -> None:
    moment = parse_time("2026-03-04T05:06:07.890Z")
    assert moment is not None and filter_time(moment) == "2026-03-04T05:06:07Z"
    assert parse_time("yesterday") is None and parse_time(None) is None


def test_client_reads_write_through_and_cache_stats_show_them(
    itglue_emulator: Any,
    ingest_state_dir: Path,
    make_database: DatabaseFactory,
    state_config: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A run of client-only lists and gets: the rows are in the cache and in stats."""
    _seed_configurations(itglue_emulator, 5)
    itglue_emulator.seed({"configuration_types": 2})
    # the client of the configuration (same state database as `cache stats` reads)
    with ITGlueClient.from_instance(
        "test",
        base_url=itglue_emulator.base_url,
        api_key=itglue_emulator.api_key,
        ca_bundle=itglue_emulator.ca_file,
        state_dir=ingest_state_dir,
        cache_database=make_database("cache"),
    ) as c:
        assert len(list(c.configurations.list())) == 5
        assert c.get_organization("1").name == "Acme"
        assert len(list(c.configuration_types.list())) == 2
        docs = c.documents.within("1")
        doc = docs.create(name="Runbook")
        assert [d.id for d in docs.list()] == [doc.id]
        with caplog.at_level(logging.DEBUG, logger="itglue_ingest.cache"):
            c.documents.delete(doc.id)
        assert f"documents {doc.id} invalidated" in caplog.text
        cache = c.cache
        assert cache.get("configurations", "100003").attr("hostname") == "host-00003.acme.local"
        assert cache.get("documents", doc.id) is None
        assert cache.find_organization_by_name("acme") is not None  # a hit
        assert cache.find_organization_by_name("nobody") is None  # a miss

    out = CliRunner().invoke(cache_command, ["stats", "-c", str(state_config)])
    assert out.exit_code == 0, out.output
    lines = {line.split(":")[0].strip(): line for line in out.output.splitlines()}
    assert lines["configurations"].split()[1] == "5"
    assert lines["organizations"].split()[1] == "1"
    assert lines["configuration_types"].split()[1] == "2"
    # 5 + 1 + 2 + 1 created + 1 listed
    assert "written through: 10 rows" in out.output
    assert "hit ratio 50.0% (2 hits, 2 misses)" in out.output
    assert "never refreshed" in lines["configurations"]


def test_the_daemon_refreshes_every_kind_on_its_interval(
    itglue_emulator: Any,
    ingest_settings: Any,
    other: ITGlueClient,
    state_backend: str,
    state_location: str,
) -> None:
    _seed_configurations(itglue_emulator, 3)
    state = {"backend": "postgresql", "dsn": state_location} if state_backend != "sqlite" else {}
    settings = with_sections(ingest_settings, cache={"refresh_interval": 3}, state=state)
    engine = Engine(settings, get_plugin_manager(load_entrypoints=False))
    engine.context.itglue()  # as `run` does for the itglue sink
    stop = threading.Event()
    thread = threading.Thread(target=engine.run, args=(stop,), daemon=True)
    thread.start()
    try:
        cache = engine.context.metadata_cache()
        wait_for(lambda: cache.last_refresh("configurations"), message="the first refresh")
        assert cache.count("configurations") == 3
        assert cache.refresh_info("configurations")["mode"] == "full"
        other.configurations.bulk_update([{"id": 100_001, "name": "renamed"}])
        wait_for(
            lambda: cache.get("configurations", "100001").name == "renamed",
            message="the scheduled refresh to pick the change up",
        )
        info = cache.refresh_info("configurations")
        assert info["mode"] == "incremental" and info["requests"] == 1
        assert cache.last_refresh("configuration_types") is not None
    finally:
        stop.set()
        thread.join(30)
        engine.close()
    assert not thread.is_alive()


def test_no_refresh_for_a_pipeline_that_never_talks_to_it_glue(
    itglue_emulator: Any, ingest_settings: Any
) -> None:
    settings = with_sections(ingest_settings, cache={"refresh_interval": 1})
    engine = Engine(settings, get_plugin_manager(load_entrypoints=False))
    stop = threading.Event()
    thread = threading.Thread(target=engine.run, args=(stop,), daemon=True)
    earlier = set(threading.enumerate())  # an earlier test's engine may still be closing
    thread.start()
    try:
        loop = wait_for(lambda: _refresh_thread(earlier), message="the refresh thread")
        time.sleep(1.5)  # longer than refresh_interval: a refresh would have started
        assert loop.is_alive()
    finally:
        stop.set()
        thread.join(30)
        engine.close()
    assert itglue_emulator.state()["request_total"] == 0


def _refresh_thread(earlier: set[threading.Thread]) -> threading.Thread | None:
    """This engine's cache refresh thread (not one of ``earlier``), once it runs.

    ``threading.enumerate()`` also lists a thread whose ``start()`` has not
    returned yet, and such a thread is not alive until it has bootstrapped.
    """
    return next(
        (
            t
            for t in threading.enumerate()
            if t.name == "cache-refresh" and t not in earlier and t.is_alive()
        ),
        None,
    )
