"""An idle daemon is ready for the first files dropped into it: its extraction workers
are started with the daemon (a worker's interpreter takes seconds to start on a busy
host; the first files waited for it)."""

from __future__ import annotations

import threading
from typing import Any

from tests.waiting import wait_for


def test_an_idle_daemon_has_its_extraction_workers_running(
    emu: Any, drop: Any, e2e_settings: Any, engine_for: Any
) -> None:
    engine = engine_for(e2e_settings())
    (extract,) = [t for t in engine.transforms if t.name == "extract"]
    stop = threading.Event()
    daemon = threading.Thread(target=engine.run, args=(stop,))
    daemon.start()
    try:
        wait_for(
            lambda: len(extract.pool.pids()) == extract.opts.workers,
            timeout=60,
            message="the extraction workers to start with the daemon",
        )
        assert engine.ledger.counts() == {}  # nothing was dropped
    finally:
        stop.set()
        daemon.join(30)
    assert not daemon.is_alive()
