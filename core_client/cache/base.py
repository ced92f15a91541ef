"""The cache's plumbing: per-thread connections, transactions, counters, row mapping.

One SQLite connection per thread (``threading.local``): the engine's workers look up
concurrently, and in WAL mode readers never wait for each other or for the ledger's
writers. Connections are closed together by :meth:`CacheBase.close`; a worker pool's
threads each open one, once. Hit/miss counters are kept in memory and added to
``cache_metadata`` every 30 s and on close, so ``itglue-ingest cache stats`` in another
process sees the daemon's figures without a write per lookup.
"""

# ruff: noqa: S608  -- table/column names come from the fixed KINDS table; values are bound

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from core_client.sqlite import connect, migrate, transaction

from .records import CachedDocument, Kind, attr, flatten, kind
from .schema import COMPONENT, MIGRATIONS

log = logging.getLogger("itglue_ingest.cache")

MaxAge = float | int | timedelta

DEFAULT_MAX_AGE = timedelta(hours=24)
FLUSH_INTERVAL = 30.0  # seconds between persisting hit/miss counters
BATCH = 500  # rows per staging insert during a refresh
# Document attributes that carry content, not metadata: never cached.
CONTENT_KEYS = frozenset({"sections", "document-sections", "content", "body", "included"})
# lookups answered / not answered, stale answers while IT Glue was down, rows the
# client's responses wrote through
COUNTERS = ("hits", "misses", "stale_served", "written")
HEX = frozenset("0123456789abcdef")


def seconds(max_age: MaxAge) -> float:
    """``max_age`` (seconds or a timedelta) in seconds; negative is an error."""
    value = max_age.total_seconds() if isinstance(max_age, timedelta) else float(max_age)
    if value < 0:
        raise ValueError("max_age must not be negative")
    return value


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def check_sha256(sha256: str) -> str:
    value = sha256.strip().lower()
    if len(value) != 64 or not set(value) <= HEX:
        raise ValueError("sha256 must be 64 hexadecimal characters")
    return value


def is_unavailable(error: BaseException) -> bool:
    """The API could not answer (breaker open, 5xx, 429, transport): serve stale data."""
    return bool(getattr(error, "transient", False))


def is_not_found(error: BaseException) -> bool:
    return getattr(error, "status", None) == 404 or type(error).__name__ == "NotFoundError"


class CacheBase:
    """Connections, transactions, statistics counters and record <-> row mapping."""

    def __init__(self, path: Path | str, *, default_max_age: MaxAge = DEFAULT_MAX_AGE) -> None:
        self.path = Path(path)
        self.default_max_age = seconds(default_max_age)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        self._pending = dict.fromkeys(COUNTERS, 0)  # not yet persisted
        self._last_flush = time.monotonic()
        try:
            migrate(self._conn(), COMPONENT, MIGRATIONS)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections and transactions ------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._closed:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the metadata cache is closed")
                conn = connect(self.path)
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with transaction(conn):
            yield conn

    def close(self) -> None:
        """Persist the hit/miss counters and close every thread's connection (idempotent)."""
        if self._closed:
            return
        try:
            self._flush_counters()
        except sqlite3.Error as e:  # a locked database must not prevent closing
            log.warning("cache statistics not saved: %s", e)
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    # -- statistics counters ---------------------------------------------------------

    def _count(self, counter: str, n: int = 1) -> None:
        with self._lock:
            self._pending[counter] += n
            due = time.monotonic() - self._last_flush > FLUSH_INTERVAL
        if due:
            try:
                self._flush_counters()
            except sqlite3.Error as e:
                log.debug("cache statistics flush postponed: %s", e)

    def _flush_counters(self) -> None:
        with self._lock:
            pending = {k: v for k, v in self._pending.items() if v}
            self._pending = dict.fromkeys(COUNTERS, 0)
            self._last_flush = time.monotonic()
        if not pending:
            return
        try:
            with self._write() as conn:
                conn.executemany(
                    "INSERT INTO cache_metadata(key, value, updated_at) VALUES(?, ?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET updated_at=excluded.updated_at,"
                    " value=CAST(CAST(cache_metadata.value AS INTEGER)"
                    " + CAST(excluded.value AS INTEGER) AS TEXT)",
                    [(f"stat:{k}", str(v), time.time()) for k, v in pending.items()],
                )
        except BaseException:
            with self._lock:  # keep them for the next attempt
                for k, v in pending.items():
                    self._pending[k] += v
            raise

    # -- rows <-> models -------------------------------------------------------------

    @staticmethod
    def _model(k: Kind, record_id: str, data_json: str) -> Any:
        from core_client import models

        data = json.loads(data_json)
        data["id"] = record_id
        return getattr(models, k.model).model_validate(data)

    @staticmethod
    def _document(row: sqlite3.Row | tuple[Any, ...]) -> CachedDocument:
        (doc_id, org_id, name, sha256, size, attachment_ids, data, cached_at, recorded_at) = row
        return CachedDocument(
            id=doc_id,
            organization_id=org_id,
            name=name,
            sha256=sha256,
            size=size,
            attachment_ids=tuple(json.loads(attachment_ids)),
            attributes=json.loads(data),
            cached_at=cached_at,
            recorded_at=recorded_at,
        )

    _DOC_COLUMNS = (
        "id, organization_id, name, sha256, size, attachment_ids, data, cached_at, recorded_at"
    )

    @staticmethod
    def _row(k: Kind, item: Any, organization_id: str | None = None) -> tuple[Any, ...]:
        """(id, *indexed columns, data JSON) for one record of kind ``k``."""
        data = flatten(item)
        record_id = data.pop("id")
        if k.name == "documents":
            for key in CONTENT_KEYS:
                data.pop(key, None)
        if (
            organization_id is not None
            and "organization_id" in k.columns
            and not attr(data, "organization-id")
        ):
            data["organization-id"] = organization_id
        return (record_id, *k.extract(data), json.dumps(data, separators=(",", ":")))

    # -- writing ---------------------------------------------------------------------

    def put(self, kind_name: str, item: Any) -> None:
        """Insert or update one record (a model, JSON:API resource or flat dict)."""
        self.put_many(kind_name, [item])

    def put_many(
        self,
        kind_name: str,
        items: Iterable[Any],
        *,
        organization_id: str | int | None = None,
        written: bool = False,
    ) -> int:
        """Insert or update records without removing others; returns how many.

        ``organization_id``: the owner of records listed under it (a document listing
        does not name it). ``written``: counted as rows the client wrote through.
        """
        k = kind(kind_name)
        org = None if organization_id is None else str(organization_id)
        rows = [self._row(k, item, org) for item in items]
        if rows:
            with self._write() as conn:
                self._upsert(conn, k, rows)
            if written:
                self._count("written", len(rows))
                log.debug("cache: %d %s written through", len(rows), k.name)
        return len(rows)

    def _upsert(self, conn: sqlite3.Connection, k: Kind, rows: list[tuple[Any, ...]]) -> None:
        """Upsert ``_row`` tuples (inside the caller's transaction)."""
        now = time.time()
        conn.executemany(
            self._upsert_sql(k, "VALUES(" + ", ".join("?" * (len(k.columns) + 3)) + ")"),
            [(*row, now) for row in rows],
        )

    @staticmethod
    def _upsert_sql(k: Kind, source: str) -> str:
        columns = ", ".join(("id", *k.columns, "data", "cached_at"))
        updates = ", ".join(f"{c}=excluded.{c}" for c in (*k.columns, "data", "cached_at"))
        return (
            f"INSERT INTO main.{k.table}({columns}) {source}"
            f" ON CONFLICT(id) DO UPDATE SET {updates}"
        )

    def invalidate(self, kind_name: str, record_id: str | int) -> bool:
        """Forget one record (e.g. deleted in IT Glue); True when it was cached."""
        k = kind(kind_name)
        with self._write() as conn:
            cur = conn.execute(f"DELETE FROM {k.table} WHERE id=?", (str(record_id),))
        if cur.rowcount:
            log.debug("cache: %s %s invalidated", k.name, record_id)
        return cur.rowcount > 0
