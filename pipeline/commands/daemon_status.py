"""The daemon's part of ``itglue-ingest status``: is it running (from its heartbeat in
the state database), since when, and each source's state as the daemon last saw it."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from itglue_common import escape_controls as esc
from pipeline.observability.heartbeat import Heartbeat, HeartbeatStore
from pipeline.settings import Settings
from pipeline.state_database import heartbeat_name, open_state_database


def read_heartbeat(settings: Settings) -> Heartbeat | None:
    """This collector's daemon's heartbeat."""
    return read_heartbeats(settings)[0]


def read_heartbeats(settings: Settings) -> tuple[Heartbeat | None, dict[str, Heartbeat]]:
    """This collector's daemon's heartbeat, and the other collectors' (by name) when
    several share the state."""
    store = HeartbeatStore(open_state_database(settings, "daemon"), heartbeat_name(settings))
    try:
        every = store.read_all()
    finally:
        store.close()
    mine = every.pop(store.collector, None)
    return mine, every


def other_collector_lines(others: dict[str, Heartbeat], now: float | None = None) -> list[str]:
    """One line per other collector sharing the state: its daemon's state."""
    now = time.time() if now is None else now
    lines = []
    for name, hb in sorted(others.items()):
        state = hb.daemon_state(now)
        who = f"pid {hb.pid} on {esc(hb.host)}, last beat {_ago(hb.beat_at, now)}"
        word = {"running": "running", "stopped": "not running", "stale": "STALE HEARTBEAT"}
        lines.append(f"collector {esc(name)}: {word[state]} ({who})")
    return lines


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def _ago(ts: float, now: float) -> str:
    s = max(0.0, now - ts)
    return f"{s:.0f} s ago" if s < 120 else f"{s / 60:.0f} min ago"


def daemon_lines(hb: Heartbeat | None, now: float | None = None) -> list[str]:
    """``daemon: ...`` and one line per source."""
    now = time.time() if now is None else now
    if hb is None:
        return ["daemon: not running (it never ran on this state folder)"]
    who = f"pid {hb.pid} on {esc(hb.host)}"
    state = hb.daemon_state(now)
    if state == "running":
        beat = _ago(hb.beat_at, now)
        head = f"daemon: running since {_when(hb.started_at)} ({who}; last beat {beat})"
    elif state == "stopped":
        assert hb.stopped_at is not None
        head = f"daemon: not running (stopped at {_when(hb.stopped_at)})"
    else:
        head = (
            f"daemon: STALE HEARTBEAT: last beat at {_when(hb.beat_at)} ({_ago(hb.beat_at, now)};"
            f" {who}, beating every {hb.interval:g} s); it crashed, was killed or hangs"
        )
    lines = [head]
    if hb.last_delivery_at is not None:
        lines.append(f"last delivery: {_when(hb.last_delivery_at)}")
    as_of = "" if state == "running" else " (as the daemon last saw them)"
    if hb.sources:
        lines.append(f"sources{as_of}:")
    for name, s in sorted(hb.sources.items()):
        scan = f"last scan {_when(s.last_scan_at)}" if s.last_scan_at else "no successful scan"
        if s.connected is None:
            lines.append(f"  {name}: not reported yet")
        elif s.connected:
            lines.append(f"  {name}: connected, {scan}")
        else:
            lines.append(f"  {name}: NOT CONNECTED, {scan}: {esc(s.error or '')}")
    return lines


def daemon_dict(hb: Heartbeat | None, now: float | None = None) -> dict[str, Any]:
    """The same for ``status --json``."""
    if hb is None:
        return {"state": "never_ran"}
    return {
        "state": hb.daemon_state(now),
        "pid": hb.pid,
        "host": hb.host,
        "started_at": hb.started_at,
        "beat_at": hb.beat_at,
        "heartbeat_interval": hb.interval,
        "stopped_at": hb.stopped_at,
        "last_delivery_at": hb.last_delivery_at,
        "sources": {
            name: {"connected": s.connected, "last_scan_at": s.last_scan_at, "error": s.error}
            for name, s in sorted(hb.sources.items())
        },
    }


def sources_in_trouble(hb: Heartbeat | None, now: float | None = None) -> list[str]:
    """The sources a running daemon reports as not connected."""
    if hb is None or hb.daemon_state(now) != "running":
        return []
    return [name for name, s in sorted(hb.sources.items()) if s.connected is False]
