"""Benchmark of the http_feed source against a local HTTPS feed server.

Prints, measured in the same run:

* the time to walk a feed of N items (N downloads) with plain ``requests`` (the
  baseline: the HTTP work alone), and the time for the http_feed source to land the same
  feed through the real engine (spool, ledger, a sink that only records sizes), as a
  ratio to the baseline;
* the time of a re-poll of the unchanged feed (no download) against the first poll;
* the peak Python heap (tracemalloc) while one large file is downloaded into the spool,
  against the file's size (streaming: the ratio should be far below 1);
* the cost of reading pages safely at any nesting depth (``parsing.parse_page``) against
  a bare ``json.loads``, for ordinary pages and for hostile ones.

Run: ``.venv/bin/python bench/bench_http_feed.py [N] [--big-mib 64] [--parse-scale 1]``
(default 300 items; ``--parse-scale`` shrinks the parsed pages for a quick run).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # ``tests`` is not installed

import pipeline
from pipeline import DeliveryResult, DocumentRecord, Sink, StepJournal
from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import parse_settings
from plugins.http_feed.parsing import parse_page
from tests.http_feed.http_feed_server import add_doc, run_feed_server


class SizeSink(Sink):
    """Delivers nothing anywhere: records sizes only (the bench measures the source)."""

    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        return DeliveryResult(None, "bench", record.source_ref, requests=0)


class BenchPlugin:
    @pipeline.hookimpl
    def ingest_register_sinks(self, register: Any) -> None:
        register("size", SizeSink)


def engine_for(state: Path, feed_url: str, ca: Path, page_size: int) -> Engine:
    settings = parse_settings(
        {
            "state": {"dir": str(state)},
            "pipeline": {
                "transforms": [],
                "sink": "size",
                "workers": 2,
                "max_file_size": 200 * 1024 * 1024,
            },
            "sources": [
                {
                    "name": "feed",
                    "type": "http_feed",
                    "url": feed_url,
                    "ca_bundle": str(ca),
                    "items_path": "items",
                    "pagination": {
                        "style": "cursor",
                        "cursor_path": "meta.next_cursor",
                        "has_more_path": "meta.has_more",
                    },
                    "checkpoint": "cursor",
                    "fields": {
                        "id": "id",
                        "name": "attributes.title",
                        "file_url": "links.file",
                        "updated_at": "updated_at",
                    },
                }
            ],
        }
    )
    pm = get_plugin_manager(
        load_entrypoints=False,
        block=("plugins.imap", "plugins.filesystem", "plugins.routing", "plugins.itglue_sink"),
        extra=[BenchPlugin()],
    )
    return Engine(settings, pm)


def baseline(base: str, ca: Path) -> float:
    t0 = time.perf_counter()
    with requests.Session() as s:
        cursor = None
        while True:
            params = {"cursor": cursor} if cursor else {}
            doc = s.get(base + "/feed/cursor", params=params, verify=str(ca), timeout=30).json()
            for item in doc["items"]:
                with s.get(
                    base + item["links"]["file"], verify=str(ca), stream=True, timeout=30
                ) as r:
                    for _ in r.iter_content(65536):
                        pass
            if not doc["meta"]["has_more"]:
                break
            cursor = doc["meta"]["next_cursor"]
    return time.perf_counter() - t0


def best_of(fn: Any, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def parse_costs(scale: float) -> None:
    def item(i: int) -> dict[str, Any]:
        return {
            "id": f"doc-{i}",
            "attributes": {
                "title": f'Report {i} [draft] {{x}} \\" q',
                "tags": ["a", {"k": [1, 2, 3]}],
                "org": {"name": "Acme", "links": {"self": "https://x.example/y"}},
                "body": "lorem ipsum " * 20,
            },
            "links": {"file": f"/files/{i}.pdf"},
        }

    for n in (100, max(100, int(10_000 * scale))):
        body = json.dumps({"data": [item(i) for i in range(n)]}).encode()
        plain = best_of(lambda body=body: json.loads(body))
        safe = best_of(lambda body=body: parse_page(body))
        print(
            f"page of {n} items ({len(body) / 2**20:.2f} MiB): json.loads {plain * 1e3:.1f} ms, "
            f"parse_page {safe * 1e3:.1f} ms ({safe / plain:.2f}x)"
        )
    deep, wide = max(1024, int(2**23 * scale)), max(1024, int(2**20 * scale))
    hostile = {
        "one item 990 levels deep in a page of 100": json.dumps(
            {"data": [item(i) for i in range(100)]}
        )[:-2]
        + ", "
        + "[" * 990
        + "]" * 990
        + "]}",
        f"{2 * deep / 2**20:.3g} MiB of brackets, {deep / 2**20:.3g} Mi levels deep": "[" * deep
        + "]" * deep,
        f"{2 * wide / 2**20:.3g} MiB: 1000 levels around {wide:,} []": "[" * 1000
        + "[]" * wide
        + "]" * 1000,
    }
    for label, text in hostile.items():
        took = best_of(lambda t=text: parse_page(t.encode()), 1)
        print(f"hostile page, {label}: parse_page {took:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("items", type=int, nargs="?", default=300, help="items in the feed")
    ap.add_argument("--big-mib", type=int, default=64, help="size of the one large download")
    ap.add_argument(
        "--parse-scale", type=float, default=1.0, help="size of the parsed pages (1 = full)"
    )
    args = ap.parse_args()
    parse_costs(args.parse_scale)
    n = args.items
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        with run_feed_server(tmp) as feed:
            feed.state.page_size = 50
            for i in range(n):
                add_doc(
                    feed,
                    i,
                    updated=f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                    data=b"%PDF-1.4 " + i.to_bytes(4, "big") * 5000,
                )
            assert feed.ca_file is not None
            base_t = baseline(feed.base_url, feed.ca_file)

            with engine_for(tmp / "state", feed.url("/feed/cursor"), feed.ca_file, 50) as eng:
                t0 = time.perf_counter()
                eng.sources["feed"].scan()  # the poll alone: download, spool, ledger row
                polled = time.perf_counter() - t0
                summary = eng.run_once()  # then deliver (the re-scan finds all known)
                first = time.perf_counter() - t0
                assert summary.delivered == n, summary
            with engine_for(tmp / "state", feed.url("/feed/cursor"), feed.ca_file, 50) as eng:
                # a re-poll from the start of the feed (cursor reset): everything known
                eng.ledger.set_checkpoint("feed", "cursor", "")
                downloads = feed.state.downloads()
                t0 = time.perf_counter()
                eng.run_once()
                again = time.perf_counter() - t0
                assert feed.state.downloads() == downloads

            total = sum(len(data) for data, _ in feed.state.files.values())
            print(f"items: {n} ({total // 1024} KiB of files), page size 50")
            print(
                f"baseline (plain requests, walk + download): {base_t:.2f} s "
                f"({n / base_t:.0f} items/s)"
            )
            print(
                f"http_feed poll alone (into spool + ledger): {polled:.2f} s "
                f"({n / polled:.0f} items/s), {polled / base_t:.2f}x the baseline"
            )
            print(
                f"http_feed through the engine:               {first:.2f} s "
                f"({n / first:.0f} items/s), {first / base_t:.2f}x the baseline"
            )
            print(
                f"re-poll of the unchanged feed:              {again:.2f} s "
                f"({again / first:.2f}x the first poll, 0 downloads)"
            )

        with run_feed_server(tmp) as feed:
            size = args.big_mib * 1024 * 1024
            add_doc(feed, 1, data=b"\0" * size)
            assert feed.ca_file is not None
            with engine_for(tmp / "state-big", feed.url("/feed/cursor"), feed.ca_file, 50) as eng:
                tracemalloc.start()
                eng.run_once()
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            # (the server's copy of the file was allocated before tracing started)
            print(
                f"one {size // 2**20} MiB download: peak Python heap during the poll "
                f"{peak / 2**20:.1f} MiB ({peak / size:.3f}x the file size)"
            )


if __name__ == "__main__":
    main()
