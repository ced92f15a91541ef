"""MetadataCache: IT Glue metadata in the state database (SQLite or PostgreSQL).

Why a cache: routing resolves organization and configuration names for every record,
and the sink deduplicates by content hash before uploading; one API call per record
for either would burn the account's request budget. The cache answers both from
indexed lookups (well under a millisecond with 100,000 rows, see
``bench/bench_cache.py``), is refreshed from the paginated lists, and keeps serving
(stale) data while IT Glue is unavailable.

Layout: ``base`` (the database, counters, row mapping), ``lookups`` (by id/name/e-mail,
``smart_get_*``), ``documents`` (recorded uploads, by hash), ``refresh`` (streamed full
refreshes, staleness), ``search`` (full text: FTS5 or tsvector); this module assembles
them and adds relationships, statistics and maintenance.

Only metadata is stored: documents lose their sections/content before caching, and
nothing of the client (its key) is ever written.
"""

# ruff: noqa: S608  -- table/column names come from the fixed KINDS table; values are bound

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from .base import COUNTERS, iso
from .documents import DocumentsMixin
from .lookups import LookupsMixin
from .postgres_schema import CACHE_TABLES
from .records import KINDS
from .refresh import RefreshMixin
from .search import SearchMixin

log = logging.getLogger("itglue_ingest.cache")


class MetadataCache(LookupsMixin, DocumentsMixin, RefreshMixin, SearchMixin):
    """Cache of organizations, configurations, contacts, documents and relationships.

    ``database``: the state database (``open_state_database(settings, "cache")``), or
    the path of the instance's SQLite file (``Settings.database_path``, shared with the
    ledger). Safe to use from several threads, processes and collectors at once.
    """

    # -- relationships ---------------------------------------------------------------

    def record_relationship(
        self,
        source_type: str,
        source_id: str | int,
        target_type: str,
        target_id: str | int,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Remember a link (e.g. a related item created by the sink)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO relationships(source_type, source_id, target_type, target_id,"
                " data, cached_at) VALUES(?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(source_type, source_id, target_type, target_id)"
                " DO UPDATE SET data=excluded.data, cached_at=excluded.cached_at",
                (
                    source_type,
                    str(source_id),
                    target_type,
                    str(target_id),
                    json.dumps(dict(attributes or {})),
                    time.time(),
                ),
            )

    def relationships_of(self, source_type: str, source_id: str | int) -> list[dict[str, Any]]:
        """The links recorded from one resource: ``{"target_type", "target_id", ...}``."""
        rows = self._all(
            "SELECT target_type, target_id, data FROM relationships"
            " WHERE source_type=? AND source_id=? ORDER BY target_type, target_id",
            (source_type, str(source_id)),
        )
        return [{"target_type": t, "target_id": i, **json.loads(d)} for t, i, d in rows]

    def forget_relationship(
        self, source_type: str, source_id: str | int, target_type: str, target_id: str | int
    ) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM relationships WHERE source_type=? AND source_id=?"
                " AND target_type=? AND target_id=?",
                (source_type, str(source_id), target_type, str(target_id)),
            )
        return cur.rowcount > 0

    # -- maintenance -----------------------------------------------------------------

    def size_bytes(self) -> int:
        """The space the cache takes: on SQLite the database file plus its write-ahead
        log (shared with the ledger), on PostgreSQL the cache's tables with their
        indexes and TOAST data."""
        if self.path is None:
            (total,) = self._one(
                "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class AS c"
                " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
                " WHERE c.relkind = 'r' AND n.nspname = current_schema()"
                " AND c.relname = ANY(?)",
                (list(CACHE_TABLES),),
            )
            return int(total)
        total = 0
        for p in (self.path, self.path.with_name(self.path.name + "-wal")):
            with suppress(FileNotFoundError):
                total += p.stat().st_size
        return total

    def get_statistics(self) -> dict[str, Any]:
        """Counts, size, refresh times and the hit rate (all processes, all time).

        Keys: ``organization_count``, ``configuration_count``, ``contact_count``,
        ``document_count``, ``documents_with_hash``, ``relationship_count``, ``hits``,
        ``misses``, ``cache_hit_rate`` (0.0-1.0), ``stale_served``, ``written`` (rows the
        client wrote through), ``size_bytes``, ``database_path`` (the file, or the DSN
        without its password), ``backend``, ``last_refresh`` ({kind: ISO time or None}),
        ``kinds`` ({kind: rows and ages, see :meth:`_kind_ages`}), ``search_entries``,
        ``document_texts``.
        """
        self._flush_counters()
        stats: dict[str, Any] = {"database_path": self.db.describe(), "backend": self.db.dialect}
        with self._read() as conn:
            for k in KINDS.values():
                (stats[f"{k.singular}_count"],) = conn.execute(
                    f"SELECT count(*) FROM {k.table}"
                ).fetchone()
            (stats["documents_with_hash"],) = conn.execute(
                "SELECT count(*) FROM documents WHERE sha256 IS NOT NULL"
            ).fetchone()
            (stats["relationship_count"],) = conn.execute(
                "SELECT count(*) FROM relationships"
            ).fetchone()
            counters = dict.fromkeys(COUNTERS, 0)
            for key, value in conn.execute(
                "SELECT key, value FROM cache_metadata WHERE key LIKE 'stat:%'"
            ).fetchall():
                counters[key[5:]] = int(value)
            (stats["search_entries"],) = conn.execute(
                "SELECT count(*) FROM search_index"
            ).fetchone()
            (stats["document_texts"],) = conn.execute(
                "SELECT count(*) FROM document_text"
            ).fetchone()
        stats.update(counters)
        lookups = counters["hits"] + counters["misses"]
        stats["cache_hit_rate"] = counters["hits"] / lookups if lookups else 0.0
        stats["size_bytes"] = self.size_bytes()
        stats["last_refresh"] = {k: iso(self.last_refresh(k)) for k in KINDS}
        stats["kinds"] = self._kind_ages(time.time())
        return stats

    def _kind_ages(self, now: float) -> dict[str, dict[str, Any]]:
        """Per kind: rows, the last refresh (time, age, full or incremental) and the
        age of the oldest and newest row (seconds)."""
        out: dict[str, dict[str, Any]] = {}
        for k in KINDS.values():
            count, oldest, newest = self._one(
                f"SELECT count(*), min(cached_at), max(cached_at) FROM {k.table}"
            )
            info = self.refresh_info(k.name)
            at = None if info is None else float(info["at"])
            out[k.name] = {
                "count": count,
                "last_refresh": iso(at),
                "refresh_age_seconds": None if at is None else max(0.0, now - at),
                "refresh_mode": None if info is None else info.get("mode", "full"),
                "oldest_row_seconds": None if oldest is None else max(0.0, now - oldest),
                "newest_row_seconds": None if newest is None else max(0.0, now - newest),
            }
        return out

    def vacuum(self) -> dict[str, int]:
        """Compact the storage: on SQLite the whole database file (cache and ledger),
        truncating the WAL; on PostgreSQL ``VACUUM (ANALYZE)`` of the cache's tables
        (space is made reusable and statistics refreshed; PostgreSQL gives it back to
        the operating system only with ``VACUUM FULL``, which locks the tables and is
        left to the database's administrator).

        Returns ``{"size_before": bytes, "size_after": bytes}``.
        """
        before = self.size_bytes()
        self._flush_counters()
        with self._read() as conn:  # outside any transaction: VACUUM refuses to run in one
            if self.db.dialect == "sqlite":
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("PRAGMA optimize")
            else:
                conn.execute(f"VACUUM (ANALYZE) {', '.join(CACHE_TABLES)}")
        after = self.size_bytes()
        log.info("vacuumed %s (%d -> %d bytes)", self.db.describe(), before, after)
        return {"size_before": before, "size_after": after}
