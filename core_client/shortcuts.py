"""The client's named methods over its resource collections (the seed's API).

``list_organizations``, ``create_document``, ``update_flexible_asset`` (which merges
traits), ``publish_document``, ``create_related_item``, ... each one call of a
collection of :class:`~core_client.resources.ResourceTable` or one JSON:API route.
They need only the two primitives :meth:`request` and :meth:`iter_resources`, which
:class:`~core_client.client.ITGlueClient` supplies over its transport.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from .attachments import ATTACHABLE
from .jsonapi import collection_name, one, one_or_none, to_id
from .models import (
    Configuration,
    Contact,
    Document,
    DocumentImage,
    DocumentSection,
    FlexibleAsset,
    GenericResource,
    Organization,
    RelatedItem,
    Resource,
    to_kebab,
)
from .names import NameResolver
from .resources import Resources, ResourceTable
from .transport import Response

M = TypeVar("M", bound=Resource)
# resource types that take related items (docs/itglue-api.md section 5)
RELATABLE = ATTACHABLE | {"folders"}


class ResourceShortcuts(ResourceTable, ABC):
    """Named methods over the resource collections, kept for their callers."""

    @abstractmethod
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Response:
        """One API call."""

    @abstractmethod
    def iter_resources(
        self,
        path: str,
        model: type[M],
        *,
        filters: Mapping[str, Any] | None = None,
        sort: str | Sequence[str] | None = None,
        include: str | Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[M]:
        """All records of a list route, page by page."""

    @property
    @abstractmethod
    def names(self) -> NameResolver:
        """Turns names into ids."""

    @abstractmethod
    def write_through(
        self, kind: str, records: Sequence[Resource], organization_id: Any = None
    ) -> None:
        """Keep what the API answered in the metadata cache."""

    @abstractmethod
    def forget(self, kind: str, record_ids: Iterable[Any]) -> None:
        """Drop deleted records from the metadata cache."""

    def list_organizations(
        self, filters: Mapping[str, Any] | None = None, sort: Any = None, include: Any = None
    ) -> Iterator[Organization]:
        return self.organizations.list(filter=filters, sort=sort, include=include)

    def get_organization(self, organization_id: Any, include: Any = None) -> Organization:
        return self.organizations.get(organization_id, include=include)

    def create_organization(self, name: str, **attrs: Any) -> Organization:
        return self.organizations.create(name=name, **attrs)

    def update_organization(self, organization_id: Any, **attrs: Any) -> Organization:
        return self.organizations.update(organization_id, **attrs)

    def list_configurations(
        self,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
        include: Any = None,
        *,
        organization_id: Any = None,
    ) -> Iterator[Configuration]:
        scope = self.configurations
        if organization_id is not None:
            scope = scope.within(organization_id)
        return scope.list(filter=filters, sort=sort, include=include)

    def get_configuration(self, configuration_id: Any, include: Any = None) -> Configuration:
        return self.configurations.get(configuration_id, include=include)

    def create_configuration(self, organization_id: Any, name: str, **attrs: Any) -> Configuration:
        return self.configurations.create(organization_id=organization_id, name=name, **attrs)

    def list_contacts(
        self,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
        include: Any = None,
        *,
        organization_id: Any = None,
    ) -> Iterator[Contact]:
        scope = self.contacts
        if organization_id is not None:
            scope = scope.within(organization_id)
        return scope.list(filter=filters, sort=sort, include=include)

    def get_contact(self, contact_id: Any, include: Any = None) -> Contact:
        return self.contacts.get(contact_id, include=include)

    def create_contact(self, organization_id: Any, first_name: str, **attrs: Any) -> Contact:
        return self.contacts.create(organization_id=organization_id, first_name=first_name, **attrs)

    def create_document(self, organization_id: Any, name: str, **attrs: Any) -> Document:
        return self.documents.within(organization_id).create(name=name, **attrs)

    def get_document(self, document_id: Any, include: Any = None) -> Document:
        return self.documents.get(document_id, include=include)

    def list_documents(
        self,
        organization_id: Any,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
        include: Any = None,
    ) -> Iterator[Document]:
        scope = self.documents.within(organization_id)
        return scope.list(filter=filters, sort=sort, include=include)

    def create_document_section(
        self, document_id: Any, resource_type: str, content: str | None = None, **attrs: Any
    ) -> DocumentSection:
        """``resource_type``: Document::Text, Document::Heading (``level``), ..."""
        if content is not None:
            attrs["content"] = content
        scope = self.document_sections.within(document_id)
        return scope.create(resource_type=resource_type, **attrs)

    def list_document_sections(self, document_id: Any) -> Iterator[DocumentSection]:
        return self.document_sections.within(document_id).list()

    def get_document_section(self, document_id: Any, section_id: Any) -> DocumentSection:
        return self.document_sections.within(document_id).get(section_id)

    def create_document_image(
        self, target_type: str, target_id: Any, *, data: bytes, file_name: str
    ) -> DocumentImage:
        """POST ``/document_images``: ``target_type`` ``"gallery"`` (a Document::Gallery
        section's id) or ``"document"``; the bytes go inline as strict base64."""
        body = {
            "data": {
                "type": "document-images",
                "attributes": {
                    "target": {"type": target_type, "id": to_id(target_id)},
                    "image": {
                        "content": base64.b64encode(data).decode("ascii"),
                        "file-name": file_name,
                    },
                },
            }
        }
        return one(self.request("POST", "/document_images", json=body), DocumentImage)

    def get_document_image(self, image_id: Any) -> DocumentImage:
        return one(self.request("GET", f"/document_images/{image_id}"), DocumentImage)

    def delete_document_image(self, image_id: Any) -> None:
        self.request("DELETE", f"/document_images/{image_id}")

    # -- what a table line cannot express ------------------------------------------------
    def publish_document(self, document_id: Any) -> Document | None:
        """PATCH ``/documents/:id/publish`` (a POST there is a 404 on the real API)."""
        return one_or_none(self.request("PATCH", f"/documents/{document_id}/publish"), Document)

    def list_flexible_assets(
        self,
        flexible_asset_type_id: Any,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
        include: Any = None,
    ) -> Iterator[FlexibleAsset]:
        """The API requires the type filter (``filter[flexible-asset-type-id]``)."""
        merged = {"flexible-asset-type-id": flexible_asset_type_id}
        for key, value in (filters or {}).items():
            merged[to_kebab(key)] = value
        return self.flexible_assets.list(filter=merged, sort=sort, include=include)

    def get_flexible_asset(self, flexible_asset_id: Any, include: Any = None) -> FlexibleAsset:
        return self.flexible_assets.get(flexible_asset_id, include=include)

    def create_flexible_asset(
        self,
        organization_id: Any,
        flexible_asset_type_id: Any,
        traits: Mapping[str, Any],
        **attrs: Any,
    ) -> FlexibleAsset:
        return self.flexible_assets.create(
            organization_id=organization_id,
            flexible_asset_type_id=flexible_asset_type_id,
            traits=dict(traits),
            **attrs,
        )

    @staticmethod
    def merge_traits(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        """The trait set to PATCH: current traits (tag traits back to id lists) + changes.

        The API's PATCH replaces all traits (left-out ones are deleted), and returns
        tag traits as ``{"type": ..., "values": [{"id": ...}, ...]}`` while writes take
        a list of ids; a value of None in ``changes`` deletes that trait.
        """
        merged: dict[str, Any] = {}
        for key, value in current.items():
            if isinstance(value, dict) and isinstance(value.get("values"), list):
                value = [
                    to_id(v["id"]) for v in value["values"] if isinstance(v, dict) and "id" in v
                ]
            merged[key] = value
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged

    def update_flexible_asset(
        self,
        flexible_asset_id: Any,
        traits: Mapping[str, Any] | None = None,
        *,
        replace_traits: bool = False,
        **attrs: Any,
    ) -> FlexibleAsset:
        """Update, MERGING ``traits`` into the current ones (GET, merge, PATCH).

        ``replace_traits=True`` sends ``traits`` as the complete set (the API's own
        semantics, also that of ``client.flexible_assets.update``). Upload-kind traits
        are sent back as the API returned them.
        """
        if traits is not None:
            if replace_traits:
                attrs["traits"] = dict(traits)
            else:
                current = self.get_flexible_asset(flexible_asset_id)
                attrs["traits"] = self.merge_traits(current.traits or {}, traits)
        return self.flexible_assets.update(flexible_asset_id, **attrs)

    # -- related items ---------------------------------------------------------------
    def create_related_item(
        self,
        resource_type: str,
        resource_id: Any,
        destination_type: str,
        destination_id: Any,
        notes: str | None = None,
    ) -> RelatedItem:
        collection = self._relatable(resource_type)
        attrs: dict[str, Any] = {
            "destination_id": to_id(destination_id),
            "destination_type": destination_type,
        }
        if notes is not None:
            attrs["notes"] = notes
        body = {"data": {"type": "related_items", "attributes": attrs}}
        resp = self.request(
            "POST", f"/{collection}/{resource_id}/relationships/related_items", json=body
        )
        return one(resp, RelatedItem)

    def update_related_item(
        self, resource_type: str, resource_id: Any, related_item_id: Any, notes: str | None
    ) -> RelatedItem:
        """PATCH a related item's notes (the only thing that changes on a link)."""
        collection = self._relatable(resource_type)
        body = {"data": {"type": "related_items", "attributes": {"notes": notes}}}
        path = f"/{collection}/{resource_id}/relationships/related_items/{related_item_id}"
        return one(self.request("PATCH", path, json=body), RelatedItem)

    def delete_related_items(
        self, resource_type: str, resource_id: Any, related_item_ids: Iterable[Any]
    ) -> None:
        """Remove links in one bulk DELETE (nothing is sent for no ids)."""
        collection = self._relatable(resource_type)
        data = [{"type": "related_items", "attributes": {"id": to_id(i)}} for i in related_item_ids]
        if data:
            path = f"/{collection}/{resource_id}/relationships/related_items"
            self.request("DELETE", path, json={"data": data})

    @staticmethod
    def _relatable(resource_type: str) -> str:
        collection = collection_name(resource_type)
        if collection not in RELATABLE:
            raise ValueError(f"{resource_type!r} does not take related items")
        return collection

    def list_named(self, kind: str, scope: str | None, scope_id: Any) -> Iterator[Resource]:
        """Every record of a kind names are looked up in (within ``scope_id`` when the
        kind's parent is that scope): what :class:`~core_client.names.NameResolver` lists."""
        collection: Resources[Any] = getattr(self, kind)
        parent = collection.spec.parent
        if scope_id is not None and parent is not None and parent.key == scope:
            collection = collection.within(scope_id)
        return collection.list()

    def list_resources(
        self,
        resource_type: str,
        filters: Mapping[str, Any] | None = None,
        sort: Any = None,
    ) -> Iterator[GenericResource]:
        """Any list route (organization_types, configuration_types, ...)."""
        return self.iter_resources(
            f"/{collection_name(resource_type)}", GenericResource, filters=filters, sort=sort
        )


__all__ = ["RELATABLE", "ResourceShortcuts"]
