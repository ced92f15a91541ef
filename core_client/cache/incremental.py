"""Refreshing the cache from IT Glue at a cost in proportion to what changed.

Per kind, the cheapest listing the API documents (docs/itglue-api.md, 2): organizations
take ``filter[updated_at]=<last change seen>,*``; configurations and contacts are listed
newest change first (``sort=-updated_at``) and the listing stops at the first page that
reaches back past the last change seen; the small lookup tables are listed whole (one
request each); documents, listed per organization only, are re-listed for the
organizations the cache holds documents of. A deletion leaves no ``updated-at``: the
listing's ``total-count`` is compared with the cached count, and only a mismatch costs a
full listing. The first refresh of a kind is always a full one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from core_client import models
from core_client.jsonapi import many

from .records import KINDS, NAMED_KINDS, attr, flatten, kind

if TYPE_CHECKING:
    from core_client.client import ITGlueClient
    from core_client.models import Resource

    from .store import MetadataCache

log = logging.getLogger("itglue_ingest.cache")

How = Literal["filter", "sort", "full", "documents"]
PLANS: dict[str, How] = {
    "organizations": "filter",  # the only kind with a documented filter[updated_at]
    "configurations": "sort",
    "contacts": "sort",
    "documents": "documents",
    **{k.name: "full" for k in NAMED_KINDS},
}
PAGE = 1000


@dataclass
class RefreshResult:
    """What one refresh of a kind did: ``mode`` full or incremental, ``records``
    listed (full) or changed (incremental), ``requests`` sent."""

    kind: str
    mode: str
    records: int
    requests: int


def parse_time(value: Any) -> datetime | None:
    """An API timestamp (``2024-01-02T03:04:05.000Z``) as an aware datetime, else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def filter_time(moment: datetime) -> str:
    """The documented filter format, cut to the second (the bound is inclusive)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _updated(record: Resource) -> datetime | None:
    return parse_time(attr(flatten(record), "updated-at"))


def _changed(record: Resource, since: datetime) -> bool:
    """Changed after the newest change the last refresh saw (that one it has: a change
    in the same millisecond after that listing is the one thing this can miss)."""
    moment = _updated(record)
    return moment is None or moment > since


class CacheRefresher:
    """Refreshes the kinds of ``cache`` (default: the client's) from ``client``."""

    def __init__(self, client: ITGlueClient, cache: MetadataCache | None = None) -> None:
        self.client = client
        self.cache = cache if cache is not None else client.cache
        self.requests = 0
        self._progress: Callable[[int], None] | None = None

    def _page(
        self, path: str, model: type[Resource], params: dict[str, Any]
    ) -> tuple[list[Resource], dict[str, Any]]:
        self.requests += 1
        resp = self.client.request("GET", path, params=params)
        body = resp.body if isinstance(resp.body, dict) else {}
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        return list(many(resp, model)), dict(meta or {})

    def _listing(
        self, path: str, model: type[Resource], params: dict[str, Any] | None = None
    ) -> Iterator[Resource]:
        """Every page of a listing (``meta.next-page`` until null)."""
        number = 1
        while True:
            records, meta = self._page(
                path, model, {**(params or {}), "page[size]": PAGE, "page[number]": number}
            )
            yield from records
            nxt = meta.get("next-page")
            if not records or not isinstance(nxt, int) or nxt <= number:
                return
            number = nxt

    def refresh(
        self,
        kind_name: str,
        *,
        full: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> RefreshResult:
        """Refresh one kind: incrementally when it can, fully when ``full``, on the
        first refresh, or when the counts show records were deleted. ``progress``:
        called with the count as a full listing streams in."""
        self._progress = progress
        k = kind(kind_name)
        how = PLANS[k.name]
        self.requests = 0
        if how == "documents":
            return self._documents()
        info = self.cache.refresh_info(k.name)
        since = parse_time(info.get("watermark")) if info else None
        if full or how == "full" or info is None or since is None:
            return self._full(k.name)
        model = getattr(models, k.model)
        if how == "filter":
            # the filter works to the second: what changed in the watermark's second
            # comes back again, and is left out as seen
            listed = self._listing(
                f"/{k.name}", model, {"filter[updated_at]": f"{filter_time(since)},*"}
            )
            changed = [r for r in listed if _changed(r, since)]
            _, meta = self._page(f"/{k.name}", model, {"page[size]": 1})
        else:
            changed, meta = self._newest_first(k.name, model, since)
        newest = max((t for t in map(_updated, changed) if t is not None), default=since)
        watermark = info.get("watermark") if newest <= since else _iso(changed, newest)
        count = self.cache.apply_changes(
            k.name, changed, watermark=watermark, requests=self.requests
        )
        total = meta.get("total-count")
        cached = self.cache.count(k.name)
        if isinstance(total, int) and cached != total:
            log.debug(
                "cache: %d %s cached, %d in IT Glue (some were deleted): listing them all",
                cached,
                k.name,
                total,
            )
            return self._full(k.name)  # its requests count the incremental one too
        return RefreshResult(k.name, "incremental", count, self.requests)

    def _newest_first(
        self, kind_name: str, model: type[Resource], since: datetime
    ) -> tuple[list[Resource], dict[str, Any]]:
        """Records changed after ``since``, newest first, until a page reaches back to
        it; and the first page's meta (the total count)."""
        changed: list[Resource] = []
        first: dict[str, Any] | None = None
        number = 1
        while True:
            records, meta = self._page(
                f"/{kind_name}",
                model,
                {"sort": "-updated_at", "page[size]": PAGE, "page[number]": number},
            )
            first = meta if first is None else first
            older = False
            for record in records:
                if _changed(record, since):
                    changed.append(record)
                else:
                    older = True
            nxt = meta.get("next-page")
            if older or not records or not isinstance(nxt, int) or nxt <= number:
                return changed, first
            number = nxt

    def _full(self, kind_name: str) -> RefreshResult:
        k = KINDS[kind_name]
        listing = self._listing(f"/{k.name}", getattr(models, k.model))
        count = self.cache.refresh(k.name, listing, progress=self._progress)
        return RefreshResult(k.name, "full", count, self.requests)

    def _documents(self) -> RefreshResult:
        """Documents are listed per organization: those the cache holds documents of."""
        total = 0
        for org in self.cache.document_organizations():
            listing = self._listing(
                f"/organizations/{org}/relationships/documents", models.Document
            )
            total += self.cache.refresh("documents", listing, organization_id=org)
        return RefreshResult("documents", "full", total, self.requests)


def _iso(changed: list[Resource], newest: datetime) -> str | None:
    """The API's own spelling of the newest ``updated-at`` among ``changed``."""
    for record in changed:
        if _updated(record) == newest:
            value = attr(flatten(record), "updated-at")
            return str(value)
    return filter_time(newest)


__all__ = ["PLANS", "CacheRefresher", "RefreshResult", "filter_time", "parse_time"]
