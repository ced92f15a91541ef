"""Lookups by id, name and e-mail, and ``smart_get_*`` (cache first, API fallback).

Names compare through ``name_key`` (Unicode case folding) on an indexed column; among
equal keys the exact spelling wins, then the lowest id, so answers are deterministic.
"""

# ruff: noqa: S608  -- table/column names come from the fixed KINDS table; values are bound

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .base import (
    CacheBase,
    MaxAge,
    is_not_found,
    is_unavailable,
    iso,
    seconds,
)
from .records import KINDS, Kind, kind, name_key

if TYPE_CHECKING:
    from core_client.models import Configuration, Contact, Document, Organization

log = logging.getLogger("itglue_ingest.cache")


class LookupsMixin(CacheBase):
    """get, ids, find_*_by_name, find_contact_by_email, smart_get_*."""

    def ids(self, kind_name: str, organization_id: str | int | None = None) -> list[str]:
        """The cached ids of a kind (of one organization if given), in id order."""
        k = kind(kind_name)
        sql = f"SELECT id FROM {k.table}"
        params: tuple[str, ...] = ()
        if organization_id is not None:
            if "organization_id" not in k.columns:
                raise ValueError(f"{k.name} do not belong to organizations")
            sql, params = sql + " WHERE organization_id=?", (str(organization_id),)
        rows = self._all(sql + " ORDER BY length(id), id", params)
        return [r[0] for r in rows]

    def get(self, kind_name: str, record_id: str | int) -> Any:
        """The cached record (a model) or None; never calls the API."""
        k = kind(kind_name)
        row = self._one(f"SELECT data FROM {k.table} WHERE id=?", (str(record_id),))
        self._count("hits" if row else "misses")
        return None if row is None else self._model(k, str(record_id), row[0])

    def _by_name(
        self, k: Kind, name: str, scope_id: str | int | None, limit: int | None
    ) -> list[Any]:
        key = name_key(name)
        if not key:  # unnamed records (a contact without names) match nothing
            self._count("misses")
            return []
        sql = f"SELECT id, data FROM {k.table} WHERE name_key=?"
        params: list[Any] = [key]
        if scope_id is not None:
            if k.scope is None:
                raise ValueError(f"{k.name} are not named within another record")
            sql += f" AND {k.scope}=?"
            params.append(str(scope_id))
        # Exact spelling first, then the oldest (lowest) id: deterministic among equals.
        sql += " ORDER BY name=? DESC, length(id), id"
        params.append(name)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._all(sql, params)
        self._count("hits" if rows else "misses")
        return [self._model(k, rid, data) for rid, data in rows]

    def find_organization_by_name(self, name: str) -> Organization | None:
        """The organization called ``name`` (case-insensitive), or None."""
        found = self._by_name(KINDS["organizations"], name, None, 1)
        return found[0] if found else None

    def find_organizations_by_name(self, name: str) -> list[Organization]:
        """Every organization called ``name`` (to detect ambiguous names)."""
        return self._by_name(KINDS["organizations"], name, None, None)

    def find_configuration_by_name(
        self, name: str, organization_id: str | int | None = None
    ) -> Configuration | None:
        """The configuration called ``name`` (case-insensitive), optionally in one org."""
        found = self._by_name(KINDS["configurations"], name, organization_id, 1)
        return found[0] if found else None

    def find_contact_by_name(
        self, name: str, organization_id: str | int | None = None
    ) -> Contact | None:
        """The contact whose full name is ``name`` (case-insensitive), optionally in one org."""
        found = self._by_name(KINDS["contacts"], name, organization_id, 1)
        return found[0] if found else None

    def find_by_name(
        self, kind_name: str, name: str, scope_id: str | int | None = None
    ) -> list[Any]:
        """Every cached record of a kind called ``name`` (case-insensitive), exact
        spelling first; ``scope_id``: only those within that record (the organization
        of a contact, the manufacturer of a model, ...)."""
        return self._by_name(kind(kind_name), name, scope_id, None)

    def names(self, kind_name: str, scope_id: str | int | None = None) -> list[str]:
        """The distinct names cached for a kind (within ``scope_id``), sorted."""
        k = kind(kind_name)
        sql, params = f"SELECT DISTINCT name FROM {k.table}", tuple[str, ...]()
        if scope_id is not None and k.scope is not None:
            sql, params = sql + f" WHERE {k.scope}=?", (str(scope_id),)
        # sorted here: PostgreSQL would order by the database's collation
        return sorted(r[0] for r in self._all(sql, params) if r[0])

    def find_contact_by_email(
        self, email: str, organization_id: str | int | None = None
    ) -> Contact | None:
        """The contact whose primary e-mail address is ``email`` (case-insensitive)."""
        sql = "SELECT id, data FROM contacts WHERE email=?"
        params: list[Any] = [email.strip().lower()]
        if organization_id is not None:
            sql += " AND organization_id=?"
            params.append(str(organization_id))
        row = self._one(sql + " ORDER BY length(id), id LIMIT 1", params)
        self._count("hits" if row else "misses")
        return None if row is None else self._model(KINDS["contacts"], row[0], row[1])

    def smart_get(
        self,
        kind_name: str,
        record_id: str | int,
        api_client: Any = None,
        *,
        max_age: MaxAge | None = None,
    ) -> Any:
        """The record from the cache when fresh, else from the API (then cached).

        ``max_age`` (default: the cache's, 24 h) is how old a cached record may be.
        When the API cannot answer (circuit open, 5xx, 429, network) a cached record
        of any age is returned instead; without one the error propagates. A record
        the API says no longer exists is dropped from the cache and None returned.
        Without ``api_client`` only the cache is consulted.
        """
        k = kind(kind_name)
        rid = str(record_id)
        row = self._one(f"SELECT data, cached_at FROM {k.table} WHERE id=?", (rid,))
        limit = self.default_max_age if max_age is None else seconds(max_age)
        if row is not None and (api_client is None or time.time() - row[1] <= limit):
            self._count("hits")
            log.debug("cache hit: %s %s", k.name, rid)
            return self._model(k, rid, row[0])
        self._count("misses")
        if api_client is None:
            return None
        log.debug("cache miss: %s %s, asking the API", k.name, rid)
        try:
            getter: Any = api_client
            for part in k.api_get.split("."):  # "get_organization" or "models.get"
                getter = getattr(getter, part)
            fetched = getter(rid)
        except Exception as e:
            if is_not_found(e):
                self.invalidate(k.name, rid)
                return None
            if row is not None and is_unavailable(e):
                self._count("stale_served")
                log.debug(  # one per lookup: the client's outage lines tell the outage
                    "IT Glue unavailable (%s); serving cached %s %s from %s",
                    type(e).__name__,
                    k.name,
                    rid,
                    iso(row[1]),
                )
                return self._model(k, rid, row[0])
            raise
        if fetched is None:
            return None
        self.put(k.name, fetched)
        if isinstance(fetched, BaseModel):
            return fetched
        return self._model(k, rid, self._row(k, fetched)[-1])

    def smart_get_organization(
        self, organization_id: str | int, api_client: Any = None, **kw: Any
    ) -> Organization | None:
        """Organization by id: cache first, API fallback, stale data when IT Glue is down."""
        result: Organization | None = self.smart_get(
            "organizations", organization_id, api_client, **kw
        )
        return result

    def smart_get_configuration(
        self, configuration_id: str | int, api_client: Any = None, **kw: Any
    ) -> Configuration | None:
        """Configuration by id (see :meth:`smart_get`)."""
        result: Configuration | None = self.smart_get(
            "configurations", configuration_id, api_client, **kw
        )
        return result

    def smart_get_contact(
        self, contact_id: str | int, api_client: Any = None, **kw: Any
    ) -> Contact | None:
        """Contact by id (see :meth:`smart_get`)."""
        result: Contact | None = self.smart_get("contacts", contact_id, api_client, **kw)
        return result

    def smart_get_document(
        self, document_id: str | int, api_client: Any = None, **kw: Any
    ) -> Document | None:
        """Document metadata by id (see :meth:`smart_get`); content is never cached."""
        result: Document | None = self.smart_get("documents", document_id, api_client, **kw)
        return result
