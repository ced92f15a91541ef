"""Full-text search of the metadata cache at 100,000 records: ``cache.search`` latency.

Fills a cache with organizations, configurations (hostnames, serials, IPs, notes),
contacts and delivered documents with extracted text (100,000 records by default),
then times ``MetadataCache.search`` (FTS5, bm25-ranked, 20 results, models and
snippets included) on one- and two-word queries, hits and misses. The baseline, measured
in the same run on the same data, is what search would be without the index: every
word as ``LIKE '%word%'`` over the tables' names and JSON. Target: p95 under 10 ms.

Run: ``.venv/bin/python bench/bench_cache_search.py [--records 100000] [--queries 2000]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core_client.cache import MetadataCache

# the words of the generated notes and document texts (each one common on purpose)
WORDS = [
    "backup",
    "firewall",
    "switch",
    "printer",
    "veeam",
    "hyper-v",
    "exchange",
    "sql",
    "nas",
    "wifi",
    "vpn",
    "ups",
    "camera",
    "domain",
    "controller",
    "replica",
    "tape",
    "rotation",
    "license",
    "warranty",
    "office",
    "branch",
    "rack",
]
CITIES = ["Berlin", "Hamburg", "Munich", "Cologne", "Vienna", "Zurich", "Leipzig"]


def notes(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def organizations(n: int) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        yield {"id": str(i), "name": f"Customer {i} GmbH", "quick-notes": f"site {CITIES[i % 7]}"}


def configurations(n: int, orgs: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        yield {
            "id": str(100_000 + i),
            "organization-id": str(i % orgs + 1),
            "name": f"srv-{i:06d}",
            "hostname": f"srv-{i:06d}.c{i % orgs + 1}.local",
            "serial-number": f"SN{i * 7919 % 10_000_000:07d}",
            "primary-ip": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
            "configuration-type-name": rng.choice(["Server", "Workstation", "Switch", "NAS"]),
            "notes": notes(rng, 8),
        }


def contacts(n: int, orgs: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        yield {
            "id": str(500_000 + i),
            "organization-id": str(i % orgs + 1),
            "first-name": f"Person{i}",
            "last-name": rng.choice(["Müller", "Schmidt", "Lovelace", "Hopper", "Turing"]),
            "title": rng.choice(["IT lead", "Office manager", "Backup operator", "CEO"]),
            "contact-emails": [{"value": f"p{i}@c{i % orgs + 1}.test", "primary": True}],
        }


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50": q[49], "p95": q[94], "p99": q[98], "max": ms[-1]}


def measure(
    fn: Callable[[str], Any], queries: list[str]
) -> tuple[dict[str, float], dict[str, float], int]:
    """(wall-clock percentiles, CPU-time percentiles, queries with hits): on a shared
    machine the wall clock also counts the time other processes held the CPU."""
    wall: list[int] = []
    cpu: list[int] = []
    found = 0
    for q in queries:
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        found += bool(fn(q))
        cpu.append(time.thread_time_ns() - c0)
        wall.append(time.perf_counter_ns() - t0)
    return percentiles(wall), percentiles(cpu), found


def fmt(p: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:8.3f} ms" for k, v in p.items())


def like_scan(cache: MetadataCache) -> Callable[[str], list[Any]]:
    """The baseline: each word as LIKE '%word%' over names and JSON of every kind."""
    conn = cache._conn()  # the bench may look inside; the code under test may not
    tables = ("organizations", "configurations", "contacts", "locations")

    def search(query: str) -> list[Any]:
        words = query.split()
        rows: list[Any] = []
        for table in (*tables, "documents"):
            text = "name || ' ' || data"
            if table == "documents":
                text += (
                    " || ' ' || coalesce((SELECT text FROM document_text"
                    " WHERE document_id = documents.id), '')"
                )
            where = " AND ".join(f"({text}) LIKE ?" for _ in words)
            sql = f"SELECT id, name FROM {table} WHERE {where} LIMIT 20"  # noqa: S608
            rows += conn.execute(sql, [f"%{w}%" for w in words]).fetchall()
            if len(rows) >= 20:
                break
        return rows[:20]

    return search


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--scans", type=int, default=20, help="baseline (LIKE scan) queries")
    args = ap.parse_args()
    rng = random.Random(14)
    n = args.records
    n_orgs, n_contacts, n_docs = max(1, n // 20), n // 5, n // 10
    n_configs = n - n_orgs - n_contacts - n_docs
    with tempfile.TemporaryDirectory() as tmp:
        cache = MetadataCache(Path(tmp) / "bench.db")
        try:
            t0 = time.perf_counter()
            cache.refresh("organizations", organizations(n_orgs))
            cache.refresh("configurations", configurations(n_configs, n_orgs, rng))
            cache.refresh("contacts", contacts(n_contacts, n_orgs, rng))
            cache.record_documents(
                {
                    "id": str(900_000 + i),
                    "organization_id": str(i % n_orgs + 1),
                    "name": f"Scan {i} {rng.choice(WORDS)}",
                    "sha256": f"{i:064x}",
                    "size": 1000,
                }
                for i in range(n_docs)
            )
            cache.index_document_texts((str(900_000 + i), notes(rng, 60)) for i in range(n_docs))
            took = time.perf_counter() - t0
            print(
                f"populate: {n:,} records ({n_orgs:,} organizations, {n_configs:,} "
                f"configurations, {n_contacts:,} contacts, {n_docs:,} documents with text) "
                f"in {took:.1f} s; database {cache.size_bytes() / 1e6:.1f} MB"
            )
            # what a technician types: a hostname, serial, IP, a person, a miss ...
            selective: list[str] = []
            # ... and the worst case: words each in a third of all records
            common: list[str] = []
            for i in range(args.queries):
                k = rng.randint(1, n_configs)
                choice = rng.randrange(7)
                if choice >= 5:
                    common.append(
                        rng.choice(WORDS)
                        if choice == 5
                        else f"{rng.choice(WORDS)} {rng.choice(WORDS)}"
                    )
                    continue
                selective.append(
                    [
                        f"srv-{k:06d}",
                        f"SN{k * 7919 % 10_000_000:07d}",
                        f"10.{k // 65536 % 256}.{k // 256 % 256}.{k % 256}",
                        f"Person{rng.randint(1, n_contacts)}",
                        f"nomatch{i}",
                    ][choice]
                )
            queries = [q for pair in zip(selective, common, strict=False) for q in pair]
            queries += selective[len(common) :] + common[len(selective) :]
            assert cache.search(queries[0]) is not None
            fts, fts_cpu, fts_found = measure(lambda q: cache.search(q, limit=20), queries)
            sel, sel_cpu, _ = measure(lambda q: cache.search(q, limit=20), selective)
            com, com_cpu, _ = measure(lambda q: cache.search(q, limit=20), common)
            base, base_cpu, base_found = measure(like_scan(cache), queries[: args.scans])
        finally:
            cache.close()

    load = os.getloadavg()[0]
    print(f"\n{len(queries)} queries (hostnames, serials, IPs, one or two words, misses):")
    print(f"  {'search, wall clock':<28} {fmt(fts)}  ({fts_found} with hits)")
    print(f"  {'search, CPU time':<28} {fmt(fts_cpu)}")
    print(f"  {'selective queries, wall':<28} {fmt(sel)}")
    print(f"  {'selective queries, CPU':<28} {fmt(sel_cpu)}")
    print(f"  {'common-word queries, wall':<28} {fmt(com)}")
    print(f"  {'common-word queries, CPU':<28} {fmt(com_cpu)}")
    print(f"\nbaseline, LIKE scan of names and JSON ({args.scans} queries):")
    print(f"  {'LIKE %word%, wall clock':<28} {fmt(base)}  ({base_found} with hits)")
    print(f"  {'LIKE %word%, CPU time':<28} {fmt(base_cpu)}")
    print(f"\nratio (baseline p50 / search p50): {base['p50'] / fts['p50']:.0f}x")
    print(f"load average during the run: {load:.1f} on {os.cpu_count()} CPUs")
    verdict = "PASS" if fts["p95"] < 10.0 else "MISS"
    print(
        f"target p95 < 10 ms at {n:,} records: {fts['p95']:.3f} ms wall, "
        f"{fts_cpu['p95']:.3f} ms CPU -> {verdict}"
    )
    print(
        json.dumps(
            {
                "search_p95_ms": fts["p95"],
                "search_cpu_p95_ms": fts_cpu["p95"],
                "selective_cpu_p95_ms": sel_cpu["p95"],
                "common_cpu_p95_ms": com_cpu["p95"],
                "like_scan_p95_ms": base["p95"],
            }
        )
    )


if __name__ == "__main__":
    main()
