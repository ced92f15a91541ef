"""IMAP source benchmark: first sync, no-news poll, APPEND-to-document latency with IDLE.

Runs a private Dovecot (the test fixture, ``tests/imap/dovecot.py``) on loopback and
prints, each against a baseline measured in the same run:

1. first sync of a 5,000-message mailbox through the real engine (ledger, spool, a
   no-op sink, post-action "seen"): messages per second; baseline: one bare imapclient
   ``FETCH (BODY.PEEK[])`` of the whole mailbox (the transfer floor).
2. a poll with nothing new: round trips and milliseconds; baseline: what a fetcher
   without a UID checkpoint does (``SEARCH ALL`` + ``FETCH`` of every header, as
   paperless-ngx's mail fetcher does on each run).
3. APPEND to document in the IT Glue emulator with the daemon in IDLE (the real
   built-in transforms and IT Glue sink): latency; baseline: Dovecot's own IDLE push
   latency to a bare imapclient session (APPEND -> ``* n EXISTS``).

Usage: ``.venv/bin/python bench/bench_imap.py [--messages 5000] [--rounds 8]`` (about a minute).
"""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import statistics
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test helpers: ``tests`` is not installed

from imapclient import IMAPClient  # noqa: E402

import pipeline  # noqa: E402
from pipeline import DeliveryResult, DocumentRecord, Sink, StepJournal  # noqa: E402
from pipeline.plugins import get_plugin_manager  # noqa: E402
from pipeline.runner import Engine  # noqa: E402
from pipeline.settings import parse_settings  # noqa: E402
from tests.imap.dovecot import Dovecot  # noqa: E402

OTHER_BUILTINS = (
    "plugins.filesystem",
    "plugins.http_feed",
    "plugins.mime",
    "plugins.routing",
    "plugins.title",
    "plugins.itglue_sink",
)


class NullSink(Sink):
    """Accepts everything: the bench measures the source and the engine, not IT Glue."""

    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        return DeliveryResult(None, "documents", str(record.id))


class BenchPlugin:
    @pipeline.hookimpl
    def ingest_register_sinks(self, register: Any) -> None:
        register("null", NullSink)


def message(i: int) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = f"Bench message {i}"
    msg["From"] = f"sender{i % 50}@client{i % 7}.example"
    msg["To"] = "docs@msp.example"
    msg["Message-ID"] = make_msgid(idstring=str(i), domain="bench.example")
    msg.set_content(f"Message {i}\n" + "Some body text of a realistic length. " * 40)
    if i % 3 == 0:
        msg.add_attachment(
            os.urandom(2048),
            maintype="application",
            subtype="octet-stream",
            filename=f"report-{i}.bin",
        )
    return msg.as_bytes()


def client(server: Dovecot, user: str, password: str) -> IMAPClient:
    ctx = ssl.create_default_context(cafile=server.ca_file)
    c = IMAPClient(server.host, server.ssl_port, ssl=True, ssl_context=ctx, timeout=60)
    c.login(user, password)
    return c


def seed(server: Dovecot, user: str, password: str, n: int) -> float:
    t0 = time.perf_counter()
    c = client(server, user, password)
    try:
        chunk = 250
        for start in range(0, n, chunk):
            c.multiappend("INBOX", [message(i) for i in range(start, min(n, start + chunk))])
    finally:
        c.logout()
    return time.perf_counter() - t0


def source_table(server: Dovecot, user: str, **over: Any) -> dict[str, Any]:
    table = {
        "name": "mail",
        "type": "imap",
        "host": server.host,
        "port": server.ssl_port,
        "ca_file": server.ca_file,
        "username": user,
        "password_env": "BENCH_IMAP_PASSWORD",
        "batch_size": 100,
        "on_success": ["seen"],
        "on_failure": [],
    }
    table.update(over)
    return table


def bench_sync(server: Dovecot, n: int, workdir: Path) -> None:
    user, password = server.add_user()
    os.environ["BENCH_IMAP_PASSWORD"] = password
    print(f"seeding {n} messages (MULTIAPPEND) ...", flush=True)
    seeded = seed(server, user, password, n)
    print(f"  seeded in {seeded:.1f} s")

    c = client(server, user, password)
    try:
        c.select_folder("INBOX", readonly=True)
        t0 = time.perf_counter()
        got = c.fetch(c.search(["ALL"]), ["BODY.PEEK[]"])
        floor = time.perf_counter() - t0
    finally:
        c.logout()
    assert len(got) == n

    settings = parse_settings(
        {
            "itglue": {"instance": "bench"},
            "state": {"dir": str(workdir / "state-sync")},
            "pipeline": {
                "transforms": [],
                "sink": "null",
                "workers": 4,
                "spool_max_records": 10_000,
            },
            "sources": [source_table(server, user)],
        }
    )
    pm = get_plugin_manager(load_entrypoints=False, block=OTHER_BUILTINS, extra=[BenchPlugin()])
    with Engine(settings, pm) as engine:
        t0 = time.perf_counter()
        summary = engine.run_once()
        took = time.perf_counter() - t0
        src = engine.sources["mail"]
        assert summary.delivered == n, summary.to_dict()
        print("\n1. first sync of the mailbox (source + ledger + spool + no-op sink + ack)")
        print(f"   {n} messages in {took:.1f} s = {n / took:,.0f} messages/s")
        print(
            f"   baseline, one bare SEARCH + FETCH of every body: {floor:.2f} s = "
            f"{n / floor:,.0f} messages/s; the pipeline takes {took / floor:.1f}x the"
            " transfer floor"
        )

        times, trips = [], []
        for _ in range(20):
            before = src.total_round_trips
            t0 = time.perf_counter()
            src.scan()
            times.append((time.perf_counter() - t0) * 1000)
            trips.append(src.total_round_trips - before)
    c = client(server, user, password)
    try:
        naive_ms = []
        for _ in range(5):
            t0 = time.perf_counter()
            c.select_folder("INBOX", readonly=True)
            uids = c.search(["ALL"])
            c.fetch(uids, ["BODY.PEEK[HEADER]"])
            naive_ms.append((time.perf_counter() - t0) * 1000)
    finally:
        c.logout()
    print(f"\n2. a poll with nothing new, mailbox of {n} messages (20 polls)")
    print(
        f"   round trips: {max(trips)} (every poll), "
        f"median {statistics.median(times):.2f} ms, max {max(times):.2f} ms"
    )
    print(
        f"   baseline without a UID checkpoint (SELECT + SEARCH ALL + FETCH headers):"
        f" 3 round trips, median {statistics.median(naive_ms):.1f} ms -> "
        f"{statistics.median(naive_ms) / statistics.median(times):,.0f}x slower"
    )


def raw_idle_latency(server: Dovecot, user: str, password: str, rounds: int) -> list[float]:
    watcher = client(server, user, password)
    sender = client(server, user, password)
    out = []
    try:
        watcher.select_folder("INBOX")
        for i in range(rounds):
            watcher.idle()
            time.sleep(0.3)  # as long as the pipeline gets to settle into IDLE
            t0 = time.perf_counter()
            sender.append("INBOX", message(100_000 + i))
            while True:
                resp = watcher.idle_check(timeout=10)
                if any(len(r) > 1 and r[1] == b"EXISTS" for r in resp):
                    break
            out.append(time.perf_counter() - t0)
            watcher.idle_done()
    finally:
        watcher.logout()
        sender.logout()
    return out


def bench_idle(server: Dovecot, workdir: Path, rounds: int = 8) -> None:
    from itglue_emulator import run_emulator

    user, password = server.add_user()
    raw = raw_idle_latency(server, user, password, rounds)
    user, password = server.add_user()
    os.environ["BENCH_IMAP_PASSWORD"] = password
    with run_emulator(api_key="bench-key", tls=True, seed="demo") as emu:
        os.environ["BENCH_ITGLUE_KEY"] = emu.api_key
        settings = parse_settings(
            {
                "itglue": {
                    "instance": "bench-idle",
                    "base_url": emu.base_url,
                    "api_key_env": "BENCH_ITGLUE_KEY",
                    "ca_bundle": str(emu.ca_file),
                },
                "state": {"dir": str(workdir / "state-idle")},
                "sources": [
                    source_table(
                        server, user, organization="Acme Corp", poll_interval=600, idle=True
                    )
                ],
            }
        )
        engine = Engine(settings, get_plugin_manager(load_entrypoints=False))
        stop = threading.Event()
        t = threading.Thread(target=engine.run, args=(stop,))
        t.start()
        latencies = []
        try:
            deadline = time.monotonic() + 20
            while engine.ledger.get_checkpoint("mail", "folder:INBOX") is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("the source did not sync")
                time.sleep(0.05)
            sender = client(server, user, password)
            try:
                for i in range(rounds):
                    time.sleep(0.3)  # back in IDLE after the previous one
                    t0 = time.perf_counter()
                    sender.append("INBOX", message(200_000 + i))
                    while len(emu.records("documents")) < i + 1:
                        if time.perf_counter() - t0 > 30:
                            raise RuntimeError("no document within 30 s")
                        time.sleep(0.01)
                    latencies.append(time.perf_counter() - t0)
            finally:
                sender.logout()
        finally:
            stop.set()
            t.join(20)
            engine.close()
    med, raw_med = statistics.median(latencies), statistics.median(raw)
    print(f"\n3. APPEND -> document in the IT Glue emulator, daemon in IDLE ({rounds} mails)")
    print(f"   median {med * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    print(
        f"   baseline, Dovecot's IDLE push to a bare client: median {raw_med * 1000:.0f} ms"
        f" (ratio pipeline/baseline {med / raw_med:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=8, help="mails for the IDLE latency")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-imap-") as tmp, Dovecot() as server:
        bench_sync(server, args.messages, Path(tmp))
        bench_idle(server, Path(tmp), args.rounds)


if __name__ == "__main__":
    main()
