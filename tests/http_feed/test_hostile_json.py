"""Feed JSON nested deeper than the source will follow: the hostile item fails alone with
a reason, the other items of its page (and of the next pages) land, and later polls do
not fail it again. Nesting is what makes Python's JSON decoder, encoder and every
recursive walk raise ``RecursionError``; any depth, arrays or objects, must be safe."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plugins.http_feed.parsing import MAX_DEPTH
from tests.http_feed.http_feed_helpers import make_settings, run_once, stored
from tests.http_feed.http_feed_server import FeedServer, Raw, add_doc

Options = Callable[..., dict[str, Any]]


def nested(kind: str, depth: int) -> str:
    """``depth`` arrays or objects inside each other, as JSON text."""
    if kind == "arrays":
        return "[" * depth + '"core"' + "]" * depth
    return '{"a":' * depth + '"core"' + "}" * depth


def deep_reason(ref: str, summary: Any) -> str:
    return next(f["reason"] for f in summary.failures if f["source_ref"] == ref)


@pytest.mark.parametrize(
    ("kind", "depth"),
    [("arrays", 990), ("objects", 990), ("arrays", 5_000), ("objects", 100_000)],
)
def test_a_deeply_nested_item_fails_alone(
    kind: str,
    depth: int,
    feed: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
) -> None:
    for i in range(1, 6):
        add_doc(feed, i)
    # doc-2 (on the first page, between good items) carries the hostile value
    feed.state.items["doc-2"]["attributes"]["extra"] = Raw(nested(kind, depth))
    settings = make_settings(ingest_state_dir, sink_db, source_options("next_link"))
    summary, poll = run_once(settings)
    assert poll.error is None and poll.complete
    assert summary.delivered == 4 and summary.failed == 1
    assert deep_reason("doc-2", summary) == (
        f"item is nested deeper than {MAX_DEPTH} levels (arrays/objects inside each other)"
    )
    assert sorted(d["ref"] for d in stored(sink_db)) == ["doc-1", "doc-3", "doc-4", "doc-5"]
    # the failed item is known: the next poll neither fails nor retries the whole page
    summary, poll = run_once(settings)
    assert poll.error is None and (summary.delivered, summary.failed) == (0, 0)


def test_an_item_that_is_itself_deeply_nested_fails_alone(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    add_doc(feed, 1)
    add_doc(feed, 2)
    # not an object at all: 2000 arrays inside each other, served first on the page
    feed.state.items["hostile"] = Raw(nested("arrays", 2_000))  # type: ignore[assignment]
    feed.state.seq["hostile"] = 50
    settings = make_settings(ingest_state_dir, sink_db, source_options("page", since_param=None))
    summary, poll = run_once(settings)
    assert poll.error is None
    assert summary.delivered == 2 and summary.failed == 1
    ((ref, reason),) = [(f["source_ref"], f["reason"]) for f in summary.failures]
    assert ref.startswith("invalid-item:") and "nested deeper than" in reason
    summary, poll = run_once(settings)
    assert poll.error is None and (summary.delivered, summary.failed) == (0, 0)


def test_depth_up_to_the_limit_is_kept(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    """A value exactly as deep as allowed is an ordinary value (the item lands)."""
    add_doc(feed, 1)
    # levels: the page 1, "data" 2, the item 3, "attributes" 4, "extra" 5 to MAX_DEPTH
    feed.state.items["doc-1"]["attributes"]["extra"] = Raw(nested("arrays", MAX_DEPTH - 4))
    settings = make_settings(ingest_state_dir, sink_db, source_options("next_link"))
    summary, poll = run_once(settings)
    assert poll.error is None and summary.delivered == 1 and summary.failed == 0


def test_deep_nesting_in_the_pagination_fails_the_page_with_a_reason(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    add_doc(feed, 1)
    body = '{"data": [], "links": {"next": ' + nested("arrays", 3_000) + "}}"
    feed.state.fail_next("/feed", 200, body=body.encode(), times=1)
    settings = make_settings(ingest_state_dir, sink_db, source_options("next_link"))
    _, poll = run_once(settings)
    assert poll.error == "next link at 'links.next' is a list, expected a URL string"
    summary, poll = run_once(settings)  # the feed answers normally again
    assert poll.error is None and summary.delivered == 1
