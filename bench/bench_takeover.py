"""Benchmark of a takeover: how long a source waits when the collector that owns it dies.

Two collectors (the real CLI ``run``) share one PostgreSQL state (a durable throw-away
cluster) and one drop folder; the owner is SIGKILLed at a random moment mid-delivery,
again and again, with the emulator losing answers and failing some requests. Prints, per
kill and in all: the time from the kill until the standby holds the source's lease
(bounded by ``lease_seconds``: the standby asks again the moment the lease runs out)
and until its first delivery, and checks every file landed exactly once.

Run: ``.venv/bin/python bench/bench_takeover.py [--kills 10] [--files 300] [--lease 3]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # ``tests`` is not installed

from core_client.postgres import PostgresDatabase
from itglue_emulator import run_emulator
from pipeline.ledger import Ledger
from pipeline.testing.postgres import PostgresServer
from tests.takeover import SOURCE, DropRounds, Fleet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--lease", type=float, default=3.0, help="[state] lease_seconds")
    args = ap.parse_args()
    per_round = max(1, args.files // (args.kills + 1))
    contents = {f"f-{i:05}.txt": f"file {i}\n".encode() * (i % 50 + 2) for i in range(args.files)}

    with (
        tempfile.TemporaryDirectory(prefix="bench-takeover-") as tmp,
        PostgresServer(durable=True) as pg,
        run_emulator(api_key="bench-key", seed="demo") as emu,
    ):
        dsn = pg.create_database()
        fleet = Fleet(Path(tmp), emu, dsn, args.lease)
        files = DropRounds(fleet.drop, contents, per_round)

        def done() -> bool:
            ledger = Ledger(PostgresDatabase(dsn, component="ledger"))
            try:
                return ledger.counts() == {SOURCE: {"done": args.files}}
            finally:
                ledger.close()

        t0 = time.monotonic()
        try:
            files.drop(per_round)
            fleet.begin()
            fleet.faults_on()
            rounds = files.rounds()
            for _ in range(args.kills):
                fleet.kill_owner(rounds)
            files.drop_rest()
            codes = fleet.finish(done)
        finally:
            fleet.close()
        landed = Counter(a["file-name"] for a in emu.state()["records"]["attachments"])
    print(f"{args.files} files, {args.kills} kills of the owner, in {time.monotonic() - t0:.1f} s")
    for line in fleet.figures():
        print(line)
    twice = sum(1 for n in landed.values() if n > 1)
    lost = len(set(contents) - set(landed))
    print(f"landed {len(landed)} files: {twice} twice, {lost} lost; exit codes {codes}")
    if twice or lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
