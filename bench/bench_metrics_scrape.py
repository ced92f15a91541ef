"""How long a scrape of ``/metrics`` takes on a big ledger.

The collector reads the ledger at scrape time (records per source and state, the oldest
pending record, the spool's load), so its cost grows with the ledger. This fills a
ledger with ``--records`` rows over 5 sources (97% done, 1% each failed, duplicate and
received), serves it with the daemon's endpoint on 127.0.0.1 and prints p50/p95 of a
full HTTP scrape and of the collector alone.

Run: ``.venv/bin/python bench/bench_metrics_scrape.py [--records 200000] [--scrapes 30]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests
from prometheus_client import CollectorRegistry, generate_latest

from pipeline.ledger import Ledger
from pipeline.observability.collector import EngineCollector, EngineParts
from pipeline.observability.health import Health
from pipeline.observability.server import ObservabilityServer
from pipeline.observability.source_health import SourceHealth
from pipeline.observability.tally import Tally

SOURCES = ["scans", "mailbox", "feed", "share-a", "share-b"]


def fill(ledger: Ledger, n: int) -> None:
    """``n`` rows in one transaction (a bench shortcut: the engine inserts one by one)."""
    now = time.time()
    rows = []
    for i in range(n):
        state = {0: "failed", 1: "duplicate", 2: "received"}.get(i % 100, "done")
        rows.append((SOURCES[i % 5], f"ref-{i}", state, "{}", "{}", 1024, now - n + i, now - n + i))
    with ledger.transaction() as conn:
        conn.executemany(
            "INSERT INTO ledger_records (source, source_ref, state, record, original, size,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def percentiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=20)
    return f"p50 {statistics.median(values):.1f} ms, p95 {q[18]:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--scrapes", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        fill(ledger, args.records)
        print(f"ledger of {args.records:,} records filled in {time.perf_counter() - t0:.1f} s")
        health = SourceHealth(SOURCES)
        for s in SOURCES:
            health.ok(s)
        parts = EngineParts(
            tally=Tally(),
            sources=health,
            ledger=ledger,
            state_dir=Path(tmp),
            client=lambda: None,
            storage_trouble=lambda: False,
            started_at=time.time(),
        )
        registry = CollectorRegistry(auto_describe=False)
        registry.register(EngineCollector(parts))
        alone = []
        for _ in range(args.scrapes):
            t = time.perf_counter()
            generate_latest(registry)
            alone.append((time.perf_counter() - t) * 1000)
        server = ObservabilityServer(
            "127.0.0.1", 0, parts, Health(parts, last_tick=time.monotonic, stuck_after=60)
        )
        server.start()
        try:
            http = []
            with requests.Session() as session:
                for _ in range(args.scrapes):
                    t = time.perf_counter()
                    resp = session.get(f"{server.url}/metrics", timeout=30)
                    http.append((time.perf_counter() - t) * 1000)
                    assert resp.status_code == 200
            size = len(resp.content)
        finally:
            server.stop()
            ledger.close()
    print(f"collector alone: {percentiles(alone)}")
    print(f"HTTP scrape of /metrics ({size:,} bytes): {percentiles(http)}")


if __name__ == "__main__":
    main()
