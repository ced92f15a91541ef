"""Two collectors, one PostgreSQL state, one drop folder: the owner SIGKILLed again and
again while the standby takes over (the takeover test and bench/bench_takeover.py).

Each collector is the real CLI ``run`` with its own state folder (spool) and the shared
``[state] backend = "postgresql"``; both are configured with the same source. A round:
files are dropped, the owner delivers some, is killed at a random moment mid-flight, the
standby takes the lease and delivers, and the killed collector is started again (the new
standby). The kill-to-takeover times are measured: to the standby's lease (the database's
``acquired_at``, same machine, same clock) and to the first delivery after the kill.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core_client.postgres import PostgresDatabase
from pipeline.leases import Leases
from tests.crash_loop import CLI, FAULTS, KEY_ENV, catches_sigterm, write_config
from tests.waiting import wait_for

SOURCE = "drop"


def write_collector_config(
    folder: Path, emu: Any, dsn: str, name: str, drop: Path, lease_seconds: float
) -> Path:
    """Collector ``name``'s configuration: the crash tests' one on the shared PostgreSQL
    state, with its own spool (``folder``) and the common drop folder."""
    return write_config(
        folder,
        emu,
        f"""
[[sources]]
name = "{SOURCE}"
type = "filesystem"
path = "{drop}"
organization = "Acme Corp"
stability_delay = 0.1
""",
        state=f"""backend = "postgresql"
dsn = "{dsn}"
collector = "{name}"
lease_seconds = {lease_seconds}
""",
        workers=4,
        # no extraction (its worker processes slow every start): a takeover does not depend on it
        transforms=["mime", "route", "title"],
    )


class DropRounds:
    """Files to drop into a folder a batch at a time, in order (and each once).

    ``drop(n)`` writes the next ``n``; ``rounds()`` drops ``per_round`` more at each step
    until none are left: :meth:`Fleet.kill_owner` takes one step a round.
    """

    def __init__(self, folder: Path, contents: dict[str, bytes], per_round: int) -> None:
        self.folder = folder
        self.contents = contents
        self.names = list(contents)  # not dropped yet
        self.per_round = per_round

    def drop(self, n: int) -> None:
        for name in self.names[:n]:
            (self.folder / name).write_bytes(self.contents[name])
        del self.names[:n]

    def drop_rest(self) -> None:
        self.drop(len(self.names))

    def rounds(self) -> Iterator[None]:
        while self.names:
            self.drop(self.per_round)
            yield None


@dataclass
class Takeover:
    """One kill and what followed (seconds after the kill)."""

    killed: str
    to_lease: float
    to_delivery: float | None  # None: nothing was left to deliver


@dataclass
class Fleet:
    """Collectors ``a`` and ``b`` (see the module's docstring)."""

    root: Path
    emu: Any
    dsn: str
    lease_seconds: float
    seed: int = 15
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    takeovers: list[Takeover] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.drop = self.root / "drop"
        self.drop.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(self.seed)
        self.env = {**os.environ, KEY_ENV: self.emu.api_key, "PYTHONUNBUFFERED": "1"}
        self.configs = {
            name: write_collector_config(
                self.root / name, self.emu, self.dsn, name, self.drop, self.lease_seconds
            )
            for name in ("a", "b")
        }
        self._db = PostgresDatabase(self.dsn, component="leases")
        self._leases = Leases(self._db, "observer", self.lease_seconds)

    # ------------------------------------------------------------------ parts

    def log_path(self, name: str) -> Path:
        return self.root / name / "daemon.log"

    def start(self, name: str) -> None:
        with self.log_path(name).open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [*CLI, "run", "-c", str(self.configs[name])],
                env=self.env,
                stdout=log,
                stderr=log,
                cwd=self.root / name,
            )

    def ready(self, name: str) -> bool:
        """Running with its signal handlers installed (its engine is up)."""
        proc = self.procs[name]
        return proc.poll() is None and catches_sigterm(proc.pid)

    def owner(self) -> tuple[str, float] | None:
        """The live lease's holder and when it took the source (database clock)."""
        now, leases = self._leases.all()
        for lease in leases:
            if lease.source == SOURCE and lease.live(now):
                return lease.owner, lease.acquired_at
        return None

    def generation(self) -> int:
        _, leases = self._leases.all()
        return max((x.generation for x in leases if x.source == SOURCE), default=0)

    def delivered(self) -> int:
        return len(self.emu.state()["records"]["attachments"])

    def logged(self, text: str) -> int:
        """How many lines of the collectors' logs hold ``text``."""
        return sum(
            line.count(text)
            for name in self.configs
            if self.log_path(name).exists()
            for line in self.log_path(name).read_text(errors="replace").splitlines()
        )

    # ------------------------------------------------------------------ the run

    def begin(self) -> None:
        """``a`` starts and takes the source; ``b`` starts as its standby."""
        self.start("a")
        wait_for(lambda: self.owner(), timeout=60, message="collector a to take the source")
        self.start("b")
        wait_for(lambda: self.ready("b"), timeout=60, message="collector b to start")

    def kill_owner(self, drop_more: Iterator[None], *, max_delay: float = 0.6) -> Takeover:
        """One round: with the standby up, drop more files, wait for a delivery of the
        owner, kill it at a random moment; measure the takeover; start the killed one
        again as the standby."""
        held = wait_for(self.owner, timeout=60, message="an owner")
        assert held is not None
        victim = held[0]
        standby = next(n for n in self.configs if n != victim)
        # the standby (re)started last round, while the owner worked: up before the kill
        wait_for(lambda: self.ready(standby), timeout=120, message=f"{standby} to be up")
        before = self.delivered()
        next(drop_more, None)  # files for the owner to be busy with when it dies
        with contextlib.suppress(AssertionError):  # backing off: killed all the same
            wait_for(
                lambda: self.delivered() != before,
                timeout=30,
                interval=0.05,
                message=f"a delivery by {victim}",
            )
        time.sleep(self.rng.uniform(0.0, max_delay))  # deliberate: a random moment
        proc = self.procs[victim]
        assert proc.poll() is None, f"collector {victim} exited; see {self.log_path(victim)}"
        proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        proc.wait(10)

        def taken() -> tuple[str, float] | None:
            held = self.owner()
            return held if held is not None and held[0] != victim else None

        other = wait_for(
            taken,
            timeout=self.lease_seconds * 10 + 30,
            interval=0.02,
            message="the standby to take the source",
        )
        assert other is not None
        # counted from the standby's lease on: all the killed one sent has landed by then
        at_lease = self.delivered()
        left = len(self.waiting())

        def delivered_or_settled() -> str | None:
            if self.delivered() > at_lease:
                return "delivered"
            # every file gone to processed/ without a delivery: the killed owner had
            # delivered them all, the standby only did their post-actions
            return None if self.waiting() else "settled"

        try:
            outcome = wait_for(delivered_or_settled, timeout=60, interval=0.02)
        except AssertionError:
            waiting = [str(p.relative_to(self.drop)) for p in self.waiting()]
            raise AssertionError(
                f"no delivery by the standby in 60 s; waiting: {waiting}"
            ) from None
        to_delivery = time.time() - killed_at if outcome == "delivered" else None
        took = Takeover(victim, other[1] - killed_at, to_delivery)
        self.takeovers.append(took)
        first = "nothing left" if to_delivery is None else f"{to_delivery:.2f} s"
        if to_delivery is None and left:
            first += f" (the owner had delivered all; {left} file(s) to move to processed/)"
        print(
            f"killed {victim}: {other[0]} held the lease after {took.to_lease:.2f} s,"
            f" first delivery: {first}",
            flush=True,
        )
        self.start(victim)  # back as the standby (up by the next kill)
        return took

    def finish(self, done: Any, timeout: float = 180) -> dict[str, int]:
        """Faults off, wait for ``done()``, SIGTERM both; their exit codes."""
        self.emu.set_faults()
        try:
            wait_for(done, timeout=timeout, interval=0.2, message="the backlog to be worked off")
            # both up (their handlers installed): a SIGTERM is then a clean stop
            wait_for(
                lambda: all(self.ready(n) for n in self.procs),
                timeout=120,
                message="both collectors to be up",
            )
        finally:
            codes = {}
            for name, proc in self.procs.items():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                codes[name] = proc.wait(30)
        return codes

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self._db.close()

    def faults_on(self) -> None:
        self.emu.set_faults(**FAULTS)

    def waiting(self) -> list[Path]:
        """Files still in the drop folder or a claim, not in ``processed``."""
        return [p for p in self.drop.rglob("*") if p.is_file() and "processed" not in p.parts]

    def figures(self) -> list[str]:
        lease = [t.to_lease for t in self.takeovers]
        first = [t.to_delivery for t in self.takeovers if t.to_delivery is not None]
        return [
            f"takeovers {len(self.takeovers)}, lease_seconds {self.lease_seconds:g}",
            f"kill -> standby holds the lease: {_spread(lease)}",
            f"kill -> first delivery by the standby: {_spread(first)}"
            f" ({len(self.takeovers) - len(first)} kill(s) left nothing to deliver)",
        ]


def _spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s"
