"""The cache's plumbing: the state database, transactions, counters, row mapping.

The cache lives in a :class:`~core_client.database.Database`: the instance's SQLite
file (given as a path, or opened by the pipeline) or the PostgreSQL database several
collectors share. SQL is written once with ``?`` placeholders; what differs between the
engines (types, full-text search, sizes) is branched on ``db.dialect``. Hit/miss
counters are kept in memory and added to ``cache_metadata`` every 30 s and on close, so
``itglue-ingest cache stats`` in another process sees the daemon's figures without a
write per lookup.
"""

# ruff: noqa: S608  -- table/column names come from the fixed KINDS table; values are bound

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from core_client.database import Connection, Database, SQLiteDatabase

from .postgres_schema import POSTGRES_MIGRATIONS
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


def database_errors() -> tuple[type[BaseException], ...]:
    """The errors of either engine (psycopg's only once a PostgreSQL database imported it:
    a SQLite user never pays for importing psycopg)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error,) if psycopg is None else (sqlite3.Error, psycopg.Error)


class CacheBase:
    """Connections, transactions, statistics counters and record <-> row mapping."""

    def __init__(
        self, database: Database | Path | str, *, default_max_age: MaxAge = DEFAULT_MAX_AGE
    ) -> None:
        """``database``: the state database (the cache closes it on :meth:`close`), or
        the path of a SQLite file to open (a library user's instance database)."""
        self.db = database if isinstance(database, Database) else SQLiteDatabase(Path(database))
        self.default_max_age = seconds(default_max_age)
        self._lock = threading.Lock()
        self._closed = False
        self._pending = dict.fromkeys(COUNTERS, 0)  # not yet persisted
        self._last_flush = time.monotonic()
        try:
            self.db.migrate(COMPONENT, {"sqlite": MIGRATIONS, "postgresql": POSTGRES_MIGRATIONS})
        except BaseException:
            self.db.close()
            raise

    @property
    def path(self) -> Path | None:
        """The SQLite file (None on PostgreSQL)."""
        return self.db.path if isinstance(self.db, SQLiteDatabase) else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.db.describe()!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads and transactions ------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the metadata cache is closed")

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        self._check_open()
        with self.db.transaction() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        self._check_open()
        with self.db.reading() as conn:
            yield conn

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row of one read (None when there is none)."""
        with self._read() as conn:
            return conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of one read."""
        with self._read() as conn:
            return list(conn.execute(sql, params).fetchall())

    def close(self) -> None:
        """Persist the hit/miss counters and close the database (idempotent)."""
        if self._closed:
            return
        try:
            self._flush_counters()
        except database_errors() as e:  # a locked or unreachable database must not prevent closing
            log.warning("cache statistics not saved: %s", e)
        with self._lock:
            self._closed = True
        self.db.close()

    # -- statistics counters ---------------------------------------------------------

    def _count(self, counter: str, n: int = 1) -> None:
        with self._lock:
            self._pending[counter] += n
            due = time.monotonic() - self._last_flush > FLUSH_INTERVAL
        if due:
            try:
                self._flush_counters()
            except database_errors() as e:
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
                    " value=CAST(CAST(cache_metadata.value AS BIGINT)"
                    " + CAST(excluded.value AS BIGINT) AS TEXT)",
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
    def _document(row: Sequence[Any]) -> CachedDocument:
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

    @classmethod
    def _row(cls, k: Kind, item: Any, organization_id: str | None = None) -> tuple[Any, ...]:
        """(id, *indexed columns, data JSON) for one record of kind ``k``."""
        return cls._pack(k, cls._attributes(k, item, organization_id))

    @staticmethod
    def _attributes(k: Kind, item: Any, organization_id: str | None = None) -> dict[str, Any]:
        """The attributes of one record of kind ``k`` as cached (with its ``id``)."""
        data = flatten(item)
        if k.name == "documents":
            for key in CONTENT_KEYS:
                data.pop(key, None)
        if (
            organization_id is not None
            and "organization_id" in k.columns
            and not attr(data, "organization-id")
        ):
            data["organization-id"] = organization_id
        return data

    @staticmethod
    def _pack(k: Kind, data: dict[str, Any]) -> tuple[Any, ...]:
        """:meth:`_attributes` as (id, *indexed columns, data JSON)."""
        data = dict(data)
        record_id = data.pop("id")
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

    def _upsert(self, conn: Connection, k: Kind, rows: list[tuple[Any, ...]]) -> None:
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
        return f"INSERT INTO {k.table}({columns}) {source} ON CONFLICT(id) DO UPDATE SET {updates}"

    def invalidate(self, kind_name: str, record_id: str | int) -> bool:
        """Forget one record (e.g. deleted in IT Glue); True when it was cached."""
        k = kind(kind_name)
        with self._write() as conn:
            cur = conn.execute(f"DELETE FROM {k.table} WHERE id=?", (str(record_id),))
        if cur.rowcount:
            log.debug("cache: %s %s invalidated", k.name, record_id)
        return cur.rowcount > 0
