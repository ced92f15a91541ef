"""The IT Glue sink's cost: API requests per delivered document, and its own overhead.

Against the emulator (HTTPS on 127.0.0.1, rate limit out of the way), one worker:

* baseline: the bare client doing what a document with one file needs
  (create_document + upload_attachment) -- no journal, no cache, no routing;
* the sink delivering the same shape through the real ledger step journal (SQLite,
  synchronous=FULL: each step is durable before the next request) and recording the
  document in the metadata cache.

Prints seconds per document for both, the ratio, the requests per document for a few
shapes (the minimum a shape needs is in brackets), and what reconciliation costs when 20%
of the creates lose their answer (commit-then-drop).

Run: .venv/bin/python bench/bench_sink.py [N]
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))  # the test helpers: ``tests`` is not installed

from core_client.client import ITGlueClient
from itglue_emulator import run_emulator
from pipeline import Blob, DocumentRecord, Section
from pipeline.ledger import Ledger
from pipeline.settings import parse_settings
from pipeline.testing import make_engine_context
from plugins.itglue_sink import ItglueSink, ItglueSinkOptions
from plugins.routing import RouteTransform, RoutingOptions
from tests.plugins.sample_files import make_pdf, make_png

N = int(sys.argv[1]) if len(sys.argv) > 1 else 150


def blob(path: Path) -> Blob:
    import hashlib

    data = path.read_bytes()
    return Blob(
        file_name=path.name, path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )


def api_requests(emu: Any) -> int:
    return sum(r["count"] for r in emu.state()["requests"])


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-sink-") as tmp:  # state, spool, files
        bench(Path(tmp))


def bench(tmp: Path) -> None:
    files = tmp / "files"
    files.mkdir()
    paths = []
    for i in range(N * 2):
        p = files / f"doc-{i:05d}.pdf"
        p.write_bytes(make_pdf([f"Document {i}", "benchmark"]))
        paths.append(p)
    extra = [files / f"img-{i}.png" for i in range(2)]
    for i, p in enumerate(extra):
        p.write_bytes(make_png(32, 32, seed=i))

    with run_emulator(api_key="bench-key", seed="demo", rate_limit=(10**9, 300.0)) as emu:
        os.environ["BENCH_ITGLUE_KEY"] = emu.api_key
        settings = parse_settings(
            {
                "itglue": {
                    "instance": "bench",
                    "base_url": emu.base_url,
                    "api_key_env": "BENCH_ITGLUE_KEY",
                    "ca_bundle": str(emu.ca_file),
                    "rate_limit": 10**9,
                },
                "state": {"dir": str(tmp / "state")},
            }
        )
        client = ITGlueClient.from_instance(
            "bench",
            base_url=emu.base_url,
            api_key_env="BENCH_ITGLUE_KEY",
            ca_bundle=emu.ca_file,
            state_dir=settings.state.dir,
            rate_limit=10**9,
            max_retries=3,
            backoff_base=0.01,
        )
        ctx = make_engine_context(settings, client_factory=lambda _: client)
        route = RouteTransform("route", RoutingOptions(), ctx)
        sink = ItglueSink("itglue", ItglueSinkOptions(), ctx)
        ledger = Ledger(settings.database_path)
        org = route.apply(
            DocumentRecord(source="b", source_ref="warm", name="warm", organization="Acme Corp")
        ).organization_id
        assert org is not None

        def journal_for(record: DocumentRecord) -> Any:
            rid, _, _ = ledger.insert(record, blobs=[b.sha256 for b in record.files])
            return ledger.journal(rid)

        def deliver(i: int, record: DocumentRecord) -> Any:
            return sink.deliver(record, journal_for(record))

        # the cost of one durable journal write (the sink makes 3 for a one-file document)
        probe = journal_for(DocumentRecord(source="probe", source_ref="p", name="p"))
        started = time.perf_counter()
        for i in range(50):
            probe.record(f"s{i}", "v")
        journal_write = (time.perf_counter() - started) / 50

        def routed(i: int, files_: list[Path], **kw: Any) -> DocumentRecord:
            return route.apply(
                DocumentRecord(
                    source="bench",
                    source_ref=f"r{i}",
                    name=f"Document {i}",
                    organization="Acme Corp",
                    files=[blob(p) for p in files_],
                    **kw,
                )
            )

        records = [routed(i, [p]) for i, p in enumerate(paths[N:])]
        journals = [journal_for(r) for r in records]  # the engine's insert: not the sink's
        # alternate batches of the bare client (baseline: create + attach, no journal, no
        # cache) and the sink, so that the machine's drift hits both alike
        raw_time = sink_time = 0.0
        raw_requests = sink_requests = 0
        results = []
        for start in range(0, N, 10):
            before = api_requests(emu)
            t0 = time.perf_counter()
            for p in paths[start : start + 10]:
                doc = client.create_document(org, p.stem)
                client.upload_attachment("documents", doc.id, path=p, file_name=p.name)
            raw_time += time.perf_counter() - t0
            middle = api_requests(emu)
            raw_requests += middle - before
            t0 = time.perf_counter()
            for r, j in zip(records[start : start + 10], journals[start : start + 10], strict=True):
                results.append(sink.deliver(r, j))
            sink_time += time.perf_counter() - t0
            sink_requests += api_requests(emu) - middle
        raw, with_sink = raw_time / N, sink_time / N
        raw_requests, sink_requests = raw_requests / N, sink_requests / N  # type: ignore[assignment]
        assert all(r.requests == 2 for r in results)

        rich = routed(
            10**6,
            [paths[0], *extra],
            sections=[
                Section(kind="heading", content="Notes", level=2),
                Section(content="<p>body</p>"),
            ],
            target=None,
        )
        rich = rich.model_copy(update={"target": rich.target.model_copy(update={"publish": True})})  # type: ignore[union-attr]
        rich_result = deliver(10**6, rich)

        emu.set_faults(
            seed=3, drop=[{"rate": 0.2, "methods": ["POST"], "path_prefix": "/organizations/"}]
        )
        dropped_records = [routed(2 * 10**6 + i, [p]) for i, p in enumerate(paths[:50])]
        before = api_requests(emu)
        drop_results = [deliver(2 * 10**6 + i, r) for i, r in enumerate(dropped_records)]
        drop_requests = (api_requests(emu) - before) / len(drop_results)
        emu.set_faults()
        docs = emu.state()["records"]["documents"]
        ledger.close()
        client.close()

    print(f"sink benchmark: {N} documents with one PDF each, one worker, emulator over HTTPS")
    print(
        f"  bare client (create + attach):   {raw * 1000:7.2f} ms/document, "
        f"{raw_requests:.2f} requests/document"
    )
    print(
        f"  sink (journal + cache + checks): {with_sink * 1000:7.2f} ms/document, "
        f"{sink_requests:.2f} requests/document"
    )
    print(
        f"  sink / bare client:              {with_sink / raw:7.2f}x  "
        f"(sink overhead {1000 * (with_sink - raw):.2f} ms/document)"
    )
    print(
        f"  one durable journal write:       {journal_write * 1000:7.2f} ms (3 per such document)"
    )
    print(f"  requests for 3 files + 2 sections + publish: {rich_result.requests} [minimum 7]")
    print(
        f"  with 20% of creates answer-lost: {drop_requests:.2f} requests/document "
        f"({len(docs)} documents in IT Glue for {2 * N + 1 + len(drop_results)} delivered)"
    )


if __name__ == "__main__":
    main()
