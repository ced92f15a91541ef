"""Who works on a source: one owner lease per source in the shared state.

Several collectors may be configured with the same source (the same share or mailbox);
only the lease's owner scans it and works on its records. The owner renews its leases
every third of ``[state] lease_seconds``; a collector that stops renewing (killed, cut
off from the database) loses its sources once the lease expires, to the first standby
that asks. Every claim round -- take the free, renew the own, steal the expired -- is
one serialised write transaction, and expiry is measured by the database server's clock
(``clock_timestamp()`` on PostgreSQL), so the collectors' own clocks do not matter.

``generation`` grows with every change of owner: a fencing token in the ledger's rows
and logs ("this work was done under generation 7").
"""

# SQL here is assembled only from this module's constant fragments and "?" placeholders;
# every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core_client.database import Connection, Database, Dialect, Migrations

COMPONENT = "leases"

MIGRATIONS: Migrations = {
    "sqlite": [
        """
        CREATE TABLE source_leases (
            source TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            acquired_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            generation INTEGER NOT NULL
        )
        """
    ],
    "postgresql": [
        """
        CREATE TABLE source_leases (
            source TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            acquired_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            generation BIGINT NOT NULL
        )
        """
    ],
}

# "now" in seconds since the epoch, by the database's clock: on PostgreSQL the server's
# (clock_timestamp(): not frozen at the transaction's start like now()); on SQLite the
# only machine's
NOW: dict[Dialect, str] = {
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
    "postgresql": "EXTRACT(EPOCH FROM clock_timestamp())::double precision",
}

COLUMNS = "source, owner, acquired_at, expires_at, generation"


@dataclass(frozen=True)
class Lease:
    """A source's lease as the state holds it (times by the database's clock)."""

    source: str
    owner: str
    acquired_at: float
    expires_at: float
    generation: int

    def live(self, now: float) -> bool:
        return self.expires_at > now


@dataclass(frozen=True)
class ClaimRound:
    """What one :meth:`Leases.claim` found: the leases of the sources asked about (after
    this round's changes) and the database's clock at the round."""

    now: float
    leases: dict[str, Lease]
    collector: str

    def held(self) -> set[str]:
        """The sources this collector holds now."""
        return {s for s, lease in self.leases.items() if lease.owner == self.collector}

    def taken(self) -> set[str]:
        """The sources another collector holds now (live leases)."""
        return {s for s, lease in self.leases.items() if lease.owner != self.collector}


class Leases:
    """The ``source_leases`` table, seen by collector ``collector``."""

    def __init__(self, db: Database, collector: str, lease_seconds: float) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.db = db
        self.collector = collector
        self.lease_seconds = lease_seconds
        db.migrate(COMPONENT, MIGRATIONS)

    def _now(self, c: Connection) -> float:
        return float(c.execute(f"SELECT {NOW[self.db.dialect]}").fetchone()[0])

    def claim(self, sources: Iterable[str]) -> ClaimRound:
        """One round for ``sources``: take each free one, renew each own one, steal each
        whose lease expired; leave the ones another collector holds. One transaction."""
        names = sorted(set(sources))
        with self.db.transaction() as c:
            now = self._now(c)
            current = self._read(c, names)
            until = now + self.lease_seconds
            out: dict[str, Lease] = {}
            for name in names:
                lease = current.get(name)
                if lease is None:
                    c.execute(
                        f"INSERT INTO source_leases ({COLUMNS}) VALUES (?, ?, ?, ?, 1)",
                        (name, self.collector, now, until),
                    )
                    out[name] = Lease(name, self.collector, now, until, 1)
                elif lease.owner == self.collector:
                    # also when it expired but nobody took it: still ours, same generation
                    c.execute("UPDATE source_leases SET expires_at=? WHERE source=?", (until, name))
                    out[name] = Lease(
                        name, self.collector, lease.acquired_at, until, lease.generation
                    )
                elif not lease.live(now):
                    generation = lease.generation + 1
                    c.execute(
                        "UPDATE source_leases SET owner=?, acquired_at=?, expires_at=?,"
                        " generation=? WHERE source=?",
                        (self.collector, now, until, generation, name),
                    )
                    out[name] = Lease(name, self.collector, now, until, generation)
                else:
                    out[name] = lease
        return ClaimRound(now, out, self.collector)

    def release(self, sources: Iterable[str]) -> None:
        """Give up the leases of ``sources`` that this collector holds (a clean stop,
        after its work on them ended): a standby takes them on its next round rather
        than after the lease time."""
        names = sorted(set(sources))
        if not names:
            return
        marks = ",".join("?" * len(names))
        with self.db.transaction() as c:
            now = self._now(c)
            c.execute(
                f"UPDATE source_leases SET expires_at=? WHERE owner=? AND source IN ({marks})"
                " AND expires_at>?",
                (now, self.collector, *names, now),
            )

    def holds(self, source: str) -> bool:
        """Whether this collector holds a live lease on ``source`` now (by the
        database's clock): the fence checked before each journaled delivery step."""
        rows = self.db.query(
            "SELECT 1 FROM source_leases WHERE source=? AND owner=?"
            f" AND expires_at>{NOW[self.db.dialect]}",
            (source, self.collector),
        )
        return bool(rows)

    def all(self) -> tuple[float, list[Lease]]:
        """The database's clock and every lease, by source (for ``status``)."""
        with self.db.reading() as c:
            now = self._now(c)
            rows = c.execute(f"SELECT {COLUMNS} FROM source_leases ORDER BY source").fetchall()
        return now, [_lease(r) for r in rows]

    def _read(self, c: Connection, names: list[str]) -> dict[str, Lease]:
        if not names:
            return {}
        marks = ",".join("?" * len(names))
        rows = c.execute(
            f"SELECT {COLUMNS} FROM source_leases WHERE source IN ({marks})", names
        ).fetchall()
        return {str(r[0]): _lease(r) for r in rows}


def _lease(row: tuple[object, ...] | list[object]) -> Lease:
    source, owner, acquired_at, expires_at, generation = row
    return Lease(
        str(source),
        str(owner),
        float(acquired_at),  # type: ignore[arg-type]
        float(expires_at),  # type: ignore[arg-type]
        int(generation),  # type: ignore[call-overload]
    )
