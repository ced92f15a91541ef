"""How close the client gets to the API ceiling without losing a request (issues 3, 15, 16).

The emulator allows 300 requests per 30 s (sliding window, no Retry-After); each
scenario has its own emulator and runs side by side with the others:

* ``configured``: the client knows the budget (300 per 30 s); 600 GETs from the empty
  window should take about one window (the first 300 need not wait): under 36 s, no 429;
* ``unaware``: the client believes the default 3000 per 300 s and learns from the 429s;
  1,200 GETs;
* ``unaware-shared``: the same while another integration (its own state, unseen) uses a
  third of the budget (configured 100 per 30 s); scored against what it leaves.

Requests go from 4 threads (``--threads``), as the pipeline's workers send them; the
budget lives in the state file (``--backend file``) or in a PostgreSQL database
(``--backend postgresql``: a durable throw-away cluster, as several collectors share it).
Printed per scenario: requests completed, failed operations, elapsed time, the achieved
rate as a share of the ceiling (or of what is left), 429s and probes. Targets: >= 90 %
and no failed operation. ``cost`` (run alone) measures the limiter itself: 100,000
acquires from 4 threads through the shared state with a 300 s and a 1 s window; the
ring makes both the same.

``fleet`` (run alone, always on PostgreSQL): 1, 2 and 3 collector processes
(``--collectors``), each with its own configuration and state dir and 4 workers, built
as the pipeline builds them, share one database and one emulator budget of 300 per
30 s (``--fleet-window`` scales it: 10 requests per second of window); printed: the
budget used over ``--windows`` windows from an empty one and the 429s (targets: >= 95 %,
0).

    .venv/bin/python bench/bench_client_rate.py [--only unaware] [--requests N] [--backend B]
    .venv/bin/python bench/bench_client_rate.py --only cost [--acquires 100000] [--backend B]
    .venv/bin/python bench/bench_client_rate.py --only fleet [--collectors 1,2,3] [--windows 3]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from core_client import ITGlueClient, RateLimiter
from core_client.postgres import PostgresDatabase
from itglue_emulator import run_emulator
from pipeline.testing.fleet import run_fleet
from pipeline.testing.postgres import PostgresServer

LIMIT, WINDOW = 300, 30.0
CEILING = LIMIT / WINDOW
PAGE = {"page[size]": "1"}
SCENARIOS = {
    # name: (client budget, requests, another integration's budget or None)
    "configured": ((LIMIT, WINDOW), 600, None),
    "unaware": ((3000, 300.0), 1200, None),
    "unaware-shared": ((3000, 300.0), 1200, (LIMIT // 3, WINDOW)),
}


@contextlib.contextmanager
def budget_store(backend: str) -> Iterator[PostgresServer | None]:
    """The PostgreSQL cluster the budgets live in (durable, as a real one), or none."""
    if backend != "postgresql":
        yield None
        return
    with PostgresServer(durable=True) as pg:
        yield pg


def _client(
    emu: Any, state: Path, budget: tuple[int, float], pg: PostgresServer | None
) -> ITGlueClient:
    database = PostgresDatabase(pg.create_database(), component="ratelimit") if pg else None
    return ITGlueClient.from_instance(
        "bench",
        state,
        base_url=emu.base_url,
        api_key=emu.api_key,
        ca_bundle=emu.ca_file,
        rate_limit=budget[0],
        rate_window=budget[1],
        rate_database=database,
    )


def run(
    name: str, n: int | None, threads: int, pg: PostgresServer | None, results: dict[str, Any]
) -> None:
    budget, default_n, other_budget = SCENARIOS[name]
    n = n or default_n
    with (
        run_emulator(rate_limit=(LIMIT, WINDOW), retry_after=False) as emu,
        tempfile.TemporaryDirectory() as tmp,
    ):
        client = _client(emu, Path(tmp) / "ours", budget, pg)
        # the other integration is not ours: its own budget, in its own state
        other = _client(emu, Path(tmp) / "other", other_budget, pg) if other_budget else None
        stop = threading.Event()
        other_done = [0]

        def other_integration() -> None:
            assert other is not None
            while not stop.is_set():
                other.get_json("/organizations", PAGE)
                other_done[0] += 1

        worker = threading.Thread(target=other_integration) if other else None
        if worker:
            worker.start()
        try:
            start = time.monotonic()
            with ThreadPoolExecutor(threads) as pool:  # as the pipeline's workers do
                list(pool.map(lambda _: client.get_json("/organizations", PAGE), range(n)))
            elapsed = time.monotonic() - start
            used_by_other = other_done[0]
        finally:
            stop.set()
            if worker:
                worker.join(60)
            metrics = client.get_metrics()
            stats = client.rate_limiter.get_stats()
            client.close()
            if other:
                other.close()
        left = CEILING - used_by_other / elapsed
        results[name] = {
            "n": n,
            "failed": metrics.failed_operations,
            "elapsed": elapsed,
            "share": n / elapsed / left,
            "of": "of what is left" if other else "of the ceiling",
            "client_429": metrics.rate_limited_429,
            "probes": stats["probes"],
            "learned": stats["learned_budget"],
        }


def limiter_cost(
    window: float, n: int = 100_000, threads: int = 4, pg: PostgresServer | None = None
) -> float:
    """Acquires per second through the shared state (budget never reached)."""
    with tempfile.TemporaryDirectory() as tmp:
        limiter = (
            RateLimiter(
                10**9,
                window,
                state_database=PostgresDatabase(pg.create_database(), component="ratelimit"),
            )
            if pg
            else RateLimiter(10**9, window, state_path=Path(tmp) / "x.ratelimit")
        )
        try:
            start = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda _: limiter.acquire(), range(n)))
            return n / (time.perf_counter() - start)
        finally:
            limiter.close()


def fleet(collectors: list[int], window: float, windows: int, threads: int) -> None:
    """The budget a fleet of 1, 2, 3 ... collectors uses together, and its 429s."""
    limit = round(LIMIT / WINDOW * window)
    print(f"fleet: emulator budget {limit} requests / {window:g} s, {windows} windows measured")
    with PostgresServer(durable=True) as pg, tempfile.TemporaryDirectory() as tmp:
        for n in collectors:
            with run_emulator(rate_limit=(limit, window), retry_after=False) as emu:
                result = run_fleet(
                    emu,
                    pg.create_database(),
                    Path(tmp) / f"fleet-{n}",
                    collectors=n,
                    limit=limit,
                    window=window,
                    windows=windows,
                    threads=threads,
                )
            print(
                f"fleet, {n} collector{'s' if n > 1 else ''}: {result.accepted} of "
                f"{result.budget} requests ({result.used:.1%} of the budget), "
                f"429s: {result.refused}, failed: {result.failed}",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=[*SCENARIOS, "cost", "fleet"])
    ap.add_argument("--requests", type=int, help="instead of each scenario's own count")
    ap.add_argument("--threads", type=int, default=4, help="requests in parallel (workers)")
    ap.add_argument("--acquires", type=int, default=100_000, help="limiter acquires (cost)")
    ap.add_argument(
        "--backend",
        choices=["file", "postgresql"],
        default="file",
        help="where the budget lives (not fleet: always postgresql)",
    )
    ap.add_argument("--collectors", default="1,2,3", help="fleet sizes, comma-separated")
    ap.add_argument("--windows", type=int, default=3, help="fleet: windows measured")
    ap.add_argument("--fleet-window", type=float, default=WINDOW, help="fleet: window (s)")
    args = ap.parse_args()
    if args.only == "fleet":
        sizes = [int(n) for n in args.collectors.split(",")]
        fleet(sizes, args.fleet_window, args.windows, args.threads)
        return
    if args.only == "cost":
        n = args.acquires
        with budget_store(args.backend) as pg:
            slow, fast = limiter_cost(300.0, n, pg=pg), limiter_cost(1.0, n, pg=pg)
        print(
            f"limiter cost ({args.backend}), {n:,} acquires / 4 threads: 300 s window "
            f"{slow:,.0f}/s, 1 s window {fast:,.0f}/s ({slow / fast:.0%})"
        )
        return
    # the unaware clients log a warning per 429; the summary below counts them
    logging.getLogger("itglue_ingest").setLevel(logging.ERROR)
    results: dict[str, Any] = {}
    names = [args.only] if args.only else list(SCENARIOS)
    print(
        f"emulator ceiling: {LIMIT} requests / {WINDOW:.0f} s = {CEILING:.1f} req/s; "
        f"budget in: {args.backend} ..."
    )
    with budget_store(args.backend) as pg:
        threads = [
            threading.Thread(target=run, args=(name, args.requests, args.threads, pg, results))
            for name in names
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for name in names:
        r = results[name]
        print(
            f"{name:>14}: {r['n']} requests, {r['failed']} failed, {r['elapsed']:.1f} s; "
            f"{r['share']:.1%} {r['of']}; 429s: {r['client_429']}, probes: {r['probes']}, "
            f"learned budget: {r['learned']}"
        )


if __name__ == "__main__":
    main()
