"""The pagination styles: the first request of a poll and the request after a page.

Each style answers "what is the next page?" from the page just fetched; a ``Page``
carries the token the ``cursor`` checkpoint saves to resume there (the cursor, or the
next link's URL). Loops are detected by the poll, which remembers every request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests

from .options import (
    CursorPagination,
    HttpFeedOptions,
    LinkHeaderPagination,
    NextLinkPagination,
    OffsetPagination,
    PagePagination,
    Pagination,
)
from .transport import FeedProblem
from .values import MISSING, lookup, type_name


@dataclass
class Page:
    url: str
    params: dict[str, Any]
    token: str | None  # what the cursor checkpoint would save to resume at this page
    number: int = 0  # page style: the page number; offset style: the offset

    def key(self) -> str:
        return json.dumps([self.url, sorted((k, str(v)) for k, v in self.params.items())])


def first_page(opts: HttpFeedOptions, since: str | None, saved: str | None) -> Page:
    """The first request of a poll (``saved``: the cursor checkpoint, if any)."""
    params: dict[str, Any] = dict(opts.params)
    if since is not None and opts.since_param:
        params[opts.since_param] = since
    pg = opts.pagination
    url = opts.url
    if isinstance(pg, CursorPagination):
        if saved:
            params[pg.cursor_param] = saved
        return Page(url, params, saved)
    if isinstance(pg, NextLinkPagination | LinkHeaderPagination) and saved:
        return Page(saved, {}, saved)
    if isinstance(pg, PagePagination):
        if pg.size_param and pg.page_size:
            params[pg.size_param] = pg.page_size
        params[pg.page_param] = pg.first_page
        return Page(url, params, None, pg.first_page)
    if isinstance(pg, OffsetPagination):
        params[pg.offset_param] = 0
        params[pg.limit_param] = pg.limit
        return Page(url, params, None, 0)
    return Page(url, params, None)


def _join(base_url: str, link: str, what: str) -> str:
    """``link`` resolved against ``base_url``; a link urllib cannot parse is the feed's
    problem (``http://[oops`` raises ValueError), not a crash of the poll."""
    try:
        return urljoin(base_url, link)
    except ValueError as e:
        raise FeedProblem(f"{what} is not a valid URL ({e})", transient=False) from None


def next_page(
    pg: Pagination, page: Page, resp: requests.Response, doc: Any, items: list[Any]
) -> Page | None:
    """The request after ``page``, or None at the end of the feed. A ``Page`` numbered -1
    also ends the feed but carries the cursor to keep for the next poll."""
    base_url = resp.url or page.url
    if isinstance(pg, NextLinkPagination):
        nxt = lookup(doc, pg.next_path)
        if nxt is MISSING or nxt is None or nxt == "":
            return None
        if not isinstance(nxt, str):
            raise FeedProblem(
                f"next link at {pg.next_path!r} is {type_name(nxt)}, expected a URL string",
                transient=False,
            )
        url = _join(base_url, nxt, f"next link at {pg.next_path!r}")
        return Page(url, {}, url)
    if isinstance(pg, LinkHeaderPagination):
        link = resp.links.get("next", {}).get("url")
        if not link:
            return None
        url = _join(base_url, link, "next link in the Link header")
        return Page(url, {}, url)
    if isinstance(pg, PagePagination):
        if not items or (pg.page_size and len(items) < pg.page_size):
            return None
        params = dict(page.params)
        params[pg.page_param] = page.number + 1
        return Page(page.url, params, None, page.number + 1)
    if isinstance(pg, OffsetPagination):
        if len(items) < pg.limit:
            return None
        params = dict(page.params)
        params[pg.offset_param] = page.number + len(items)
        return Page(page.url, params, None, page.number + len(items))
    if isinstance(pg, CursorPagination):
        cursor = lookup(doc, pg.cursor_path)
        if cursor is MISSING or cursor is None or cursor == "":
            return None
        if not isinstance(cursor, str | int) or isinstance(cursor, bool):
            raise FeedProblem(
                f"cursor at {pg.cursor_path!r} is {type_name(cursor)}, expected a string",
                transient=False,
            )
        if pg.has_more_path is not None:
            more = lookup(doc, pg.has_more_path)
            if more is not MISSING and not isinstance(more, bool):
                raise FeedProblem(
                    f"{pg.has_more_path!r} is {type_name(more)}, expected true/false",
                    transient=False,
                )
            if more is False:
                # the end of a change feed: keep its latest cursor for the next poll
                return Page(page.url, {}, str(cursor), number=-1)
        if not items and str(cursor) == page.token:
            # an empty page that hands back its own cursor: nothing new yet
            return Page(page.url, {}, str(cursor), number=-1)
        params = dict(page.params)
        params[pg.cursor_param] = str(cursor)
        return Page(page.url, params, str(cursor))
    return None
