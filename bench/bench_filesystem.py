"""Drop-folder source: latency of a dropped file to its IT Glue document, and backlog
throughput.

1. Latency (daemon, ``Engine.run``, emulator over HTTPS, unthrottled): N files are
   dropped one by one (written, closed) into organization sub-folders while the daemon
   watches; for each, the time from its last write to its delivery (the engine's
   ``ingest_record_delivered`` hook, called after the document and its attachment exist
   in the emulator) minus the stability delay. Printed as p50/p95/max for the native
   (inotify) and the polling observer.
2. Backlog throughput (``Engine.run_once``): M small files already in the folder, the
   emulator unthrottled. Printed in files/s, next to two baselines measured in the same
   run: ``os.scandir`` + read of the same number of files (the floor any source pays),
   and the engine with the drop-folder source and a sink that does nothing (the source
   and engine overhead without HTTP; on ``--null-backlog`` files to keep the run short).
3. Burst (daemon idle, the client's default budget of 3,000 requests per 300 s):
   ``--burst`` one-file documents dropped at once; the time from the last write until
   the last of them is delivered, minus the stability delay, and whether it is within
   the 3 s the issue asks for.

Run: ``.venv/bin/python bench/bench_filesystem.py [--files 50] [--backlog 10000]
[--null-backlog 2000] [--burst 20]``
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pipeline
from itglue_emulator import run_emulator
from pipeline import DeliveryResult, DocumentRecord, Sink, StepJournal
from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import Settings, parse_settings

ORGS = ("Acme Corp", "Globex", "Initech", "Umbrella Corporation")
STABILITY = 2.0  # the default stability delay
BURST_GOAL = 3.0  # seconds past the stability delay a burst of 20 files may take (issue 15)


class NullSink(Sink):
    """Accepts every record without doing anything (the engine's own cost)."""

    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        return DeliveryResult(record.organization_id, "documents", str(record.id))


class DeliveryClock:
    """Notes when each record was delivered (by its source reference)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()

    @pipeline.hookimpl
    def ingest_register_sinks(self, register: Any) -> None:
        register("null", NullSink)

    @pipeline.hookimpl
    def ingest_record_delivered(self, record: DocumentRecord, result: DeliveryResult) -> None:
        with self.lock:
            self.at.setdefault(record.source_ref, time.monotonic())


def settings(emu: Any, state: Path, drop: Path, **source: Any) -> Settings:
    """The bench's configuration; ``rate_limit=None``: the client's default budget (else
    none to speak of)."""
    sink = source.pop("sink", "itglue")
    rate_limit = source.pop("rate_limit", 10**9)
    itglue: dict[str, Any] = {
        "instance": "bench",
        "base_url": emu.base_url,
        "api_key_env": "ITGLUE_BENCH_KEY",
        "ca_bundle": str(emu.ca_file),
    }
    if rate_limit is not None:
        itglue["rate_limit"] = rate_limit
    return parse_settings(
        {
            "itglue": itglue,
            "state": {"dir": str(state)},
            "pipeline": {"workers": 4, "sink": sink, "once_timeout": 1800},
            "sources": [
                {
                    "name": "drop",
                    "type": "filesystem",
                    "path": str(drop),
                    "organization_from": "subfolder",
                    **source,
                }
            ],
        }
    )


def content(i: int) -> bytes:
    return f"%PDF-1.4\n% bench document {i}\n".encode() + os.urandom(512) + b"\n%%EOF\n"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(emu: Any, root: Path, observer: str, n: int) -> list[float]:
    drop, state = root / f"drop-{observer}", root / f"state-{observer}"
    for org in ORGS:
        (drop / org).mkdir(parents=True)
    state.mkdir()
    clock = DeliveryClock()
    cfg = settings(
        emu, state, drop, observer=observer, poll_interval=0.5, stability_delay=STABILITY
    )
    engine = Engine(cfg, get_plugin_manager(load_entrypoints=False, extra=[clock]))
    stop = threading.Event()
    runner = threading.Thread(target=engine.run, args=(stop,))
    runner.start()
    written: dict[str, float] = {}
    try:
        time.sleep(1.0)  # the daemon's start-up scan of the empty folder
        for i in range(n):
            rel = f"{ORGS[i % len(ORGS)]}/latency-{observer}-{i:03d}.pdf"
            with open(drop / rel, "wb") as f:
                f.write(content(i))
            written[rel] = time.monotonic()
            time.sleep(0.05)
        deadline = time.monotonic() + 120
        while len(clock.at) < n and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(30)
        engine.close()
    missing = set(written) - set(clock.at)
    if missing:
        raise SystemExit(f"{len(missing)} file(s) never delivered ({observer})")
    docs = {d["name"] for d in emu.records("documents")}
    assert all(f"latency-{observer}-{i:03d}" in docs for i in range(n)), "document missing"
    return [clock.at[rel] - t - STABILITY for rel, t in written.items()]


def burst(emu: Any, root: Path, n: int) -> float:
    """``n`` one-file documents dropped at once into an idle daemon (the client's default
    budget, 3,000 requests per 300 s): seconds from the last write until the last of
    them is delivered, minus the stability delay."""
    drop, state = root / "drop-burst", root / "state-burst"
    for org in ORGS:
        (drop / org).mkdir(parents=True)
    state.mkdir()
    clock = DeliveryClock()
    cfg = settings(emu, state, drop, stability_delay=STABILITY, rate_limit=None)
    engine = Engine(cfg, get_plugin_manager(load_entrypoints=False, extra=[clock]))
    stop = threading.Event()
    runner = threading.Thread(target=engine.run, args=(stop,))
    runner.start()
    try:
        time.sleep(3.0)  # idle: the start-up scan of the empty folder is over
        for i in range(n):
            (drop / ORGS[i % len(ORGS)] / f"burst-{i:03d}.pdf").write_bytes(content(i))
        written = time.monotonic()
        deadline = written + 120
        while len(clock.at) < n and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        runner.join(30)
        engine.close()
    if len(clock.at) < n:
        raise SystemExit(f"burst: {n - len(clock.at)} file(s) never delivered")
    return max(clock.at.values()) - written - STABILITY


def make_backlog(drop: Path, m: int) -> None:
    for org in ORGS:
        (drop / org).mkdir(parents=True, exist_ok=True)
    for i in range(m):
        (drop / ORGS[i % len(ORGS)] / f"backlog-{i:05d}.pdf").write_bytes(content(i))
    old = time.time() - 3600  # a backlog: written long before the run starts
    for org in ORGS:
        for entry in os.scandir(drop / org):
            os.utime(entry.path, (old, old))


def scandir_read(drop: Path) -> int:
    n = 0
    stack = [str(drop)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                else:
                    with open(e.path, "rb") as f:
                        f.read()
                    n += 1
    return n


def backlog_run(emu: Any, root: Path, m: int, sink: str) -> float:
    drop, state = root / f"backlog-{sink}", root / f"state-backlog-{sink}"
    make_backlog(drop, m)
    state.mkdir()
    cfg = settings(emu, state, drop, sink=sink, stability_delay=STABILITY)
    engine = Engine(cfg, get_plugin_manager(load_entrypoints=False, extra=[DeliveryClock()]))
    try:
        t0 = time.perf_counter()
        summary = engine.run_once()
        elapsed = time.perf_counter() - t0
    finally:
        engine.close()
    done = summary.delivered + summary.duplicate
    if done != m or summary.failed:
        raise SystemExit(f"backlog ({sink}): {done}/{m} delivered, {summary.failed} failed")
    return m / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=50, help="files for the latency run")
    ap.add_argument("--backlog", type=int, default=10_000, help="files in the backlog run")
    ap.add_argument("--null-backlog", type=int, default=2_000, help="files, null-sink run")
    ap.add_argument("--burst", type=int, default=20, help="files dropped at once, idle daemon")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_emulator(api_key="bench-key", seed="demo", rate_limit=(10**9, 300.0)) as emu,
    ):
        os.environ["ITGLUE_BENCH_KEY"] = emu.api_key
        root = Path(tmp)
        print(f"latency: {args.files} files dropped 50 ms apart, stability delay {STABILITY} s")
        for observer in ("native", "polling"):
            lat = latency(emu, root, observer, args.files)
            extra = " (poll_interval 0.5 s)" if observer == "polling" else ""
            print(
                f"  {observer:8s} last write -> delivered, minus the delay: "
                f"p50 {statistics.median(lat) * 1000:7.1f} ms  p95 {pct(lat, 0.95) * 1000:7.1f} ms"
                f"  max {max(lat) * 1000:7.1f} ms{extra}"
            )

        late = burst(emu, root, args.burst)
        verdict = "within" if late <= BURST_GOAL else "NOT within"
        print(
            f"burst: {args.burst} one-file documents dropped at once into the idle daemon"
            f" (default budget): the last delivered {late:.2f} s after the stability delay"
            f" ({verdict} {BURST_GOAL:g} s)"
        )

        m = args.backlog
        print(f"backlog: {m} small files (~0.5 KiB) in {len(ORGS)} organization folders")
        base_dir = root / "baseline"
        make_backlog(base_dir, m)
        t0 = time.perf_counter()
        assert scandir_read(base_dir) == m
        base = m / (time.perf_counter() - t0)
        null = backlog_run(emu, root, args.null_backlog, "null")
        full = backlog_run(emu, root, m, "itglue")
        print(f"  baseline os.scandir + read          {base:10.0f} files/s")
        print(
            f"  source + engine, null sink          {null:10.0f} files/s"
            f"  ({base / null:.0f}x the baseline's time per file; {args.null_backlog} files)"
        )
        print(
            f"  source + engine + IT Glue emulator  {full:10.0f} files/s"
            f"  ({base / full:.0f}x the baseline's time per file)"
        )


if __name__ == "__main__":
    main()
