"""The daemon's heartbeat in the state database, on each backend: what one process
writes, another reads (``status``); a failing database never stops the writer."""

from __future__ import annotations

import time
from pathlib import Path

from core_client.sqlite import connect, migrate
from pipeline.observability.heartbeat import (
    SQLITE_MIGRATIONS,
    Heartbeat,
    HeartbeatStore,
    HeartbeatWriter,
)
from pipeline.observability.source_health import SourceState
from tests.conftest import DatabaseFactory


def test_a_beat_is_read_by_another_process(make_database: DatabaseFactory) -> None:
    writer = HeartbeatStore(make_database("daemon"))
    reader = HeartbeatStore(make_database("daemon"))  # e.g. ``status`` next to the daemon
    try:
        assert reader.read() is None  # never ran
        now = time.time()
        sources = {
            "drop": SourceState(True, now - 1.5, None),
            "mail": SourceState(False, None, "connection refused"),
            "feed": SourceState(None, None, None),
        }
        writer.beat(Heartbeat(42, "host-a", now - 60, now, 0.5, None, now - 2.25, sources))
        hb = reader.read()
        assert hb is not None
        assert (hb.pid, hb.host, hb.interval, hb.stopped_at) == (42, "host-a", 0.5, None)
        assert hb.beat_at == now and hb.last_delivery_at == now - 2.25  # full precision
        assert hb.daemon_state(now) == "running"
        assert {n: (s.connected, s.error) for n, s in hb.sources.items()} == {
            "drop": (True, None),
            "mail": (False, "connection refused"),
            "feed": (None, None),
        }
        assert hb.sources["drop"].last_scan_at == now - 1.5
        # the next beat replaces the last one, sources included
        writer.beat(Heartbeat(42, "host-a", now - 60, now + 1, 0.5, now + 1, None, {}))
        again = reader.read()
        assert again is not None and again.sources == {} and again.daemon_state() == "stopped"
    finally:
        writer.close()
        reader.close()


def test_the_writer_remembers_the_last_delivery_and_says_stopped(
    make_database: DatabaseFactory,
) -> None:
    first = HeartbeatWriter(make_database("daemon"), 60, dict, lambda: 1234.5)
    first.start()
    first.stop()
    reader = HeartbeatStore(make_database("daemon"))
    try:
        hb = reader.read()
        assert hb is not None and hb.daemon_state() == "stopped"
        assert hb.last_delivery_at == 1234.5
        # a restarted daemon that delivered nothing yet keeps the last delivery's time
        second = HeartbeatWriter(make_database("daemon"), 60, dict, lambda: None)
        second.start()
        running = reader.read()
        assert running is not None and running.daemon_state() == "running"
        assert running.last_delivery_at == 1234.5
        second.stop()
    finally:
        reader.close()


def test_each_collector_has_its_own_heartbeat(make_database: DatabaseFactory) -> None:
    """Collectors sharing a state each write their own heartbeat and sources; each reads
    its own first, and sees the others'."""
    a = HeartbeatStore(make_database("daemon"), "site-a")
    b = HeartbeatStore(make_database("daemon"), "site-b")
    try:
        now = time.time()
        a.beat(Heartbeat(1, "ha", now, now, 1, None, None, {"drop-a": SourceState(True)}))
        b.beat(Heartbeat(2, "hb", now, now, 1, now, None, {"drop-b": SourceState(False)}))
        mine, theirs = a.read(), b.read()
        assert mine is not None and theirs is not None
        assert (mine.pid, list(mine.sources)) == (1, ["drop-a"])
        assert (theirs.pid, list(theirs.sources), theirs.daemon_state()) == (
            2,
            ["drop-b"],
            "stopped",
        )
        assert sorted(a.read_all()) == ["site-a", "site-b"]
    finally:
        a.close()
        b.close()


def test_the_heartbeat_of_a_state_from_before_collectors_is_kept(tmp_path: Path) -> None:
    """The single-row heartbeat tables of a SQLite state become the per-collector ones;
    the last beat survives the migration (``status`` right after an upgrade)."""
    path = tmp_path / "state.db"
    conn = connect(path)
    migrate(conn, "daemon", SQLITE_MIGRATIONS[:1])
    conn.execute(
        "INSERT INTO daemon_heartbeat VALUES (1, 7, 'old-host', 10.5, 20.25, 5, 21.0, 15.0)"
    )
    conn.execute("INSERT INTO daemon_sources VALUES ('drop', 1, 19.0, NULL)")
    conn.close()
    store = HeartbeatStore(path)
    try:
        hb = store.read()
        assert hb is not None
        assert (hb.pid, hb.host, hb.beat_at, hb.stopped_at) == (7, "old-host", 20.25, 21.0)
        assert hb.sources["drop"].connected is True
    finally:
        store.close()
