"""Pure pieces of the observability package: reason classes, API routes as labels, the
listen address, the heartbeat's verdict, and a port already taken (exit 2)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from core_client.metrics import MAX_ROUTES, Metrics, route_of
from pipeline.observability.address import parse_listen
from pipeline.observability.heartbeat import Heartbeat
from pipeline.observability.reasons import REASON_CLASSES, reason_class
from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import ConfigError, parse_settings


@pytest.mark.parametrize(
    ("reason", "cls"),
    [
        ("too large: 200 bytes > limit 100", "too_large"),
        ("file 'a.pdf' is 5 MB, over the upload limit of 1 MB", "too_large"),
        ("unreadable: a.pdf: Permission denied", "unreadable"),
        ("file 'x' is application/zip, which is denied by [transforms.mime] deny", "type"),
        ("unknown organization 'Nowhere' (not in IT Glue; ...)", "routing"),
        ("no organization for this record: source 's' sets none", "routing"),
        ("IT Glue refused creating the document (HTTP 422): name: taken", "rejected"),
        ("transform title raised KeyError: 'x'", "plugin"),
        ("engine error: ValueError: bad row", "engine"),
        ("the store refuses this one", "other"),
    ],
)
def test_reason_classes(reason: str, cls: str) -> None:
    assert reason_class(reason) == cls
    assert cls in REASON_CLASSES


def test_routes_hide_ids_and_stay_bounded() -> None:
    assert route_of("/organizations/42/relationships/documents/7") == (
        "/organizations/{id}/relationships/documents/{id}"
    )
    assert route_of("/organizations?page[size]=1") == "/organizations"
    assert route_of("<download of attachment 9>") == "(other)"
    m = Metrics()
    for i in range(MAX_ROUTES + 50):
        m.record_attempt(200, 5.0, f"/route-{i}")
    routes = {h.route for h in m.latency_histograms()}
    assert len(routes) == MAX_ROUTES + 1 and "other" in routes
    assert sum(h.count for h in m.latency_histograms()) == MAX_ROUTES + 50


def test_key_refused_follows_the_latest_answer() -> None:
    m = Metrics()
    m.record_attempt(401, 1.0, "/organizations")
    assert m.key_refused
    m.record_attempt(None, 1.0, "/organizations")  # no answer: says nothing about the key
    m.record_attempt(503, 1.0, "/organizations")
    assert m.key_refused and m.last_status == "503"
    m.record_attempt(404, 1.0, "/documents/1")  # past authentication: the key works
    assert not m.key_refused


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("[::1]:9464", ("::1", 9464)),
        (":9464", ("0.0.0.0", 9464)),  # noqa: S104 (every interface, as asked)
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_addresses(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["9464", "host:", "::1:9464", "127.0.0.1:99999", "a:b"])
def test_a_bad_listen_address_names_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"observability\.listen: .*host:port|brackets"):
        parse_settings({"observability": {"listen": value}})


def test_heartbeat_verdicts() -> None:
    hb = Heartbeat(1, "h", started_at=0, beat_at=100, interval=10, stopped_at=None,
                   last_delivery_at=None)  # fmt: skip
    assert hb.daemon_state(now=129) == "running"
    assert hb.daemon_state(now=131) == "stale"
    stopped = Heartbeat(1, "h", 0, 100, 10, stopped_at=101, last_delivery_at=None)
    assert stopped.daemon_state(now=10_000) == "stopped"


def test_a_taken_port_is_a_configuration_error(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    settings = parse_settings(
        {
            "state": {"dir": str(tmp_path / "state")},
            "pipeline": {"transforms": [], "sink": "itglue"},
            "observability": {"listen": f"127.0.0.1:{port}"},
        }
    )
    try:
        with Engine(settings, get_plugin_manager(load_entrypoints=False)) as engine:
            stop = threading.Event()
            stop.set()
            with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}: "):
                engine.run(stop)
    finally:
        taken.close()


def test_healthz_says_stuck_when_the_dispatcher_stops_going_round(tmp_path: Path) -> None:
    import time

    from pipeline.ledger import Ledger
    from pipeline.observability.collector import EngineParts
    from pipeline.observability.health import Health
    from pipeline.observability.source_health import SourceHealth
    from pipeline.observability.tally import Tally

    trouble = {"on": False}
    ledger = Ledger(tmp_path / "x.db")
    parts = EngineParts(
        tally=Tally(),
        sources=SourceHealth(["drop"]),
        ledger=ledger,
        state_dir=tmp_path,
        client=lambda: None,
        storage_trouble=lambda: trouble["on"],
        started_at=time.time(),
    )
    tick = {"at": time.monotonic()}
    health = Health(parts, last_tick=lambda: tick["at"], stuck_after=120)
    try:
        assert health.alive().ok
        tick["at"] -= 121  # the loop has not gone round for longer than stuck_after
        verdict = health.alive()
        assert not verdict.ok and verdict.body["status"] == "stuck"
        trouble["on"] = True  # waiting out storage trouble on purpose is not stuck
        assert health.alive().ok
        # readiness: a source that has not reported yet is not a problem; one in trouble is
        assert health.ready().ok
        parts.sources.trouble("drop", "drop folder /x is not available")
        ready = health.ready()
        assert not ready.ok and ready.body["problems"] == [
            "source drop: drop folder /x is not available"
        ]
    finally:
        ledger.close()
