"""Each pagination style against a live HTTPS feed, through the real engine: everything
lands once, re-polls download nothing unchanged, changed items are new versions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.http_feed.http_feed_helpers import make_settings, run_once, stored
from tests.http_feed.http_feed_server import FeedServer, add_doc

STYLES = ["next_link", "link_header", "page", "offset", "cursor"]


@pytest.mark.parametrize("style", STYLES)
def test_style_walks_every_page_and_repolls_incrementally(
    style: str,
    feed: FeedServer,
    source_options: Callable[..., dict[str, Any]],
    ingest_state_dir: Path,
    sink_db: Path,
) -> None:
    for i in range(1, 6):
        add_doc(feed, i)
    settings = make_settings(ingest_state_dir, sink_db, source_options(style))

    summary, poll = run_once(settings)
    assert poll.error is None and poll.complete
    assert poll.pages == 3  # 5 items, 2 per page
    assert (summary.delivered, summary.failed, summary.pending) == (5, 0, 0)
    # two workers deliver in parallel: the store's order is not the feed's
    docs = sorted(stored(sink_db), key=lambda d: str(d["ref"]))
    assert [d["ref"] for d in docs] == [f"doc-{i}" for i in range(1, 6)]
    for i, d in enumerate(docs, 1):
        assert d["name"] == f"Report {i}"
        assert d["organization"] == "Acme"
        data, ctype = feed.state.files[f"doc-{i}.pdf"]
        assert d["files"] == [(f"doc-{i}.pdf", ctype, data)]
    assert feed.state.downloads() == 5

    # the same feed again: nothing new, nothing downloaded
    summary, poll = run_once(settings)
    assert poll.error is None
    assert (summary.delivered, summary.duplicate, summary.failed) == (0, 0, 0)
    assert feed.state.downloads() == 5
    assert len(stored(sink_db)) == 5

    # one item changes (new content), one is new, one is touched with the same bytes
    add_doc(feed, 2, updated="2026-02-01T00:00:00Z", data=b"%PDF-1.4 revised two")
    add_doc(feed, 6)
    add_doc(feed, 4, updated="2026-02-02T00:00:00Z")
    summary, poll = run_once(settings)
    assert poll.error is None
    assert (summary.delivered, summary.duplicate, summary.failed) == (2, 1, 0)
    assert feed.state.downloads() == 8
    assert feed.state.downloads("doc-1.pdf") == 1
    new = {d["ref"]: d for d in stored(sink_db)[5:]}
    assert set(new) == {"doc-2", "doc-6"}
    assert new["doc-2"]["version"] == "2026-02-01T00:00:00Z"
    assert new["doc-2"]["files"][0][2] == b"%PDF-1.4 revised two"


def test_updated_at_checkpoint_is_sent_as_since(
    feed: FeedServer,
    source_options: Callable[..., dict[str, Any]],
    ingest_state_dir: Path,
    sink_db: Path,
) -> None:
    for i in range(1, 4):
        add_doc(feed, i)
    settings = make_settings(ingest_state_dir, sink_db, source_options("page"))
    run_once(settings)
    assert "since" not in feed.state.requests[0].query
    n = len(feed.state.requests)
    run_once(settings)
    second = [r for r in feed.state.requests[n:] if r.path.startswith("/feed")]
    assert second[0].query["since"] == "2026-01-01T00:00:03Z"
    assert len(second) == 1  # only the newest item comes back; one short page ends it


def test_cursor_feed_resumes_from_the_saved_cursor(
    feed: FeedServer,
    source_options: Callable[..., dict[str, Any]],
    ingest_state_dir: Path,
    sink_db: Path,
) -> None:
    for i in range(1, 5):
        add_doc(feed, i)
    settings = make_settings(ingest_state_dir, sink_db, source_options("cursor"))
    run_once(settings)
    n = len(feed.state.requests)
    add_doc(feed, 5)
    summary, _ = run_once(settings)
    assert summary.delivered == 1
    second = [r for r in feed.state.requests[n:] if r.path.startswith("/feed")]
    assert len(second) == 1 and second[0].query.get("cursor")


@pytest.mark.parametrize("null_at_end", [True, False])
def test_cursor_feed_without_has_more(
    null_at_end: bool,
    feed: FeedServer,
    source_options: Callable[..., dict[str, Any]],
    ingest_state_dir: Path,
    sink_db: Path,
) -> None:
    """The end is a null cursor (the last page's cursor is kept), or an empty page that
    hands back its own cursor (not a loop)."""
    feed.state.cursor_null_at_end = null_at_end
    for i in range(1, 6):
        add_doc(feed, i)
    opts = source_options("cursor")
    opts["pagination"].pop("has_more_path")
    settings = make_settings(ingest_state_dir, sink_db, opts)
    summary, poll = run_once(settings)
    assert poll.error is None and poll.complete
    assert summary.delivered == 5 and poll.pages == (3 if null_at_end else 4)
    add_doc(feed, 6)
    summary, poll = run_once(settings)
    assert poll.error is None and summary.delivered == 1
    # the poll started where the last one ended, not at the beginning
    assert poll.pages == (1 if null_at_end else 2)
    assert feed.state.downloads() == 6
    summary, poll = run_once(settings)
    assert poll.error is None and summary.delivered == 0
