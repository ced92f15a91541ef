"""How close the client gets to the API ceiling without losing a request.

Scenario (issue 3): the emulator allows 300 requests per 30 s (sliding window); a client
is asked for 1,000 requests. Two clients run side by side, each against its own
emulator:

* ``configured``: the client knows the budget (rate_limit=300, rate_window=30);
* ``unaware``: the client believes the default 3000 per 300 s, so only the server's
  429s (no Retry-After header) teach it to slow down.

Printed per client: requests completed, errors, elapsed time, the achieved rate as a
share of the ceiling (300 / 30 s = 10 req/s) over the whole run and in steady state
(after the first window's burst), and the number of 429s received. Target: >= 90 %
and every request completed. Takes ~100 s (the ceiling is the point).

    .venv/bin/python bench/bench_client_rate.py [--requests 1000] [--only configured]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from core_client import ITGlueClient
from itglue_emulator import run_emulator

LIMIT, WINDOW = 300, 30.0


def run(name: str, n: int, results: dict[str, Any], **client_kw: Any) -> None:
    with (
        run_emulator(rate_limit=(LIMIT, WINDOW), retry_after=False) as emu,
        tempfile.TemporaryDirectory() as state,
    ):
        client = ITGlueClient.from_instance(
            name,
            base_url=emu.base_url,
            api_key=emu.api_key,
            ca_bundle=emu.ca_file,
            state_dir=Path(state),
            **client_kw,
        )
        done = errors = 0
        stamps: list[float] = []
        start = time.monotonic()
        try:
            for _ in range(n):
                try:
                    client.get_json("/organizations", {"page[size]": 1})
                    done += 1
                except Exception as exc:  # a bench counts failures instead of stopping
                    errors += 1
                    print(f"[{name}] error: {exc}")
                stamps.append(time.monotonic())
        finally:
            metrics = client.get_metrics()
            client.close()
        server_429 = sum(r["count"] for r in emu.state()["requests"] if r["status"] == 429)
        elapsed = stamps[-1] - start
        ceiling = LIMIT / WINDOW
        steady = None
        if n > LIMIT + 1:
            steady = (n - LIMIT - 1) / (stamps[-1] - stamps[LIMIT]) / ceiling
        results[name] = {
            "done": done,
            "errors": errors,
            "elapsed": elapsed,
            "share": n / elapsed / ceiling,
            "steady": steady,
            "client_429": metrics.rate_limited_429,
            "server_429": server_429,
            "waits": metrics.rate_limit_waits,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--only", choices=["configured", "unaware"])
    args = ap.parse_args()
    # the unaware client logs a warning per 429; the summary below counts them
    logging.getLogger("itglue_ingest").setLevel(logging.ERROR)
    results: dict[str, Any] = {}
    jobs = {
        "configured": {"rate_limit": LIMIT, "rate_window": WINDOW},
        "unaware": {},
    }
    threads = [
        threading.Thread(target=run, args=(name, args.requests, results), kwargs=kw)
        for name, kw in jobs.items()
        if args.only in (None, name)
    ]
    print(
        f"emulator ceiling: {LIMIT} requests / {WINDOW:.0f} s = {LIMIT / WINDOW:.1f} req/s; "
        f"{args.requests} requests per client ..."
    )
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, r in results.items():
        steady = f"{r['steady']:.1%}" if r["steady"] is not None else "n/a"
        print(
            f"{name:>10}: {r['done']}/{args.requests} done, {r['errors']} errors, "
            f"{r['elapsed']:.1f} s; achieved {r['share']:.1%} of the ceiling "
            f"(steady state {steady}); 429s received: {r['client_429']} "
            f"(server sent {r['server_429']}); limiter waits: {r['waits']}"
        )


if __name__ == "__main__":
    main()
