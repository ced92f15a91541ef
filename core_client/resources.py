"""One generic class for IT Glue's resource collections, and the table of resources.

``client.organizations.list(filter={"name": "Acme"}, sort="name")``, ``.get(id)``,
``.create(name="Acme")``, ``.update(id, quick_notes="...")``, ``.delete(id)``,
``.bulk_update([...])``, ``.bulk_delete([...])``. A resource owned by a parent is
scoped with :meth:`Resources.within`: ``client.documents.within(org_id).list()``.

Adding a resource is one line in :class:`ResourceTable` plus its model in
:mod:`core_client.models`; the line says which routes the API has (``actions``; the
others raise :class:`~core_client.exceptions.UnsupportedActionError` before sending
anything) and which arguments take names (``names``).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, overload

from . import models as m
from .exceptions import UnsupportedActionError
from .jsonapi import attributes, joined, many, one, to_id
from .models import Resource
from .names import NameRef, NameResolver, names
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

    @property
    def names(self) -> NameResolver: ...

    def write_through(
        self, kind: str, records: Sequence[Resource], organization_id: Any = None
    ) -> None: ...

    def forget(self, kind: str, record_ids: Iterable[Any]) -> None: ...


@dataclass(frozen=True)
class Parent:
    """The collection that owns a resource, and the attribute naming the owner."""

    collection: str
    key: str


ORGANIZATION = Parent("organizations", "organization_id")
DOCUMENT = Parent("documents", "document_id")
CONFIGURATION = Parent("configurations", "configuration_id")
FLEXIBLE_ASSET_TYPE = Parent("flexible_asset_types", "flexible_asset_type_id")
MANUFACTURER = Parent("manufacturers", "manufacturer_id")
COUNTRY = Parent("countries", "country_id")

# what the API can do with a resource (docs/itglue-api.md, 5); "delete" is the single
# DELETE /<r>/:id; where only the bulk DELETE exists, .delete(id) sends that
WRITE_BATCH = 1000  # records of a listing written to the cache per transaction (one page)
ALL = frozenset({"list", "get", "create", "update", "delete", "bulk_update", "bulk_delete"})
READ = frozenset({"list", "get"})
WRITE = READ | {"create", "update"}
BULK = WRITE | {"bulk_update", "bulk_delete"}
NO_NAMES: dict[str, NameRef] = {}


@dataclass(frozen=True)
class ResourceSpec(Generic[M]):
    """How one resource's routes look.

    ``path``: the URL segment of the collection; ``json_type``: the JSON:API type of
    write bodies (default: ``path``); ``parent``: the owner, for nested routes
    (``/organizations/:id/relationships/<path>``); ``parent_required``: list and
    create exist only under the parent (documents); ``members_nested``: get, update
    and delete too (document sections); ``actions``: the routes the API has;
    ``names``: arguments that take a name (:mod:`core_client.names`);
    ``relationships``: arguments sent as ``relationships.<name>.data`` (the fields
    of a new flexible asset type).
    """

    path: str
    model: type[M]
    json_type: str
    parent: Parent | None = None
    parent_required: bool = False
    members_nested: bool = False
    actions: frozenset[str] = ALL
    names: Mapping[str, NameRef] = field(default_factory=dict)
    relationships: frozenset[str] = frozenset()


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
        """The same routes under one parent record (e.g. one organization's documents);
        the parent may be given by name where the resource takes its name."""
        parent = self.spec.parent
        if parent is None:
            raise ValueError(f"{self.spec.path} do not belong to a parent record")
        ref = self.spec.names.get(parent.key)
        if ref is not None:
            parent_id = self._client.names.id_for(ref.kind, parent_id)
        elif isinstance(parent_id, Resource):
            parent_id = parent_id.id
        return type(self)(self._client, self.spec, parent_id)

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

    def _check(self, action: str) -> None:
        if action not in self.spec.actions:
            can = ", ".join(sorted(self.spec.actions))
            raise UnsupportedActionError(
                f"the IT Glue API has no {action.replace('_', ' ')} for {self.spec.path}"
                f" (it can: {can})"
            )

    def _named(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """``attrs`` with names turned into ids (``configuration_type="Server"``)."""
        if not self.spec.names:
            return dict(attrs)
        return self._client.names.resolve(self.spec.names, attrs)

    def _item(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        plain = {k: v for k, v in attrs.items() if k not in self.spec.relationships}
        item: dict[str, Any] = {"type": self.spec.json_type, "attributes": attributes(plain)}
        related = {k: v for k, v in attrs.items() if k in self.spec.relationships}
        if related:
            item["relationships"] = {
                name: {"data": [{"type": name, "attributes": attributes(v)} for v in values]}
                for name, values in related.items()
            }
        return item

    def _body(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {"data": self._item(attrs)}

    # -- routes --------------------------------------------------------------------
    def list(
        self,
        *,
        filter: Mapping[str, Any] | None = None,  # the API's own word
        sort: str | Sequence[str] | None = None,
        include: str | Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[M]:
        """Every record, page by page (lazy): ``filter[...]``, ``sort``, ``include``.

        Filters on names take names too: ``filter={"configuration_type": "Server"}``.
        """
        self._check("list")
        records = self._client.iter_resources(
            self._collection("list"),
            self.spec.model,
            filters=self._named(filter) if filter else filter,
            sort=sort,
            include=include,
            params=params,
        )
        return self._written(records)

    def get(self, record_id: Any, *, include: str | Sequence[str] | None = None) -> M:
        return self._get(record_id, include, {})

    # -- the metadata cache: what the API answered is written through -----------------
    def _owner(self) -> Any:
        parent = self.spec.parent
        return self.parent_id if parent is not None and parent.key == "organization_id" else None

    def _keep(self, record: M) -> M:
        self._client.write_through(self.spec.path, [record], self._owner())
        return record

    def _written(self, records: Iterator[M]) -> Iterator[M]:
        """``records`` as they come, written to the cache a page at a time (also the
        part read when the caller stops early)."""
        batch: builtins.list[M] = []
        try:
            for record in records:
                batch.append(record)
                if len(batch) >= WRITE_BATCH:
                    self._client.write_through(self.spec.path, batch, self._owner())
                    batch = []
                yield record
        finally:
            if batch:
                self._client.write_through(self.spec.path, batch, self._owner())

    def _get(
        self, record_id: Any, include: str | Sequence[str] | None, params: dict[str, Any]
    ) -> M:
        self._check("get")
        if include:
            params["include"] = joined(include)
        path = f"{self._members('get')}/{record_id}"
        resp = self._client.request("GET", path, params=params or None)
        return self._keep(one(resp, self.spec.model))

    def create(self, **attrs: Any) -> M:
        """POST the snake_case ``attrs`` (sent as kebab-case attributes).

        Under a required parent the owner goes into the path: pass it with
        :meth:`within` or as its key (``organization_id=...``); otherwise a scoped
        collection sets that key in the attributes. Name arguments are resolved first.
        """
        self._check("create")
        parent = self.spec.parent
        if parent is not None and self.parent_id is not None:
            attrs.setdefault(parent.key, self.parent_id)
        attrs = self._named(attrs)
        scoped: Resources[M] = self
        if parent is not None and self.spec.parent_required and parent.key in attrs:
            scoped = type(self)(self._client, self.spec, attrs.pop(parent.key))
        resp = self._client.request("POST", scoped._collection("create"), json=self._body(attrs))
        return scoped._keep(one(resp, self.spec.model))

    def update(self, record_id: Any, **attrs: Any) -> M:
        self._check("update")
        path = f"{self._members('update')}/{record_id}"
        body = self._body(self._named(attrs))
        return self._keep(one(self._client.request("PATCH", path, json=body), self.spec.model))

    def delete(self, record_id: Any) -> None:
        """Delete one record (the bulk route with one id where the API has only that)."""
        if "delete" not in self.spec.actions and "bulk_delete" in self.spec.actions:
            self.bulk_delete([record_id])
            return
        self._check("delete")
        self._client.request("DELETE", f"{self._members('delete')}/{record_id}")
        self._client.forget(self.spec.path, [record_id])

    def bulk_update(self, updates: Iterable[Mapping[str, Any]]) -> builtins.list[M]:
        """One PATCH for many records; each update names its record by ``id``."""
        self._check("bulk_update")
        data = []
        for item in updates:
            attrs = self._named(item)
            if "id" not in attrs:
                raise ValueError("each bulk update needs an 'id'")
            attrs["id"] = to_id(attrs["id"])
            data.append(self._item(attrs))
        if not data:
            return []
        resp = self._client.request("PATCH", self._members("update"), json={"data": data})
        updated = many(resp, self.spec.model)
        self._client.write_through(self.spec.path, updated, self._owner())
        return updated

    def bulk_delete(self, ids: Iterable[Any]) -> None:
        """One DELETE for many records (nothing is sent for no ids)."""
        self._check("bulk_delete")
        ids = builtins.list(ids)
        data = [{"type": self.spec.json_type, "attributes": {"id": to_id(i)}} for i in ids]
        if data:
            self._client.request("DELETE", self._members("delete"), json={"data": data})
            self._client.forget(self.spec.path, ids)


class Passwords(Resources[m.Password]):
    """Passwords: the value is read only when asked for (``show_password=True``)."""

    def get(
        self,
        record_id: Any,
        *,
        include: str | Sequence[str] | None = None,
        show_password: bool = False,
    ) -> m.Password:
        """One password; ``show_password=True`` reads its value (the key needs IT
        Glue's "Password Access"). Sent either way, so no server default decides."""
        flag = "true" if show_password else "false"
        return self._get(record_id, include, {"show_password": flag})


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
        actions: frozenset[str] = ALL,
        names: Mapping[str, NameRef] = NO_NAMES,
        relationships: frozenset[str] = frozenset(),
    ) -> None:
        if (parent_required or members_nested) and parent is None:
            raise ValueError("parent_required/members_nested need a parent")
        unknown = actions - ALL
        if unknown:
            raise ValueError(f"unknown actions: {', '.join(sorted(unknown))}")
        self.spec = ResourceSpec(
            path,
            model,
            json_type or path,
            parent,
            parent_required,
            members_nested,
            actions,
            dict(names),
            relationships,
        )

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> resource[M]: ...
    @overload
    def __get__(self, obj: ResourceClient, owner: type[Any]) -> Resources[M]: ...
    def __get__(self, obj: ResourceClient | None, owner: type[Any]) -> resource[M] | Resources[M]:
        if obj is None:
            return self
        return Resources(obj, self.spec)


class password_resource(resource[m.Password]):
    """The passwords collection (:class:`Passwords`: ``get(..., show_password=)``)."""

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> password_resource: ...
    @overload
    def __get__(self, obj: ResourceClient, owner: type[Any]) -> Passwords: ...
    def __get__(
        self, obj: ResourceClient | None, owner: type[Any]
    ) -> password_resource | Passwords:
        if obj is None:
            return self
        return Passwords(obj, self.spec)


# name arguments (core_client.names): organization="Acme", configuration_type="Server"
ORG = NameRef("organizations", "organization_id")
IN_ORG = "organization_id"


def _in_org(kind: str, attr: str) -> NameRef:
    return NameRef(kind, attr, scope=IN_ORG)


class ResourceTable:
    """The resource collections of the client: one line per resource (docs/itglue-api.md,
    5. Resources)."""

    organizations = resource(
        "organizations",
        m.Organization,
        actions=READ | {"create", "update", "bulk_update", "bulk_delete"},
        names=names(
            NameRef("organization_types", "organization_type_id"),
            NameRef("organization_statuses", "organization_status_id"),
        ),
    )
    organization_types = resource(
        "organization_types", m.OrganizationType, json_type="organization-types", actions=WRITE
    )
    organization_statuses = resource(
        "organization_statuses",
        m.OrganizationStatus,
        json_type="organization-statuses",
        actions=WRITE,
    )
    configurations = resource(
        "configurations",
        m.Configuration,
        parent=ORGANIZATION,
        actions=BULK,
        names=names(
            ORG,
            NameRef("configuration_types", "configuration_type_id"),
            NameRef("configuration_statuses", "configuration_status_id"),
            NameRef("manufacturers", "manufacturer_id"),
            NameRef("models", "model_id", scope="manufacturer_id"),
            NameRef("platforms", "platform_id", send=False),
            NameRef("operating_systems", "operating_system_id", scope="platform_id"),
            _in_org("locations", "location_id"),
            _in_org("contacts", "contact_id"),
        ),
    )
    configuration_types = resource(
        "configuration_types", m.ConfigurationType, json_type="configuration-types", actions=WRITE
    )
    configuration_statuses = resource(
        "configuration_statuses",
        m.ConfigurationStatus,
        json_type="configuration-statuses",
        actions=WRITE,
    )
    configuration_interfaces = resource(
        "configuration_interfaces",
        m.ConfigurationInterface,
        json_type="configuration-interfaces",
        parent=CONFIGURATION,
        parent_required=True,
        actions=WRITE | {"bulk_update"},
    )
    contacts = resource(
        "contacts",
        m.Contact,
        parent=ORGANIZATION,
        actions=BULK,
        names=names(
            ORG, NameRef("contact_types", "contact_type_id"), _in_org("locations", "location_id")
        ),
    )
    contact_types = resource(
        "contact_types", m.ContactType, json_type="contact-types", actions=WRITE
    )
    locations = resource(
        "locations",
        m.Location,
        parent=ORGANIZATION,
        actions=BULK,
        names=names(
            ORG,
            NameRef("countries", "country_id"),
            NameRef("regions", "region_id", scope="country_id"),
        ),
    )
    passwords = password_resource(
        "passwords",
        m.Password,
        parent=ORGANIZATION,
        names=names(ORG, NameRef("password_categories", "password_category_id")),
    )
    password_categories = resource(
        "password_categories", m.PasswordCategory, json_type="password-categories", actions=WRITE
    )
    password_folders = resource(
        "password_folders",
        m.PasswordFolder,
        json_type="password-folders",
        parent=ORGANIZATION,
        parent_required=True,
        members_nested=True,
        actions=WRITE,
        names=names(ORG),
    )
    flexible_asset_types = resource(
        "flexible_asset_types",
        m.FlexibleAssetType,
        json_type="flexible_asset_types",
        actions=WRITE,
        relationships=frozenset({"flexible_asset_fields"}),
    )
    flexible_asset_fields = resource(
        "flexible_asset_fields",
        m.FlexibleAssetField,
        json_type="flexible_asset_fields",
        parent=FLEXIBLE_ASSET_TYPE,
        parent_required=True,
        actions=WRITE | {"delete", "bulk_update"},
    )
    flexible_assets = resource(
        "flexible_assets", m.FlexibleAsset, json_type="flexible-assets", names=names(ORG)
    )
    documents = resource(
        "documents",
        m.Document,
        parent=ORGANIZATION,
        parent_required=True,
        actions=BULK,
        names=names(ORG),
    )
    document_sections = resource(
        "sections",
        m.DocumentSection,
        json_type="document-sections",
        parent=DOCUMENT,
        parent_required=True,
        members_nested=True,
        actions=WRITE | {"delete"},
    )
    checklists = resource(
        "checklists",
        m.Checklist,
        parent=ORGANIZATION,
        actions=READ | {"update", "bulk_update", "bulk_delete"},  # no create is documented
        names=names(ORG),
    )
    checklist_templates = resource(
        "checklist_templates",
        m.ChecklistTemplate,
        json_type="checklist-templates",
        parent=ORGANIZATION,
        actions=READ,
        names=names(ORG),
    )
    domains = resource(
        "domains", m.Domain, parent=ORGANIZATION, actions=frozenset({"list"}), names=names(ORG)
    )
    expirations = resource(
        "expirations", m.Expiration, parent=ORGANIZATION, actions=READ, names=names(ORG)
    )
    ssl_certificates = resource(
        "ssl_certificates",
        m.SslCertificate,
        json_type="ssl-certificates",
        parent=ORGANIZATION,
        actions=READ,
        names=names(ORG),
    )
    tickets = resource("tickets", m.Ticket, parent=ORGANIZATION, actions=READ, names=names(ORG))
    manufacturers = resource("manufacturers", m.Manufacturer, actions=WRITE)
    models = resource(
        "models",
        m.Model,
        parent=MANUFACTURER,
        actions=WRITE | {"bulk_update"},
        names=names(NameRef("manufacturers", "manufacturer_id")),
    )
    platforms = resource("platforms", m.Platform, actions=READ)
    operating_systems = resource(
        "operating_systems",
        m.OperatingSystem,
        json_type="operating-systems",
        actions=READ,
        names=names(NameRef("platforms", "platform_id")),
    )
    countries = resource("countries", m.Country, actions=READ)
    regions = resource(
        "regions",
        m.Region,
        parent=COUNTRY,
        actions=READ,
        names=names(NameRef("countries", "country_id")),
    )
    users = resource("users", m.User, actions=READ | {"update"})
    groups = resource("groups", m.Group, actions=READ)
    user_metrics = resource(
        "user_metrics", m.UserMetric, json_type="user-metrics", actions=frozenset({"list"})
    )
    logs = resource("logs", m.Log, actions=frozenset({"list"}))
    exports = resource("exports", m.Export, actions=READ | {"create", "delete"}, names=names(ORG))


__all__ = [
    "ALL",
    "BULK",
    "CONFIGURATION",
    "COUNTRY",
    "DOCUMENT",
    "FLEXIBLE_ASSET_TYPE",
    "MANUFACTURER",
    "ORGANIZATION",
    "READ",
    "WRITE",
    "Parent",
    "Passwords",
    "ResourceSpec",
    "ResourceTable",
    "Resources",
    "password_resource",
    "resource",
]
