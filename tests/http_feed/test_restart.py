"""A process killed in the middle of a feed (SIGKILL) and restarted: no item is lost or
delivered twice, and what was spooled before the kill is not downloaded again. Also: the
daemon stops promptly while the source waits out a Retry-After."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.child_process import child_env, python_module
from tests.http_feed.http_feed_helpers import engine, make_settings, run_once, stored
from tests.http_feed.http_feed_server import FeedServer, _cursor, add_doc
from tests.waiting import wait_for


def kill_child_while_held(
    feed: FeedServer, hold: str, source: dict[str, Any], state_dir: Path, db: Path
) -> None:
    """Start the engine in a child process, SIGKILL it while the server holds the request
    whose path and query contain ``hold``."""
    ev = threading.Event()
    feed.state.hold[hold] = ev
    cfg = state_dir.parent / "child.json"
    cfg.write_text(json.dumps({"state_dir": str(state_dir), "db": str(db), "source": source}))
    child = subprocess.Popen(
        python_module("tests.http_feed.http_feed_helpers", cfg),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(),
    )
    try:
        assert feed.state.held.wait(60), "the child never reached the held request"
        # deliberate: the child's other threads (workers) run on for a moment, so the
        # kill finds whatever they are doing (any state must survive it)
        time.sleep(0.2)
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        del feed.state.hold[hold]
        feed.state.held.clear()
        ev.set()


@pytest.mark.parametrize(
    ("style", "hold"),
    [
        ("cursor", "cursor=" + _cursor(4).rstrip("=")),  # the request for page 3
        ("next_link", "page=3"),
        ("page", "page=3"),
    ],
)
def test_kill_between_pages_then_restart(
    style: str,
    hold: str,
    feed: FeedServer,
    source_options: Callable[..., dict[str, Any]],
    ingest_state_dir: Path,
    sink_db: Path,
) -> None:
    for i in range(1, 7):
        add_doc(feed, i)
    source = source_options(style)
    kill_child_while_held(feed, hold, source, ingest_state_dir, sink_db)
    assert feed.state.downloads() == 4  # pages 1 and 2 were spooled before the kill

    summary, poll = run_once(make_settings(ingest_state_dir, sink_db, source))
    assert poll.error is None and poll.complete
    assert summary.failed == 0 and summary.pending == 0
    refs = [d["ref"] for d in stored(sink_db)]
    assert sorted(refs) == [f"doc-{i}" for i in range(1, 7)]  # each exactly once
    for i in range(1, 7):
        assert feed.state.downloads(f"doc-{i}.pdf") == 1
    # the restart resumed from the checkpoint instead of walking the feed again
    assert poll.pages == (1 if style == "cursor" else 2)


def test_kill_during_a_download_then_restart(
    feed: FeedServer,
    source_options: Callable[..., dict[str, Any]],
    ingest_state_dir: Path,
    sink_db: Path,
) -> None:
    for i in range(1, 7):
        add_doc(feed, i)
    source = source_options("cursor")
    kill_child_while_held(feed, "/files/doc-3.pdf", source, ingest_state_dir, sink_db)

    summary, poll = run_once(make_settings(ingest_state_dir, sink_db, source))
    assert poll.error is None and summary.failed == 0 and summary.pending == 0
    assert sorted(d["ref"] for d in stored(sink_db)) == [f"doc-{i}" for i in range(1, 7)]
    assert feed.state.downloads("doc-3.pdf") == 2  # cut by the kill, fetched again
    for i in (1, 2, 4, 5, 6):
        assert feed.state.downloads(f"doc-{i}.pdf") == 1


def test_daemon_stops_promptly_during_a_retry_after_wait(
    feed: FeedServer,
    source_options: Callable[..., dict[str, Any]],
    ingest_state_dir: Path,
    sink_db: Path,
) -> None:
    add_doc(feed, 1)
    feed.state.fail_next("/feed", 503, times=100, headers={"Retry-After": "100"})
    settings = make_settings(ingest_state_dir, sink_db, source_options("page"))
    stop = threading.Event()
    with engine(settings) as eng:
        t = threading.Thread(target=eng.run, args=(stop,))
        t.start()
        wait_for(lambda: feed.state.count("/feed"), timeout=10, message="the first request")
        assert feed.state.count("/feed") == 1
        t0 = time.monotonic()
        stop.set()
        t.join(10)
        assert not t.is_alive()
        elapsed = time.monotonic() - t0
    assert elapsed < 5, elapsed
    assert feed.state.count("/feed") == 1  # the wait was cut short, not retried


def test_daemon_polls_again_after_the_interval(
    feed: FeedServer,
    source_options: Callable[..., dict[str, Any]],
    ingest_state_dir: Path,
    sink_db: Path,
) -> None:
    add_doc(feed, 1)
    settings = make_settings(ingest_state_dir, sink_db, source_options("page", poll_interval=0.2))
    stop = threading.Event()
    with engine(settings) as eng:
        t = threading.Thread(target=eng.run, args=(stop,))
        t.start()
        try:
            wait_for(lambda: len(stored(sink_db)) >= 1, timeout=20, message="doc-1")
            add_doc(feed, 2)
            wait_for(lambda: len(stored(sink_db)) >= 2, timeout=20, message="doc-2")
        finally:
            stop.set()
            t.join(10)
    assert sorted(d["ref"] for d in stored(sink_db)) == ["doc-1", "doc-2"]
