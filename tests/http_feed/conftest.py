"""Fixtures of the http_feed tests: a live feed server on loopback, source settings."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http_feed.http_feed_server import FeedServer, run_feed_server

STYLES: dict[str, dict[str, Any]] = {
    "next_link": {
        "items_path": "data",
        "pagination": {"style": "next_link", "next_path": "links.next"},
    },
    "link_header": {"items_path": "", "pagination": {"style": "link_header"}},
    "page": {
        "items_path": "items",
        "pagination": {"style": "page", "size_param": "per_page", "page_size": 2},
    },
    "offset": {"items_path": "items", "pagination": {"style": "offset", "limit": 2}},
    "cursor": {
        "items_path": "items",
        "pagination": {
            "style": "cursor",
            "cursor_path": "meta.next_cursor",
            "has_more_path": "meta.has_more",
        },
        "checkpoint": "cursor",
    },
}


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[FeedServer]:
    with run_feed_server(tmp_path) as server:
        yield server


@pytest.fixture
def sink_db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def source_options(feed: FeedServer) -> Callable[..., dict[str, Any]]:
    """The [[sources]] table of an http_feed source reading ``/feed/<style>``."""

    def make(style: str = "next_link", **over: Any) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "name": "feed",
            "type": "http_feed",
            "url": feed.url(f"/feed/{style}"),
            "ca_bundle": str(feed.ca_file),
            "fields": {
                "id": "id",
                "name": "attributes.title",
                "file_url": "links.file",
                "organization": "attributes.org",
                "updated_at": "updated_at",
            },
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "max_retries": 2,
            "read_timeout": 10,
        }
        opts.update(copy.deepcopy(STYLES[style]))
        if style != "cursor":
            opts["since_param"] = "since"
        opts.update(over)
        return opts

    return make
