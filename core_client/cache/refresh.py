"""Full refreshes from the paginated lists, and the staleness they record.

The listing is streamed into a staging table (``cache_stage``: on SQLite a TEMP table of
the cache's connection, on PostgreSQL an UNLOGGED table, rows keyed by this refresh's
stage id). Staging takes no lock on the shared database, however long the rate limiter
makes the pages take; the rows are then swapped in with one short write transaction:
readers see the old rows or the new ones, never an empty or half-filled table, and a
listing that fails half way changes nothing.
"""

# ruff: noqa: S608  -- table/column names come from the fixed KINDS table; values are bound

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from core_client.database import Connection

from .base import (
    BATCH,
    CacheBase,
    MaxAge,
    seconds,
)
from .records import Kind, kind, opt_id

log = logging.getLogger("itglue_ingest.cache")

# the staging table's generic columns, the kind's indexed columns in order
STAGED = ("c1", "c2", "c3", "c4")
# SQLite: the TEMP table of the cache's connection (the PostgreSQL one is in the schema)
SQLITE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS cache_stage (stage TEXT NOT NULL, id TEXT NOT NULL,"
    " c1 TEXT, c2 TEXT, c3 TEXT, c4 TEXT, data TEXT NOT NULL, staged_at REAL NOT NULL,"
    " PRIMARY KEY (stage, id))"
)
ABANDONED = 86400.0  # staged rows older than this belong to a refresh that died


class RefreshMixin(CacheBase):
    """refresh(kind, items), refresh_<kind>(items), last_refresh, is_stale."""

    def refresh(
        self,
        kind_name: str,
        items: Iterable[Any],
        *,
        organization_id: str | int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Replace the cached records of a kind with ``items`` (a full listing).

        Streams: ``items`` may be the client's paginated iterator of 100,000 records;
        they are staged in batches, then swapped in with one short transaction (records
        no longer listed are removed; document hashes recorded by the sink survive for
        documents still listed). With ``organization_id`` only that organization's
        records are replaced (for per-organization listings such as documents).
        ``progress(count)`` is called as records arrive. If ``items`` raises, the cache
        is left as it was. Returns the number of records.
        """
        k = kind(kind_name)
        org = opt_id(organization_id)
        if org is not None and "organization_id" not in k.columns:
            raise ValueError(f"{k.name} are not listed per organization")
        stage = uuid.uuid4().hex
        started = time.monotonic()
        started_at = time.time()
        self._prepare_stage(started_at)
        try:
            count = 0
            watermark: str | None = None  # the newest change the listing showed
            batch: list[tuple[Any, ...]] = []
            for item in items:
                data = self._attributes(k, item, org)
                changed = data.get("updated-at")
                if isinstance(changed, str) and (watermark is None or changed > watermark):
                    watermark = changed
                batch.append(self._pack(k, data))
                count += 1
                if len(batch) >= BATCH:
                    self._stage(stage, batch)
                    batch = []
                    if progress is not None:
                        progress(count)
            self._stage(stage, batch)
            if progress is not None:
                progress(count)
            now = time.time()
            staged = ", ".join(STAGED[: len(k.columns)])
            with self._write() as conn:
                conn.execute(
                    self._upsert_sql(
                        k, f"SELECT id, {staged}, data, ? FROM cache_stage WHERE stage=?"
                    ),
                    (now, stage),
                )
                # Records cached by others since the listing began (a document the sink
                # just recorded, an organization fetched by id) may be missing from it.
                scope, params = ("organization_id=? AND ", (org,)) if org else ("", ())
                removed = conn.execute(
                    f"DELETE FROM {k.table} WHERE {scope}cached_at < ? AND NOT EXISTS"
                    f" (SELECT 1 FROM cache_stage AS s WHERE s.stage=? AND s.id={k.table}.id)",
                    (*params, started_at, stage),
                ).rowcount
                meta = {
                    "at": now,
                    "count": count,
                    "seconds": time.monotonic() - started,
                    "watermark": watermark,
                    "mode": "full",
                }
                self._save_refresh(conn, self._refresh_key(k, org), meta)
        finally:
            with self._read() as conn:
                conn.execute("DELETE FROM cache_stage WHERE stage=?", (stage,))
        if removed:
            log.debug("cache: %d %s no longer listed, invalidated", removed, k.name)
        log.info("refreshed %d cached %s", count, k.name, extra={"cache_kind": k.name})
        return count

    def _prepare_stage(self, now: float) -> None:
        with self._read() as conn:
            if self.db.dialect == "sqlite":
                conn.execute(SQLITE_STAGE)
            conn.execute("DELETE FROM cache_stage WHERE staged_at < ?", (now - ABANDONED,))

    def _stage(self, stage: str, batch: list[tuple[Any, ...]]) -> None:
        """Stage rows with one multi-row INSERT outside any write transaction: on SQLite
        it writes the TEMP database only, on PostgreSQL an UNLOGGED table (autocommit),
        so neither waits for nor blocks the cache's or the ledger's writers."""
        if not batch:
            return
        now = time.time()
        latest = {row[0]: row for row in batch}  # one row per id (a listing may repeat one)
        values: list[Any] = []
        for record_id, *columns, data in latest.values():
            values += [stage, record_id, *columns, *[None] * (len(STAGED) - len(columns))]
            values += [data, now]
        row_sql = "(" + ", ".join("?" * (len(STAGED) + 4)) + ")"
        updates = ", ".join(f"{c}=excluded.{c}" for c in (*STAGED, "data", "staged_at"))
        with self._read() as conn:
            conn.execute(
                f"INSERT INTO cache_stage(stage, id, {', '.join(STAGED)}, data, staged_at)"
                f" VALUES {', '.join([row_sql] * len(latest))}"
                f" ON CONFLICT(stage, id) DO UPDATE SET {updates}",
                values,
            )

    @staticmethod
    def _save_refresh(conn: Connection, key: str, meta: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO cache_metadata(key, value, updated_at) VALUES(?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value,"
            " updated_at=excluded.updated_at",
            (key, json.dumps(meta), meta["at"]),
        )

    def refresh_info(
        self, kind_name: str, organization_id: str | int | None = None
    ) -> dict[str, Any] | None:
        """What the last refresh of the kind recorded: ``at`` (epoch seconds), ``count``,
        ``seconds``, ``watermark`` (the newest ``updated-at`` it saw), ``mode``."""
        row = self._one(
            "SELECT value FROM cache_metadata WHERE key=?",
            (self._refresh_key(kind(kind_name), opt_id(organization_id)),),
        )
        return None if row is None else dict(json.loads(row[0]))

    def apply_changes(
        self, kind_name: str, items: Iterable[Any], *, watermark: str | None, requests: int
    ) -> int:
        """Upsert the records an incremental listing returned (changed since the last
        refresh) and record the refresh with its new ``watermark``; returns how many."""
        k = kind(kind_name)
        rows = [self._row(k, item) for item in items]
        count = len(rows)
        now = time.time()
        with self._write() as conn:  # the changes and their watermark together
            self._upsert(conn, k, rows)
            meta = {
                "at": now,
                "count": count,
                "seconds": 0.0,
                "watermark": watermark,
                "mode": "incremental",
                "requests": requests,
            }
            self._save_refresh(conn, self._refresh_key(k, None), meta)
        log.info(
            "refreshed %s: %d changed since the last refresh (%d requests)",
            k.name,
            count,
            requests,
            extra={"cache_kind": k.name},
        )
        return count

    def count(self, kind_name: str) -> int:
        """How many records of the kind are cached."""
        k = kind(kind_name)
        (n,) = self._one(f"SELECT count(*) FROM {k.table}")
        return int(n)

    @staticmethod
    def _refresh_key(k: Kind, organization_id: str | None) -> str:
        key = f"refresh:{k.name}"
        return key if organization_id is None else f"{key}@{organization_id}"

    def refresh_organizations(self, items: Iterable[Any], **kw: Any) -> int:
        """Full refresh of organizations from ``client.list_organizations()``."""
        return self.refresh("organizations", items, **kw)

    def refresh_configurations(self, items: Iterable[Any], **kw: Any) -> int:
        """Full refresh of configurations from ``client.list_configurations()``."""
        return self.refresh("configurations", items, **kw)

    def refresh_contacts(self, items: Iterable[Any], **kw: Any) -> int:
        """Full refresh of contacts from ``client.list_contacts()``."""
        return self.refresh("contacts", items, **kw)

    def refresh_documents(self, items: Iterable[Any], **kw: Any) -> int:
        """Refresh documents (``organization_id=`` for one organization's listing)."""
        return self.refresh("documents", items, **kw)

    def last_refresh(
        self, kind_name: str, organization_id: str | int | None = None
    ) -> float | None:
        """When the kind (or one organization's records of it) was last refreshed."""
        info = self.refresh_info(kind_name, organization_id)
        return None if info is None else float(info["at"])

    def is_stale(
        self,
        kind_name: str,
        max_age: MaxAge | None = None,
        *,
        max_age_hours: float | None = None,
        organization_id: str | int | None = None,
    ) -> bool:
        """True when the kind was never refreshed or longer ago than ``max_age``.

        ``max_age`` in seconds or a timedelta (``max_age_hours=`` as in the seed API);
        default 24 hours.
        """
        if max_age is not None and max_age_hours is not None:
            raise ValueError("give max_age or max_age_hours, not both")
        limit = (
            seconds(max_age)
            if max_age is not None
            else seconds(timedelta(hours=max_age_hours))
            if max_age_hours is not None
            else self.default_max_age
        )
        at = self.last_refresh(kind_name, organization_id)
        return at is None or time.time() - at > limit
