"""The PostgreSQL server goes away under a running daemon and comes back: storage
trouble (back off, sources and deliveries paused, no record failed), then every file
delivered exactly once. ``storage_error`` classifies psycopg's errors as that trouble."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from pipeline import PermanentError
from pipeline.runner import Engine
from pipeline.runner.storage import storage_error
from pipeline.settings import parse_settings
from pipeline.testing.postgres import PostgresServer
from tests.pipeline.pipeline_engine_helpers import DirSource, plugin_manager, store_documents
from tests.waiting import wait_for

FILES = 30


def test_postgresql_connection_loss_is_storage_trouble() -> None:
    lost = psycopg.OperationalError("consuming input failed: server closed the connection")
    assert storage_error(lost) == "state database: " + str(lost)
    assert storage_error(PoolTimeout("couldn't get a connection after 30.00 sec"))
    assert storage_error(psycopg.errors.AdminShutdown("terminating connection"))
    assert storage_error(psycopg.errors.ReadOnlySqlTransaction("read-only transaction"))
    try:  # wrapped by a plugin that thought it knew better: still the storage's trouble
        raise PermanentError("routing cache: lost") from lost
    except PermanentError as e:
        assert storage_error(e) is not None
    # a query PostgreSQL refuses is a bug, not trouble to wait out
    assert storage_error(psycopg.errors.UndefinedTable('relation "x" does not exist')) is None


@pytest.mark.timeout(180)
def test_the_server_stops_during_a_run_and_every_file_lands_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(FILES):
        (inbox / f"doc{i:02}.txt").write_text(f"content {i}")
    DirSource.calls.clear()
    with PostgresServer() as pg:
        settings = parse_settings(
            {
                "state": {
                    "dir": str(tmp_path / "state"),
                    "backend": "postgresql",
                    "dsn": pg.create_database(),
                },
                "pipeline": {
                    "transforms": ["org"],
                    "sink": "store",
                    "workers": 3,
                    "retry_base": 0.02,
                    "retry_max": 0.2,
                    "once_timeout": 120,
                },
                "sinks": {"store": {"db": str(tmp_path / "store.db"), "step_delay": 0.05}},
                "sources": [{"name": "inbox", "type": "dir", "path": str(inbox)}],
            }
        )
        caplog.set_level(logging.INFO, logger="itglue_ingest")
        store = tmp_path / "store.db"
        stop = threading.Event()
        with Engine(settings, plugin_manager()) as engine:
            daemon = threading.Thread(target=engine.run, args=(stop,))
            daemon.start()
            try:
                wait_for(lambda: len(store_documents(store)) >= 5, timeout=60)
                pg.pause()  # connections cut, the server gone
                wait_for(lambda: "storage trouble" in caplog.text, timeout=60)
                time.sleep(1.0)  # the engine backs off meanwhile
                pg.resume()
                wait_for(
                    lambda: engine.ledger.counts().get("inbox") == {"done": FILES},
                    timeout=120,
                    message="every file delivered and acked",
                )
            finally:
                stop.set()
                daemon.join(60)
        assert not daemon.is_alive()
    refs = Counter(ref for _, _, _, ref in store_documents(store))
    assert sorted(refs) == sorted(f"doc{i:02}.txt" for i in range(FILES))
    assert set(refs.values()) == {1}, "a file delivered twice"
    assert "storage usable again" in caplog.text
    # the pool's own warning per reconnection attempt (about one a second per pool) is
    # left out: the engine logs the outage when it starts, once a minute and when it ends
    assert not [r for r in caplog.records if r.name.startswith("psycopg")], caplog.text
    assert not [c for c in DirSource.calls if c[0] == "nack"]
