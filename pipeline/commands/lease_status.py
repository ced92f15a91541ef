"""The owners part of ``itglue-ingest status``: which collector owns each source and
until when its lease runs (only with a shared state: with SQLite one collector owns all)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipeline.leases import COMPONENT, Lease, Leases
from pipeline.settings import Settings
from pipeline.state_database import open_state_database


def read_leases(settings: Settings) -> tuple[float, list[Lease]] | None:
    """The database's clock and every source lease; None with the SQLite backend."""
    state = settings.state
    if state.backend != "postgresql":
        return None
    db = open_state_database(settings, COMPONENT)
    try:
        return Leases(db, state.collector, state.lease_seconds).all()
    finally:
        db.close()


def lease_dict(leases: tuple[float, list[Lease]] | None, collector: str) -> dict[str, Any]:
    if leases is None:
        return {}
    now, rows = leases
    return {
        lease.source: {
            "owner": lease.owner,
            "this_collector": lease.owner == collector,
            "expires_at": lease.expires_at,
            "live": lease.live(now),
            "generation": lease.generation,
        }
        for lease in rows
    }


def lease_lines(leases: tuple[float, list[Lease]] | None, collector: str) -> list[str]:
    if leases is None:
        return []
    now, rows = leases
    if not rows:
        return ["source owners: none yet (no collector ran with this state)"]
    lines = [f"source owners (this collector: {collector}):"]
    for lease in rows:
        until = dt.datetime.fromtimestamp(lease.expires_at, dt.UTC).isoformat(timespec="seconds")
        left = lease.expires_at - now
        when = (
            f"lease until {until} (in {left:.0f} s)"
            if left > 0
            else f"lease expired at {until} ({-left:.0f} s ago): the next collector"
            " configured with it takes it"
        )
        lines.append(f"  {lease.source}: {lease.owner}, {when}, generation {lease.generation}")
    return lines
