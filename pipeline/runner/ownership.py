"""Which of its sources this engine may work on now: the one place that knows.

With the SQLite backend there is one collector per state: it owns every source, always,
and nothing is written for it. With PostgreSQL a source is this engine's while it holds
the source's lease (:mod:`pipeline.leases`): a keeper thread renews the leases every
third of ``[state] lease_seconds`` and tells the engine when it gains a source (start
its intake; its records become due here) or loses one (stop its intake; its records are
left to the new owner).

The engine stops using a source *before* the database would let a standby steal it:
ownership is measured on this machine's monotonic clock from the moment before the
renewal was sent (never later than the server's expiry), minus one renewal interval. So
a collector that cannot renew gives its sources up at least a third of the lease time
before anyone may take them. A delivery still in flight then journals no further step
(:class:`FencedJournal` asks the database before each), and the new owner's sink
reconciles the steps journaled before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from ..leases import ClaimRound, Leases
from ..sinks import StepJournal

log = logging.getLogger("itglue_ingest.engine")

SourceCallback = Callable[[str], None]
EXPIRY_SLACK = 0.05  # seconds after another's lease ends before asking (its expiry passed)


class LeaseLost(Exception):
    """This collector lost the source while delivering one of its records: the record is
    the new owner's now (left as it is, its journal resumed there)."""


class Ownership:
    """The set of sources this engine owns, and the keeper that maintains it.

    ``leases`` None: every source is owned for good (one collector per state).
    """

    def __init__(
        self,
        sources: Iterable[str],
        leases: Leases | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = sorted(set(sources))
        self.leases = leases
        self._clock = clock
        self._lock = threading.Lock()
        # source -> monotonic time until which this engine may work on it
        self._until: dict[str, float] = {}
        # source -> monotonic time when another collector's lease on it runs out: a
        # standby asks again right then, so a takeover takes the lease time, no more
        self._free_at: dict[str, float] = {}
        self.holders: dict[str, str] = {}  # source -> the collector holding it (last round)
        self._owned: frozenset[str] = frozenset(self.sources if leases is None else ())
        self.on_gain: SourceCallback = lambda _name: None
        self.on_loss: SourceCallback = lambda _name: None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.takeovers = 0  # sources taken over from another collector (logged)

    @property
    def shared(self) -> bool:
        """Whether ownership is decided by leases (several collectors may be configured
        with the same source)."""
        return self.leases is not None

    @property
    def interval(self) -> float:
        """Seconds between renewals: a third of the lease time."""
        return self.leases.lease_seconds / 3 if self.leases is not None else 0.0

    def owned(self) -> frozenset[str]:
        """The sources this engine may work on now."""
        if self.leases is None:
            return self._owned
        self._expire()
        return self._owned

    def owns(self, source: str) -> bool:
        return self.leases is None or source in self.owned()

    def holds_now(self, source: str) -> bool:
        """Whether this engine owns ``source`` now, asked of the database itself (the
        fence before each journaled delivery step; no query with SQLite)."""
        if self.leases is None:
            return True
        return self.owns(source) and self.leases.holds(source)

    def fenced(self, journal: StepJournal, source: str) -> StepJournal:
        """``journal``, refusing to record a step (:class:`LeaseLost`) once this engine
        no longer holds ``source``: a sink journals each step before the API write it
        guards, so a collector that lost the source mid-delivery stops writing."""
        return journal if self.leases is None else FencedJournal(journal, source, self)

    # ------------------------------------------------------------------ the keeper

    def renew(self) -> ClaimRound | None:
        """One claim round now; the gains and losses it brings are reported to
        ``on_gain``/``on_loss``. None with the SQLite backend. Raises what the database
        raised (the caller retries; ownership then runs out on its own)."""
        if self.leases is None:
            return None
        sent = self._clock()  # before the server's now: our deadline is never later
        claim = self.leases.claim(self.sources)
        usable = sent + self.leases.lease_seconds - self.interval
        gained: list[str] = []
        with self._lock:
            for name, lease in claim.leases.items():
                self.holders[name] = lease.owner
                if lease.owner == claim.collector:
                    self._until[name] = usable
                    self._free_at.pop(name, None)
                else:
                    self._until.pop(name, None)
                    self._free_at[name] = sent + (lease.expires_at - claim.now) + EXPIRY_SLACK
                    if name in self._owned:
                        log.warning(
                            "source %s: collector %s holds it now; stopping it here",
                            name,
                            lease.owner,
                        )
            before = self._owned
            self._owned = frozenset(n for n, t in self._until.items() if t > self._clock())
            gained = sorted(self._owned - before)
            lost = sorted(before - self._owned)
        for name in gained:
            lease = claim.leases[name]
            if lease.generation > 1 and lease.acquired_at >= claim.now:
                self.takeovers += 1
                log.warning("source %s: taken over (lease generation %d)", name, lease.generation)
            else:
                log.info("source %s: this collector owns it", name)
        self._report(gained, lost)
        return claim

    def _expire(self) -> None:
        """Drop the sources whose ownership ran out without a renewal."""
        now = self._clock()
        with self._lock:
            lost = sorted(n for n in self._owned if self._until.get(n, 0.0) <= now)
            if not lost:
                return
            self._owned = self._owned - set(lost)
        for name in lost:
            log.warning("source %s: lease not renewed in time; stopping it here", name)
        self._report([], lost)

    def _report(self, gained: list[str], lost: list[str]) -> None:
        for name in lost:
            self._call(self.on_loss, name, "loss")
        for name in gained:
            self._call(self.on_gain, name, "gain")

    @staticmethod
    def _call(callback: SourceCallback, name: str, what: str) -> None:
        try:
            callback(name)
        except Exception:
            log.exception("source %s: handling its %s raised", name, what)

    def start(self) -> None:
        """Claim once now (the sources owned start at once), then keep renewing in a
        thread until :meth:`stop`. With the SQLite backend: every source is gained."""
        if self.leases is None:
            for name in self.sources:
                self._call(self.on_gain, name, "gain")
            return
        self._stop.clear()
        self._round()
        self._thread = threading.Thread(target=self._keep, name="lease-keeper", daemon=True)
        self._thread.start()

    def _round(self) -> None:
        try:
            self.renew()
        except Exception as e:
            log.warning("cannot renew source leases: %s: %s", type(e).__name__, e)
            self._expire()

    def _keep(self) -> None:
        while True:
            wait = self.interval
            with self._lock:
                # wake when an ownership would run out unrenewed, or another's lease does
                moments = [self._until.get(n, 0.0) for n in self._owned]
                moments += self._free_at.values()
                if moments:
                    wait = min(wait, max(0.01, min(moments) - self._clock()))
            if self._stop.wait(wait):
                return
            self._round()

    def stop(self, *, release: bool = True) -> None:
        """Stop renewing; with ``release``, give the leases up at once (call it after
        the work on the sources ended: a standby takes them on its next round)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        if self.leases is None:
            return
        with self._lock:
            mine = sorted(self._until)
            self._until.clear()
            self._owned = frozenset()
        if release and mine:
            try:
                self.leases.release(mine)
            except Exception as e:
                log.warning("cannot release source leases: %s: %s", type(e).__name__, e)


class FencedJournal:
    """A :class:`~pipeline.sinks.StepJournal` whose ``record`` checks the lease first."""

    def __init__(self, journal: StepJournal, source: str, ownership: Ownership) -> None:
        self._journal = journal
        self._source = source
        self._ownership = ownership

    def get(self, step: str) -> str | None:
        return self._journal.get(step)

    def record(self, step: str, value: str) -> None:
        if not self._ownership.holds_now(self._source):
            raise LeaseLost(f"source {self._source}: another collector owns it now")
        self._journal.record(step, value)

    def steps(self) -> dict[str, str]:
        return self._journal.steps()

    def taken_by_another(self, step: str, value: str) -> bool:
        return self._journal.taken_by_another(step, value)
