"""The daemon's ``/metrics`` after a run of 50 records with injected faults: every
counter and gauge has the value the run implies, scraped over HTTP and parsed by
``prometheus_client.parser``; ``/healthz`` and ``/readyz`` answer 200 meanwhile."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.observability.obs_helpers import (
    KEY_ENV,
    Samples,
    daemon_settings,
    running_daemon,
    scrape,
    total,
    value,
)
from tests.waiting import wait_for


@pytest.fixture
def emu() -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="obs-key", seed="demo", random_seed=3) as e:
        yield e


def files(drop: Path) -> None:
    """40 distinct files for two organizations, 5 copies of Acme files (duplicates) and
    5 files for an organization IT Glue does not know (they fail: routing)."""
    for org in ("Acme Corp", "Globex"):
        (drop / org).mkdir(parents=True)
        for i in range(20):
            (drop / org / f"{org[:4]}-{i:02}.txt").write_text(f"{org} report {i}\n" * (i + 1))
    for i in range(5):
        (drop / "Acme Corp" / f"copy-{i}.txt").write_text(f"Acme Corp report {i}\n" * (i + 1))
    (drop / "Nowhere Ltd").mkdir()
    for i in range(5):
        (drop / "Nowhere Ltd" / f"lost-{i}.txt").write_text(f"lost {i}\n")


def settled(url: str) -> Samples | None:
    s = scrape(url)
    done = total(s, "itglue_ingest_records", state="done")
    dup = total(s, "itglue_ingest_records", state="duplicate")
    failed = total(s, "itglue_ingest_records", state="failed")
    acked = total(s, "itglue_ingest_records_failed_total", reason="routing") == 5
    return s if (done, dup, failed) == (40, 5, 5) and acked else None


def test_metrics_after_50_records_with_faults(
    emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, emu.api_key)
    drop = tmp_path / "drop"
    files(drop)
    # 3 uploads answered 503 (a POST is not retried on 503: each record waits and is
    # retried), and a storm of 4 429 answers (the client waits them out)
    emu.set_faults(errors=[{"next": 3, "status": 503, "methods": ["POST"]}], storm={"next": 4})
    settings = daemon_settings(
        emu.base_url, tmp_path / "state", drop, ca_file=emu.ca_file, probe_interval=60
    )
    with running_daemon(settings) as (_engine, url):
        s = wait_for(lambda: settled(url), timeout=60, message="50 records to settle")
        t0 = time.perf_counter()
        s = scrape(url)
        scrape_seconds = time.perf_counter() - t0
        health = requests.get(f"{url}/healthz", timeout=5)
        ready = requests.get(f"{url}/readyz", timeout=5)
        raw = requests.get(f"{url}/metrics", timeout=5).text + health.text + ready.text
        assert emu.api_key not in raw  # the endpoint never shows the key
        assert "Acme" not in raw and ".txt" not in raw  # nor organizations or file names

        # the API attempts the client counted are the requests the emulator answered
        def same_total() -> tuple[float, int] | None:
            before = total(scrape(url), "itglue_ingest_api_request_duration_seconds_count")
            answered = sum(
                r["count"] for r in emu.state()["requests"] if not r["route"].startswith("/_")
            )
            after = total(scrape(url), "itglue_ingest_api_request_duration_seconds_count")
            return (after, answered) if before == after == answered else None

        attempts, answered = wait_for(same_total, message="the client's count = the emulator's")
    print(f"\nscrape of /metrics: {scrape_seconds * 1000:.1f} ms")

    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert ready.status_code == 200, ready.json()
    src = {"source": "drop"}
    assert value(s, "itglue_ingest_records_received_total", **src) == 50
    assert value(s, "itglue_ingest_records_delivered_total", **src) == 40
    assert value(s, "itglue_ingest_records_duplicate_total", **src) == 5
    assert total(s, "itglue_ingest_records_failed_total", **src) == 5
    assert value(s, "itglue_ingest_records_failed_total", source="drop", reason="routing") == 5
    assert value(s, "itglue_ingest_records_retried_total", **src) == 3  # the three 503s
    assert value(s, "itglue_ingest_delivery_latency_seconds_count", **src) == 40
    assert value(s, "itglue_ingest_delivery_latency_seconds_bucket", le="+Inf", **src) == 40
    # the ledger, read at scrape time
    me = socket.gethostname()  # [state] collector's default
    assert value(s, "itglue_ingest_records", collector=me, source="drop", state="done") == 40
    assert value(s, "itglue_ingest_records", collector=me, source="drop", state="received") == 0
    assert value(s, "itglue_ingest_oldest_pending_age_seconds") == 0
    assert value(s, "itglue_ingest_spool_bytes") == 0
    assert value(s, "itglue_ingest_spool_records") == 0
    assert value(s, "itglue_ingest_state_disk_free_bytes") > 0
    # the client's own RED metrics, exported
    assert total(s, "itglue_ingest_api_request_duration_seconds_count", status="503") == 3
    assert total(s, "itglue_ingest_api_request_duration_seconds_count", status="429") == 4
    assert value(s, "itglue_ingest_api_rate_limited_total") == 4
    assert value(s, "itglue_ingest_api_retries_total") == 0  # 429 waits are not retries
    assert attempts == answered > 0
    assert value(s, "itglue_ingest_api_circuit_breaker_state", state="closed") == 1
    assert value(s, "itglue_ingest_api_circuit_breaker_state", state="open") == 0
    assert value(s, "itglue_ingest_api_key_accepted") == 1
    assert value(s, "itglue_ingest_api_reachable") == 1
    assert 0 < value(s, "itglue_ingest_api_rate_budget_remaining") <= 3000
    # the source
    assert value(s, "itglue_ingest_source_connected", **src) == 1
    assert value(s, "itglue_ingest_source_last_scan_timestamp_seconds", **src) > 0
    assert value(s, "itglue_ingest_last_delivery_timestamp_seconds") > 0
    assert value(s, "itglue_ingest_storage_trouble") == 0
    # and the emulator holds what the counters say
    assert len(emu.records("documents")) == 40
