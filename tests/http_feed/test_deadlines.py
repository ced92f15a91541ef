"""A server that answers one byte at a time never trips a per-read timeout; each page and
each download has a total deadline instead (``page_timeout``, ``download_timeout``), and
the engine's stop interrupts a request at once, whatever phase it is in."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.http_feed.http_feed_helpers import engine, make_settings, run_once, stored
from tests.http_feed.http_feed_server import Drip, FeedServer, add_doc

Options = Callable[..., dict[str, Any]]

PHASES = {"headers": Drip(headers=True), "body": Drip()}


@pytest.mark.parametrize("phase", PHASES)
def test_a_dripping_page_is_cut_at_page_timeout_and_fetched_on_the_next_poll(
    phase: str, feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    for i in range(1, 4):
        add_doc(feed, i)
    feed.state.drips["/feed"] = PHASES[phase]  # the whole answer would take 17 minutes
    settings = make_settings(ingest_state_dir, sink_db, source_options("page", page_timeout=1))
    summary, poll = run_once(settings)
    assert not summary.timed_out
    assert poll.error == (
        f"feed page {feed.url('/feed/page')}: no complete answer within page_timeout (1 s)"
    )
    assert summary.delivered == 0
    assert feed.state.count("/feed") == 1  # the deadline is the page's, retries included
    del feed.state.drips["/feed"]
    summary, poll = run_once(settings)
    assert poll.error is None and summary.delivered == 3


@pytest.mark.parametrize("phase", PHASES)
def test_a_dripping_download_is_cut_at_download_timeout_and_deferred(
    phase: str, feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    for i in range(1, 4):
        add_doc(feed, i, data=bytes([i]) * 20_000)
    feed.state.drips["/files/doc-2.pdf"] = PHASES[phase]
    opts = source_options("page", download_timeout=1)
    summary, poll = run_once(make_settings(ingest_state_dir, sink_db, opts))
    assert not summary.timed_out
    assert poll.error is None and poll.deferred == 1
    assert summary.delivered == 2 and summary.failed == 0  # nothing truncated was kept
    assert feed.state.downloads("doc-2.pdf") == 1
    del feed.state.drips["/files/doc-2.pdf"]
    summary, poll = run_once(make_settings(ingest_state_dir, sink_db, opts))
    assert summary.delivered == 1
    doc2 = next(d for d in stored(sink_db) if d["ref"] == "doc-2")
    assert doc2["files"][0][2] == bytes([2]) * 20_000


@pytest.mark.parametrize(
    ("path", "phase"),
    [("/feed", "headers"), ("/feed", "body"), ("/files/doc-1.pdf", "headers"), ("/files/", "body")],
)
def test_stop_interrupts_a_dripping_request_and_the_daemon_leaves_no_thread_behind(
    path: str,
    phase: str,
    feed: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_doc(feed, 1, data=b"%PDF" + bytes(20_000))
    feed.state.drips[path] = PHASES[phase]
    settings = make_settings(ingest_state_dir, sink_db, source_options("page"))  # default limits
    stop = threading.Event()
    with caplog.at_level(logging.INFO), engine(settings) as eng:
        daemon = threading.Thread(target=eng.run, args=(stop,), name="test-daemon")
        daemon.start()
        assert feed.state.dripping.wait(30)
        stopped_at = time.monotonic()
        stop.set()
        daemon.join(30)
        assert not daemon.is_alive()
        watchers = [t for t in threading.enumerate() if t.name == "watch-feed"]
        for t in watchers:
            t.join(5)
        print(f"source thread ended {time.monotonic() - stopped_at:.2f} s after stop")
        assert not [t for t in watchers if t.is_alive()]
    assert "sources still busy at shutdown" not in caplog.text
    assert stored(sink_db) == []  # nothing half-read was kept
