"""HTTP/JSON feed source (``type = "http_feed"``): documents pulled from paginated JSON APIs.

Each poll walks the feed page by page (next link in the body, RFC 8288 ``Link`` header,
page number, offset/limit or opaque cursor), maps every item to a record (id, name,
file URL / inline base64 / text or HTML body, organization, updated-at) and emits it,
streaming downloads into the engine's spool. A package of small modules, one job each:
:mod:`.options` (the configuration keys), :mod:`.values` (URLs, dotted paths,
timestamps), :mod:`.transport` (retries, redirects, downloads; why hand-written),
:mod:`.deadline` (a total time limit per request), :mod:`.guard` (which hosts and
addresses the feed may send the source to), :mod:`.parsing` (JSON at any nesting depth),
:mod:`.pagination` (the styles), :mod:`.checkpoint` (how far the updated-at checkpoint
may move), :mod:`.items` (an item mapped to a draft), :mod:`.intake` (an item into the
spool, downloads streamed), :mod:`.report` (what a poll did), :mod:`.source` (the poll
and exactly-once rules).
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline import Source, hookimpl

from .options import HttpFeedOptions
from .report import PollReport
from .source import HttpFeedSource

__all__ = ["HttpFeedOptions", "HttpFeedSource", "PollReport"]


@hookimpl
def ingest_register_sources(register: Callable[[str, type[Source]], None]) -> None:
    """The ``http_feed`` source type."""
    register("http_feed", HttpFeedSource)
