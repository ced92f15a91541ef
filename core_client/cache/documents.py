"""Documents the sink uploaded: recorded with their content hash, found by hash or name.

Only metadata: the content keys of a document (sections, content, body) are dropped
before anything is stored. ``sha256``/``size`` come from the sink (the API knows
neither), so a refresh of the listing keeps them for documents still listed.
"""

# ruff: noqa: S608  -- table/column names come from the fixed KINDS table; values are bound

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from core_client.database import Connection

from .base import (
    BATCH,
    CONTENT_KEYS,
    CacheBase,
    check_sha256,
)
from .records import CachedDocument, attr, flatten, name_key, opt_id

log = logging.getLogger("itglue_ingest.cache")


class DocumentsMixin(CacheBase):
    """record_document(s), find_documents_by_hash/_by_name, get_cached_document."""

    def record_document(
        self,
        document: Any,
        *,
        sha256: str,
        size: int,
        organization_id: str | int | None = None,
        name: str | None = None,
        attachment_ids: Iterable[str | int] = (),
    ) -> CachedDocument:
        """Remember a document the sink just uploaded, keyed by its content hash.

        ``document`` is the created Document (model or dict) or just its id. Calling it
        again for the same document merges: attachment ids accumulate, the hash and
        size are replaced, attributes are updated.
        """
        with self._write() as conn:
            recorded = self._record(
                conn, document, sha256, size, organization_id, name, attachment_ids
            )
        log.debug("recorded document %s (sha256 %s)", recorded.id, recorded.sha256)
        return recorded

    def record_documents(self, entries: Iterable[Mapping[str, Any]]) -> int:
        """:meth:`record_document` for many (imports, backfills): batched transactions.

        Each entry has the keyword arguments of ``record_document`` plus ``document``
        (or ``id``). Returns how many were recorded.
        """
        count = 0
        batch: list[Mapping[str, Any]] = []

        def flush() -> None:
            with self._write() as conn:
                for e in batch:
                    self._record(
                        conn,
                        e["document"] if "document" in e else e["id"],
                        e["sha256"],
                        e["size"],
                        e.get("organization_id"),
                        e.get("name"),
                        e.get("attachment_ids", ()),
                    )

        for entry in entries:
            batch.append(entry)
            count += 1
            if len(batch) >= BATCH:
                flush()
                batch = []
        if batch:
            flush()
        return count

    @staticmethod
    def _record(
        conn: Connection,
        document: Any,
        sha256: str,
        size: int,
        organization_id: str | int | None,
        name: str | None,
        attachment_ids: Iterable[str | int],
    ) -> CachedDocument:
        """Merge one uploaded document into ``documents`` (inside the caller's transaction)."""
        data = {"id": str(document)} if isinstance(document, str | int) else flatten(document)
        doc_id = data.pop("id")
        for key in CONTENT_KEYS:
            data.pop(key, None)
        digest = check_sha256(sha256)
        if size < 0:
            raise ValueError("size must not be negative")
        org = opt_id(organization_id) or opt_id(attr(data, "organization-id"))
        doc_name = name or str(attr(data, "name") or "")
        new_ids = [str(a) for a in attachment_ids]
        now = time.time()
        old = conn.execute(
            "SELECT organization_id, name, attachment_ids, data FROM documents WHERE id=?",
            (doc_id,),
        ).fetchone()
        ids: list[str] = []
        if old is not None:
            org = org or old[0]
            doc_name = doc_name or old[1]
            ids = json.loads(old[2])
            data = {**json.loads(old[3]), **data}
        ids += [i for i in dict.fromkeys(new_ids) if i not in ids]
        if org is not None:
            data.setdefault("organization-id", org)
        if doc_name:
            data.setdefault("name", doc_name)
        conn.execute(
            "INSERT INTO documents(id, organization_id, name, name_key, sha256, size,"
            " attachment_ids, data, cached_at, recorded_at)"
            " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
            " organization_id=excluded.organization_id, name=excluded.name,"
            " name_key=excluded.name_key, sha256=excluded.sha256, size=excluded.size,"
            " attachment_ids=excluded.attachment_ids, data=excluded.data,"
            " cached_at=excluded.cached_at, recorded_at=excluded.recorded_at",
            (
                doc_id,
                org,
                doc_name,
                name_key(doc_name),
                digest,
                int(size),
                json.dumps(ids),
                json.dumps(data, separators=(",", ":")),
                now,
                now,
            ),
        )
        return CachedDocument(
            id=doc_id,
            organization_id=org,
            name=doc_name,
            sha256=digest,
            size=int(size),
            attachment_ids=tuple(ids),
            attributes=data,
            cached_at=now,
            recorded_at=now,
        )

    def document_organizations(self) -> list[str]:
        """Organizations with cached documents (where the sink uploaded): a cheap refresh set."""
        rows = self._all(
            "SELECT organization_id FROM documents WHERE organization_id IS NOT NULL"
            " GROUP BY organization_id ORDER BY length(organization_id), organization_id"
        )
        return [r[0] for r in rows]

    def find_documents_by_hash(
        self, sha256: str, organization_id: str | int | None = None
    ) -> list[CachedDocument]:
        """Documents recorded with this content hash (in one organization if given)."""
        sql = f"SELECT {self._DOC_COLUMNS} FROM documents WHERE sha256=?"
        params: list[Any] = [sha256.strip().lower()]
        if organization_id is not None:
            sql += " AND organization_id=?"
            params.append(str(organization_id))
        rows = self._all(sql + " ORDER BY recorded_at, id", params)
        self._count("hits" if rows else "misses")
        return [self._document(r) for r in rows]

    def find_documents_by_name(
        self, name: str, organization_id: str | int | None = None
    ) -> list[CachedDocument]:
        """Documents called ``name`` (case-insensitive), in one organization if given."""
        key = name_key(name)
        if not key:
            self._count("misses")
            return []
        sql = f"SELECT {self._DOC_COLUMNS} FROM documents WHERE name_key=?"
        params: list[Any] = [key]
        if organization_id is not None:
            sql = sql.replace("WHERE", "WHERE organization_id=? AND")
            params.insert(0, str(organization_id))
        rows = self._all(sql + " ORDER BY length(id), id", params)
        self._count("hits" if rows else "misses")
        return [self._document(r) for r in rows]

    def get_cached_document(self, document_id: str | int) -> CachedDocument | None:
        """The cached document with its recorded hash/size/attachments, or None."""
        row = self._one(
            f"SELECT {self._DOC_COLUMNS} FROM documents WHERE id=?", (str(document_id),)
        )
        self._count("hits" if row else "misses")
        return None if row is None else self._document(row)
