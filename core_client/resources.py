"""One generic class for IT Glue's resource collections, and the table of resources.

``client.organizations.list(filter={"name": "Acme"}, sort="name")``, ``.get(id)``,
``.create(name="Acme")``, ``.update(id, quick_notes="...")``, ``.delete(id)``,
``.bulk_update([...])``, ``.bulk_delete([...])``. A resource owned by a parent is
scoped with :meth:`Resources.within`: ``client.documents.within(org_id).list()``.

Adding a resource is one line in :class:`ResourceTable` plus its model in
:mod:`core_client.models`.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, overload

from .jsonapi import attributes, joined, many, one, to_id
from .models import (
    Configuration,
    Contact,
    Document,
    DocumentSection,
    FlexibleAsset,
    Location,
    Organization,
    Resource,
)
from .transport import Response

M = TypeVar("M", bound=Resource)


class ResourceClient(Protocol):
    """What a resource collection needs from the client."""

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Response: ...

    def iter_resources(
        self,
        path: str,
        model: type[M],
        *,
        filters: Mapping[str, Any] | None = None,
        sort: str | Sequence[str] | None = None,
        include: str | Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[M]: ...


@dataclass(frozen=True)
class Parent:
    """The collection that owns a resource, and the attribute naming the owner."""

    collection: str
    key: str


ORGANIZATION = Parent("organizations", "organization_id")
DOCUMENT = Parent("documents", "document_id")


@dataclass(frozen=True)
class ResourceSpec(Generic[M]):
    """How one resource's routes look.

    ``path``: the URL segment of the collection; ``json_type``: the JSON:API type of
    write bodies (default: ``path``); ``parent``: the owner, for nested routes
    (``/organizations/:id/relationships/<path>``); ``parent_required``: list and
    create exist only under the parent (documents); ``members_nested``: get, update
    and delete too (document sections).
    """

    path: str
    model: type[M]
    json_type: str
    parent: Parent | None = None
    parent_required: bool = False
    members_nested: bool = False


class Resources(Generic[M]):
    """The routes of one resource type, optionally scoped to a parent record."""

    def __init__(
        self, client: ResourceClient, spec: ResourceSpec[M], parent_id: Any = None
    ) -> None:
        self._client = client
        self.spec = spec
        self.parent_id = parent_id

    def __repr__(self) -> str:
        scope = f" within {self.parent_id}" if self.parent_id is not None else ""
        return f"<Resources {self.spec.path}{scope}>"

    def within(self, parent_id: Any) -> Resources[M]:
        """The same routes under one parent record (e.g. one organization's documents)."""
        if self.spec.parent is None:
            raise ValueError(f"{self.spec.path} do not belong to a parent record")
        return Resources(self._client, self.spec, parent_id)

    # -- paths ---------------------------------------------------------------------
    def _nested(self, action: str) -> str:
        parent = self.spec.parent
        assert parent is not None  # only resources with a parent have nested routes
        if self.parent_id is None:
            raise ValueError(
                f"{self.spec.path} are reached through their {parent.collection[:-1]}: "
                f"use .within({parent.key}) to {action}"
            )
        return f"/{parent.collection}/{self.parent_id}/relationships/{self.spec.path}"

    def _collection(self, action: str) -> str:
        """Where list and create go."""
        if self.spec.parent_required or (self.parent_id is not None and action == "list"):
            return self._nested(action)
        return f"/{self.spec.path}"

    def _members(self, action: str) -> str:
        """Where get, update, delete and the bulk routes go (without the id)."""
        return self._nested(action) if self.spec.members_nested else f"/{self.spec.path}"

    def _body(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {"data": {"type": self.spec.json_type, "attributes": attributes(attrs)}}

    # -- routes --------------------------------------------------------------------
    def list(
        self,
        *,
        filter: Mapping[str, Any] | None = None,  # the API's own word
        sort: str | Sequence[str] | None = None,
        include: str | Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[M]:
        """Every record, page by page (lazy): ``filter[...]``, ``sort``, ``include``."""
        return self._client.iter_resources(
            self._collection("list"),
            self.spec.model,
            filters=filter,
            sort=sort,
            include=include,
            params=params,
        )

    def get(self, record_id: Any, *, include: str | Sequence[str] | None = None) -> M:
        params = {"include": joined(include)} if include else None
        path = f"{self._members('get')}/{record_id}"
        return one(self._client.request("GET", path, params=params), self.spec.model)

    def create(self, **attrs: Any) -> M:
        """POST the snake_case ``attrs`` (sent as kebab-case attributes).

        Under a required parent the owner goes into the path: pass it with
        :meth:`within` or as its key (``organization_id=...``); otherwise a scoped
        collection sets that key in the attributes.
        """
        parent = self.spec.parent
        scoped = self
        if parent is not None and self.spec.parent_required and parent.key in attrs:
            scoped = self.within(attrs.pop(parent.key))
        elif parent is not None and self.parent_id is not None:
            attrs.setdefault(parent.key, self.parent_id)
        resp = self._client.request("POST", scoped._collection("create"), json=self._body(attrs))
        return one(resp, self.spec.model)

    def update(self, record_id: Any, **attrs: Any) -> M:
        path = f"{self._members('update')}/{record_id}"
        return one(self._client.request("PATCH", path, json=self._body(attrs)), self.spec.model)

    def delete(self, record_id: Any) -> None:
        self._client.request("DELETE", f"{self._members('delete')}/{record_id}")

    def bulk_update(self, updates: Iterable[Mapping[str, Any]]) -> builtins.list[M]:
        """One PATCH for many records; each update names its record by ``id``."""
        data = []
        for item in updates:
            attrs = dict(item)
            if "id" not in attrs:
                raise ValueError("each bulk update needs an 'id'")
            attrs["id"] = to_id(attrs["id"])
            data.append({"type": self.spec.json_type, "attributes": attributes(attrs)})
        if not data:
            return []
        resp = self._client.request("PATCH", self._members("update"), json={"data": data})
        return many(resp, self.spec.model)

    def bulk_delete(self, ids: Iterable[Any]) -> None:
        """One DELETE for many records (nothing is sent for no ids)."""
        data = [{"type": self.spec.json_type, "attributes": {"id": to_id(i)}} for i in ids]
        if data:
            self._client.request("DELETE", self._members("delete"), json={"data": data})


class resource(Generic[M]):  # lower case: it reads as a field declaration
    """Declares a resource collection on the client (a descriptor)."""

    def __init__(
        self,
        path: str,
        model: type[M],
        *,
        json_type: str | None = None,
        parent: Parent | None = None,
        parent_required: bool = False,
        members_nested: bool = False,
    ) -> None:
        if (parent_required or members_nested) and parent is None:
            raise ValueError("parent_required/members_nested need a parent")
        self.spec = ResourceSpec(
            path, model, json_type or path, parent, parent_required, members_nested
        )

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> resource[M]: ...
    @overload
    def __get__(self, obj: ResourceClient, owner: type[Any]) -> Resources[M]: ...
    def __get__(self, obj: ResourceClient | None, owner: type[Any]) -> resource[M] | Resources[M]:
        if obj is None:
            return self
        return Resources(obj, self.spec)


class ResourceTable:
    """The resource collections of the client: one line per resource."""

    organizations = resource("organizations", Organization)
    configurations = resource("configurations", Configuration, parent=ORGANIZATION)
    contacts = resource("contacts", Contact, parent=ORGANIZATION)
    locations = resource("locations", Location, parent=ORGANIZATION)
    flexible_assets = resource("flexible_assets", FlexibleAsset, json_type="flexible-assets")
    documents = resource("documents", Document, parent=ORGANIZATION, parent_required=True)
    document_sections = resource(
        "sections",
        DocumentSection,
        json_type="document-sections",
        parent=DOCUMENT,
        parent_required=True,
        members_nested=True,
    )


__all__ = [
    "DOCUMENT",
    "ORGANIZATION",
    "Parent",
    "ResourceSpec",
    "ResourceTable",
    "Resources",
    "resource",
]
