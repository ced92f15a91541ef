"""Soak: the daemon for ``--minutes`` with a drop folder, a mailbox and a feed, faults on.

The real CLI ``run`` (a subprocess) takes items fed continuously at a modest rate from
a drop folder, a private Dovecot (the IMAP tests' ``Dovecot``) and a loopback HTTPS feed
(the feed tests' server) and delivers them into the IT Glue emulator, which answers
with 5xx, loses answers after committing, adds latency and throws a 429 storm now and
then. Every ``--interval`` seconds the daemon's RSS (``VmRSS``), open descriptors and
threads are sampled from ``/proc``; the report gives the least-squares slope per hour
of each after the warm-up, and whether every item landed exactly once.

Usage: ``.venv/bin/python bench/soak.py [--minutes 30] [--interval 10]``.
``tests/test_soak.py`` runs the same code for two minutes with a bound on growth.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test helpers: ``tests`` is not installed

from itglue_emulator import run_emulator  # noqa: E402
from pipeline.ledger import FINAL_STATES, Ledger  # noqa: E402
from tests.crash_loop import CLI  # noqa: E402
from tests.http_feed.http_feed_server import FeedServer, add_doc, run_feed_server  # noqa: E402
from tests.imap.dovecot import Dovecot  # noqa: E402
from tests.imap.imap_helpers import make_message  # noqa: E402

KEY_ENV = "SOAK_ITGLUE_KEY"
PASSWORD_ENV = "SOAK_IMAP_PASSWORD"
SOURCES = ("drop", "mail", "feed")
ORG = "Acme Corp"  # one of the emulator's demo organizations
# 5xx on anything, lost answers on creates and uploads, latency everywhere
FAULTS: dict[str, Any] = {
    "errors": [{"rate": 0.03, "status": 503}],
    "drop": [{"rate": 0.03, "methods": ["POST", "PATCH"]}],
    "latency": {"ms": 10, "jitter_ms": 10},
}
STORM_SECONDS = 3.0


@dataclass
class Sample:
    t: float  # seconds since the daemon started
    rss_kb: int
    fds: int
    threads: int
    landed: int  # documents in the emulator


@dataclass
class SoakResult:
    samples: list[Sample]
    warmup: float
    fed: Counter[str]  # items per source
    landed: int  # items whose document exists
    duplicates: int  # documents beyond one per item
    missing: list[str]
    wrong_files: list[str]  # items whose attachment is missing, doubled or differs
    ledger: dict[str, dict[str, int]]
    daemon_rc: int
    storms: int

    @property
    def failed(self) -> int:
        return sum(states.get("failed", 0) for states in self.ledger.values())

    @property
    def exactly_once(self) -> bool:
        return not self.missing and not self.duplicates and not self.wrong_files and not self.failed

    def after_warmup(self) -> list[Sample]:
        return [s for s in self.samples if s.t >= self.warmup]

    def slope_per_hour(self, metric: Callable[[Sample], float]) -> float:
        """Least-squares slope of ``metric`` after the warm-up, per hour."""
        points = [(s.t, metric(s)) for s in self.after_warmup()]
        return slope(points) * 3600.0


def slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def measure(pid: int) -> tuple[int, int, int]:
    """``(VmRSS kB, open descriptors, threads)`` of a running process."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return int(fields["VmRSS"][0]), fds, int(fields["Threads"][0])


@dataclass
class Item:
    source: str
    name: str  # the document name
    file_name: str
    data: bytes


@dataclass
class Feeder:
    """Puts items into the three sources in turn (drop, mail, feed, drop, ...)."""

    drop: Path
    dovecot: Dovecot
    user: str
    feed: FeedServer
    payload: int  # bytes per file
    items: dict[str, Item] = field(default_factory=dict)
    _n: int = 0

    def _data(self, name: str) -> bytes:
        # unique bytes (no content dedupe), big enough that keeping them would show
        noise = random.Random(name).randbytes(self.payload // 2).hex().encode()
        return b"%PDF-1.4\n% " + name.encode() + b"\n" + noise

    def add(self) -> Item:
        n, self._n = self._n, self._n + 1
        source = SOURCES[n % len(SOURCES)]
        name = f"soak-{source}-{n:05}"
        # add_doc names the feed's file doc-<n>.pdf; the download keeps that name
        file_name = f"doc-{n}.pdf" if source == "feed" else f"{name}.pdf"
        item = Item(source, name, file_name, self._data(name))
        if source == "drop":
            part = self.drop / f".{item.file_name}"  # dot files are ignored: write, rename
            part.write_bytes(item.data)
            part.rename(self.drop / item.file_name)
        elif source == "mail":
            raw = make_message(
                name,
                html=f"<p>Body of {name}</p>",
                attachments=[(item.file_name, item.data, "application/pdf")],
            )
            self.dovecot.save(self.user, raw)
        else:
            updated = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
            add_doc(
                self.feed,
                n,
                updated=updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
                data=item.data,
                attributes={"title": name, "org": ORG},
            )
        self.items[name] = item
        return item

    def fed(self) -> Counter[str]:
        return Counter(i.source for i in self.items.values())


def config(work: Path, emu: Any, dovecot: Dovecot, user: str, feed: FeedServer) -> Path:
    cfg = work / "soak.toml"
    cfg.write_text(
        f"""
[itglue]
instance = "soak"
base_url = "{emu.base_url}"
api_key_env = "{KEY_ENV}"
ca_bundle = "{emu.ca_file}"

[state]
dir = "state"

[pipeline]
workers = 2
retry_base = 0.2
retry_max = 5.0

[[sources]]
name = "drop"
type = "filesystem"
path = "drop"
organization = "{ORG}"
stability_delay = 0.5

[[sources]]
name = "mail"
type = "imap"
organization = "{ORG}"
host = "{dovecot.host}"
port = {dovecot.ssl_port}
security = "ssl"
ca_file = "{dovecot.ca_file}"
username = "{user}"
password_env = "{PASSWORD_ENV}"
poll_interval = 5.0
reconnect_max = 2.0
on_success = ["seen", "move"]
success_folder = "Processed"

[[sources]]
name = "feed"
type = "http_feed"
organization = "{ORG}"
url = "{feed.url("/feed/next_link")}"
ca_bundle = "{feed.ca_file}"
items_path = "data"
since_param = "since"
poll_interval = 2.0
backoff_base = 0.05
backoff_max = 1.0

[sources.pagination]
style = "next_link"
next_path = "links.next"

[sources.fields]
id = "id"
name = "attributes.title"
file_url = "links.file"
organization = "attributes.org"
updated_at = "updated_at"
"""
    )
    return cfg


def ledger_counts(work: Path) -> dict[str, dict[str, int]]:
    ledger = Ledger(work / "state" / "soak.db")
    try:
        return ledger.counts()
    finally:
        ledger.close()


def settled(work: Path, fed: Counter[str]) -> bool:
    """Every fed item reached a final state in the ledger."""
    counts = ledger_counts(work)
    return all(
        sum(counts.get(src, {}).get(s, 0) for s in FINAL_STATES) >= n for src, n in fed.items()
    )


def check(emu: Any, items: dict[str, Item]) -> tuple[int, int, list[str], list[str]]:
    """``(landed, duplicates, missing, wrong_files)`` of the items in the emulator."""
    records = emu.state()["records"]
    docs = Counter(d["name"] for d in records["documents"] if d["name"] in items)
    names = {d["id"]: d["name"] for d in records["documents"]}
    files: dict[str, list[bytes]] = {}
    for a in records["attachments"]:
        name = names.get(str(a["resource-id"]))
        if name in items and a["file-name"] == items[name].file_name:
            files.setdefault(name, []).append(emu.attachment_content(a["id"]))
    missing = sorted(set(items) - set(docs))
    wrong = sorted(n for n in docs if files.get(n) != [items[n].data])
    return len(docs), sum(c - 1 for c in docs.values()), missing, wrong


@contextmanager
def environment(work: Path) -> Iterator[tuple[Any, Dovecot, tuple[str, str], FeedServer]]:
    """The emulator (faults set later), a Dovecot user (name, password) and a feed
    server, all on loopback."""
    with ExitStack() as stack:
        emu = stack.enter_context(run_emulator(api_key="soak-key", seed="demo", retry_after=True))
        dovecot = stack.enter_context(Dovecot())
        login = dovecot.add_user()
        feed = stack.enter_context(run_feed_server(work))
        feed.state.page_size = 10
        yield emu, dovecot, login, feed


def soak(
    work: Path,
    minutes: float = 30.0,
    interval: float = 10.0,
    rate: float = 0.5,
    warmup: float = 120.0,
    storm_every: float = 120.0,
    payload: int = 64 * 1024,
    drain: float = 300.0,
    out: Callable[[str], None] = print,
) -> SoakResult:
    """Run the soak in ``work``: ``rate`` items per second for ``minutes``, sampling
    every ``interval`` s, then wait up to ``drain`` s for the backlog and stop the daemon."""
    (work / "drop").mkdir()
    with environment(work) as (emu, dovecot, (user, password), feed):
        cfg = config(work, emu, dovecot, user, feed)
        feeder = Feeder(work / "drop", dovecot, user, feed, payload)
        env = {
            **os.environ,
            KEY_ENV: emu.api_key,
            PASSWORD_ENV: password,
            "PYTHONUNBUFFERED": "1",
        }
        emu.set_faults(**FAULTS)
        with (work / "daemon.log").open("ab") as log:
            proc = subprocess.Popen([*CLI, "run", "-c", str(cfg)], env=env, stdout=log, stderr=log)
        samples: list[Sample] = []
        storms = 0
        stop = threading.Event()

        def feed_items() -> None:
            while not stop.wait(1.0 / rate):
                feeder.add()

        feeding = threading.Thread(target=feed_items, name="soak-feeder", daemon=True)
        try:
            out(f"{'t (s)':>7} {'RSS (MB)':>9} {'fds':>5} {'threads':>7} {'landed':>7}")
            t0 = time.monotonic()
            feeding.start()
            next_storm = storm_every
            while (now := time.monotonic() - t0) < minutes * 60:
                if proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited {proc.returncode}; see daemon.log")
                rss, fds, threads = measure(proc.pid)
                landed = len(emu.state()["records"]["documents"])
                samples.append(Sample(round(now, 1), rss, fds, threads, landed))
                out(f"{now:7.1f} {rss / 1024:9.1f} {fds:5d} {threads:7d} {landed:7d}")
                if now >= next_storm:  # every 429 for a few seconds (with Retry-After)
                    emu.set_faults(**FAULTS, storm={"seconds": STORM_SECONDS})
                    storms += 1
                    next_storm += storm_every
                time.sleep(max(0.0, interval - (time.monotonic() - t0 - now)))
            stop.set()
            feeding.join(60)
            emu.set_faults()  # the backlog drains without faults
            deadline = time.monotonic() + drain
            while not settled(work, feeder.fed()) and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            stop.set()
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
        landed, duplicates, missing, wrong = check(emu, feeder.items)
        return SoakResult(
            samples,
            warmup,
            feeder.fed(),
            landed,
            duplicates,
            missing,
            wrong,
            ledger_counts(work),
            rc,
            storms,
        )


def report(result: SoakResult, out: Callable[[str], None] = print) -> None:
    out(f"\nslopes per hour after the {result.warmup:.0f} s warm-up (least squares):")
    out(f"  RSS      {result.slope_per_hour(lambda s: s.rss_kb / 1024):+9.2f} MB/h")
    out(f"  fds      {result.slope_per_hour(lambda s: s.fds):+9.2f} /h")
    out(f"  threads  {result.slope_per_hour(lambda s: s.threads):+9.2f} /h")
    fed = sum(result.fed.values())
    out(
        f"items fed: {fed} ({', '.join(f'{k} {v}' for k, v in sorted(result.fed.items()))}); "
        f"429 storms: {result.storms}"
    )
    out(
        f"delivered {result.landed}, duplicates {result.duplicates}, failed {result.failed}, "
        f"missing {len(result.missing)}, wrong files {len(result.wrong_files)}"
    )
    out(f"ledger: {result.ledger}; daemon exit status {result.daemon_rc}")
    out(
        "every item landed exactly once"
        if result.exactly_once
        else f"NOT exactly once: missing {result.missing[:10]}, wrong {result.wrong_files[:10]}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--rate", type=float, default=0.5, help="items per second")
    parser.add_argument("--warmup", type=float, default=120.0, help="seconds left out of slopes")
    parser.add_argument(
        "--storm-every", type=float, default=120.0, help="seconds between 429 storms"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="itglue-soak-") as tmp:
        result = soak(
            Path(tmp),
            minutes=args.minutes,
            interval=args.interval,
            rate=args.rate,
            warmup=args.warmup,
            storm_every=args.storm_every,
        )
        report(result)
    return 0 if result.exactly_once and result.daemon_rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
