"""The emulator's in-memory database: one table (id -> record) per collection, one lock.

Records are plain dicts with an int ``id`` and kebab-case attribute keys, exactly what the
API would return before derived fields (``organization-name``...) are added at render time.
Ids are unique across collections (each collection numbers from its own million), so a
client that mixes up an organization id with a configuration id gets a 404, not a wrong
record. Attachment bytes live beside the records in ``blobs``.

A single re-entrant lock guards everything: requests are small and the GIL serialises the
work anyway, so finer locking would buy nothing but races.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

COLLECTIONS = (
    "organizations",
    "organization_types",
    "organization_statuses",
    "configurations",
    "configuration_types",
    "configuration_statuses",
    "contacts",
    "contact_types",
    "locations",
    "passwords",
    "flexible_asset_types",
    "flexible_asset_fields",
    "flexible_assets",
    "documents",
    "document_sections",
    "attachments",
    "related_items",
    "checklists",
    "checklist_templates",
    "domains",
    "ssl_certificates",
    "tickets",
    # appended (never reordered: the order fixes each collection's id range)
    "configuration_interfaces",
    "password_folders",
    "password_categories",
    "expirations",
    "manufacturers",
    "models",
    "platforms",
    "operating_systems",
    "countries",
    "regions",
    "users",
    "groups",
    "user_metrics",
    "logs",
    "exports",
    "document_images",
)

_ID_STRIDE = 1_000_000


def now_iso() -> str:
    """IT Glue timestamps: UTC, milliseconds, ``Z`` suffix."""
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tables: dict[str, dict[int, dict[str, Any]]] = {c: {} for c in COLLECTIONS}
        self.blobs: dict[int, bytes] = {}
        self._next: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            for table in self.tables.values():
                table.clear()
            self.blobs.clear()
            self._next = {c: (i + 1) * _ID_STRIDE + 1 for i, c in enumerate(COLLECTIONS)}

    def new_id(self, collection: str) -> int:
        with self.lock:
            value = self._next[collection]
            self._next[collection] = value + 1
            return value

    def insert(
        self, collection: str, attrs: dict[str, Any], stamp: str | None = None
    ) -> dict[str, Any]:
        """Store a new record (caller validated it) and return it."""
        stamp = stamp or now_iso()
        with self.lock:
            rid = self.new_id(collection)
            record: dict[str, Any] = {"id": rid, "created-at": stamp, "updated-at": stamp}
            record.update(attrs)
            self.tables[collection][rid] = record
            return record

    def put(self, collection: str, record: dict[str, Any]) -> dict[str, Any]:
        """Store a record as given (its ``id`` kept when it has one): test fixtures."""
        stamp = now_iso()
        with self.lock:
            rid = to_int(record.get("id"))
            row = {"created-at": stamp, "updated-at": stamp, **record}
            row["id"] = rid if rid is not None else self.new_id(collection)
            self.tables[collection][row["id"]] = row
            return row

    def get(self, collection: str, record_id: Any) -> dict[str, Any] | None:
        rid = to_int(record_id)
        if rid is None:
            return None
        return self.tables[collection].get(rid)

    def delete(self, collection: str, record_id: int) -> None:
        with self.lock:
            self.tables[collection].pop(record_id, None)
            if collection in ("attachments", "document_images"):
                self.blobs.pop(record_id, None)

    # -- persistence (--state FILE) ------------------------------------------------------

    def dump(self, path: Path) -> None:
        """Write the whole store as JSON (mode 0600: it may hold password records)."""
        with self.lock:
            doc = {
                "version": 1,
                "next": dict(self._next),
                "tables": {c: list(t.values()) for c, t in self.tables.items()},
                "blobs": {str(k): base64.b64encode(v).decode() for k, v in self.blobs.items()},
            }
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        doc = json.loads(path.read_text(encoding="utf-8"))
        with self.lock:
            self.reset()
            for collection, rows in doc.get("tables", {}).items():
                if collection in self.tables:
                    self.tables[collection] = {int(r["id"]): r for r in rows}
            self.blobs = {int(k): base64.b64decode(v) for k, v in doc.get("blobs", {}).items()}
            for collection, value in doc.get("next", {}).items():
                if collection in self._next:
                    self._next[collection] = max(self._next[collection], int(value))


def to_int(value: Any) -> int | None:
    """An id from a URL or body: ints and digit strings only (``True`` is not an id)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
