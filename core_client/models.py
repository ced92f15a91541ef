"""Typed views of IT Glue's JSON:API resources (pydantic v2).

A model is the resource's ``id`` and ``type`` plus its ``attributes`` flattened into
fields, with the ``relationships`` object kept as is. Field names are snake_case and
map to the API's kebab-case through an alias generator (``organization_id`` <->
``organization-id``); both spellings are accepted when building a model. Attributes
this module does not know are **kept** (``extra="allow"``, under their kebab-case
name; read them with :meth:`Resource.attr`), so a new API field is never silently
dropped. Ids are strings everywhere (the API sends ``"123"`` for ids and integers for
``*-id`` attributes; both are normalised to ``str``). Timestamps stay the API's
strings: the cache stores them verbatim and no precision is lost.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


def to_kebab(name: str) -> str:
    return name.replace("_", "-")


def to_snake(name: str) -> str:
    return name.replace("-", "_")


def singular(plural: str) -> str:
    """``countries`` -> ``country``, ``configuration_statuses`` -> ``configuration_status``."""
    if plural.endswith("ies"):
        return plural[:-3] + "y"
    if plural.endswith("uses"):
        return plural[:-2]
    return plural[:-1] if plural.endswith("s") else plural


class Resource(BaseModel):
    """Base of every resource model."""

    model_config = ConfigDict(
        alias_generator=to_kebab,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
    )

    resource_type: ClassVar[str] = ""  # the URL collection, e.g. "flexible_assets"

    id: str
    type: str | None = None
    relationships: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    resource_url: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _ids_as_str(cls, value: Any, info: Any) -> Any:
        name = info.field_name or ""
        if (
            (name == "id" or name.endswith("_id"))
            and isinstance(value, int)
            and not isinstance(value, bool)
        ):
            return str(value)
        return value

    @classmethod
    def from_jsonapi(cls, obj: dict[str, Any]) -> Self:
        """Build from a JSON:API resource object ``{"id", "type", "attributes", ...}``."""
        attributes = obj.get("attributes") or {}
        data: dict[str, Any] = {
            to_kebab(str(k)): v for k, v in attributes.items() if k not in ("id", "type")
        }
        data["id"] = str(obj.get("id")) if obj.get("id") is not None else ""
        data["type"] = obj.get("type")
        if obj.get("relationships") is not None:
            data["relationships"] = obj["relationships"]
        return cls.model_validate(data)

    def attr(self, name: str, default: Any = None) -> Any:
        """Any attribute by snake_case or kebab-case name, known to the model or not."""
        snake = to_snake(name)
        if snake in type(self).model_fields:
            return getattr(self, snake)
        extra = self.model_extra or {}
        for key in (to_kebab(name), name, snake):
            if key in extra:
                return extra[key]
        return default

    def attributes(self) -> dict[str, Any]:
        """The attributes as the API spells them (kebab-case), without id/type/relationships."""
        data = self.model_dump(by_alias=True, exclude={"id", "type", "relationships"})
        return data


class Organization(Resource):
    resource_type: ClassVar[str] = "organizations"
    name: str | None = None
    description: str | None = None
    organization_type_id: str | None = None
    organization_type_name: str | None = None
    organization_status_id: str | None = None
    organization_status_name: str | None = None
    short_name: str | None = None
    quick_notes: str | None = None
    alert: str | None = None
    primary: bool | None = None
    my_glue_account_id: str | None = None
    parent_id: str | None = None


class Configuration(Resource):
    resource_type: ClassVar[str] = "configurations"
    organization_id: str | None = None
    organization_name: str | None = None
    name: str | None = None
    hostname: str | None = None
    configuration_type_id: str | None = None
    configuration_type_name: str | None = None
    configuration_status_id: str | None = None
    configuration_status_name: str | None = None
    serial_number: str | None = None
    asset_tag: str | None = None
    primary_ip: str | None = None
    mac_address: str | None = None
    operating_system_name: str | None = None
    location_id: str | None = None
    contact_id: str | None = None
    archived: bool | None = None


class Contact(Resource):
    resource_type: ClassVar[str] = "contacts"
    organization_id: str | None = None
    organization_name: str | None = None
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    contact_type_id: str | None = None
    location_id: str | None = None
    important: bool | None = None
    contact_emails: list[Any] | None = None
    contact_phones: list[Any] | None = None

    @property
    def primary_email(self) -> str | None:
        """The primary (or first) address of ``contact_emails``."""
        emails = [e for e in self.contact_emails or [] if isinstance(e, dict)]
        for e in emails:
            if e.get("primary"):
                return str(e.get("value")) if e.get("value") else None
        return str(emails[0].get("value")) if emails and emails[0].get("value") else None


class Location(Resource):
    resource_type: ClassVar[str] = "locations"
    organization_id: str | None = None
    organization_name: str | None = None
    name: str | None = None
    primary: bool | None = None
    address_1: str | None = None
    address_2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    region_id: str | None = None
    country_id: str | None = None
    phone: str | None = None


class FlexibleAsset(Resource):
    resource_type: ClassVar[str] = "flexible_assets"
    organization_id: str | None = None
    organization_name: str | None = None
    flexible_asset_type_id: str | None = None
    flexible_asset_type_name: str | None = None
    name: str | None = None
    traits: dict[str, Any] | None = None
    archived: bool | None = None


class Document(Resource):
    resource_type: ClassVar[str] = "documents"
    organization_id: str | None = None
    organization_name: str | None = None
    name: str | None = None
    document_folder_id: str | None = None
    restricted: bool | None = None
    public: bool | None = None
    archived: bool | None = None
    published: bool | None = None
    published_at: str | None = None


class DocumentSection(Resource):
    resource_type: ClassVar[str] = "document_sections"
    document_id: str | None = None
    section_type: str | None = None  # the API's "resource-type": Document::Text, ...
    content: str | None = None
    level: int | None = None
    sort: int | None = None
    images: list[dict[str, Any]] | None = None  # a gallery's images (id, file-name, ...)

    @classmethod
    def from_jsonapi(cls, obj: dict[str, Any]) -> Self:
        attrs = dict(obj.get("attributes") or {})
        kind = attrs.pop("resource-type", None) or attrs.pop("resource_type", None)
        if kind is not None:
            attrs["section-type"] = kind
        return super().from_jsonapi({**obj, "attributes": attrs})


class DocumentImage(Resource):
    """An image of a document (``target`` a document) or of a gallery section."""

    resource_type: ClassVar[str] = "document_images"
    file_name: str | None = None
    target_type: str | None = None  # "gallery" or "document"
    target_id: str | None = None
    document_id: str | None = None
    image_file_size: int | None = None


class Attachment(Resource):
    resource_type: ClassVar[str] = "attachments"
    name: str | None = None
    file_name: str | None = None
    attachment_file_name: str | None = None
    attachment_file_size: int | None = None
    attachment_content_type: str | None = None
    download_url: str | None = None
    resource_id: str | None = None  # what it is attached to (type: attr("resource-type"))


class RelatedItem(Resource):
    resource_type: ClassVar[str] = "related_items"
    destination_id: str | None = None
    destination_type: str | None = None
    destination_name: str | None = None
    notes: str | None = None
    resource_id: str | None = None


class GenericResource(Resource):
    """Any other resource type: only id/type + kept attributes."""


class Named(Resource):
    """A record that is mostly its name: types, statuses, the catalog, groups."""

    name: str | None = None


class OrganizationType(Named):
    resource_type: ClassVar[str] = "organization_types"


class OrganizationStatus(Named):
    resource_type: ClassVar[str] = "organization_statuses"


class ConfigurationType(Named):
    resource_type: ClassVar[str] = "configuration_types"


class ConfigurationStatus(Named):
    resource_type: ClassVar[str] = "configuration_statuses"


class ContactType(Named):
    resource_type: ClassVar[str] = "contact_types"


class PasswordCategory(Named):
    resource_type: ClassVar[str] = "password_categories"


class Manufacturer(Named):
    resource_type: ClassVar[str] = "manufacturers"


class Model(Named):
    resource_type: ClassVar[str] = "models"
    manufacturer_id: str | None = None
    manufacturer_name: str | None = None


class Platform(Named):
    resource_type: ClassVar[str] = "platforms"


class OperatingSystem(Named):
    resource_type: ClassVar[str] = "operating_systems"
    platform_id: str | None = None
    platform_name: str | None = None


class Country(Named):
    resource_type: ClassVar[str] = "countries"
    iso: str | None = None


class Region(Named):
    resource_type: ClassVar[str] = "regions"
    iso: str | None = None
    country_id: str | None = None
    country_name: str | None = None


class Group(Named):
    resource_type: ClassVar[str] = "groups"
    description: str | None = None


class ConfigurationInterface(Named):
    resource_type: ClassVar[str] = "configuration_interfaces"
    configuration_id: str | None = None
    ip_address: str | None = None
    mac_address: str | None = None
    notes: str | None = None
    primary: bool | None = None


class Password(Resource):
    """A password record. The value (``password``) is a :class:`~pydantic.SecretStr`:
    it is left out of ``repr()``, ``model_dump()`` and :meth:`attributes` (so out of
    logs and the cache); read it with ``password.get_secret_value()``. The API sends
    it only on a show with ``show_password=true``."""

    resource_type: ClassVar[str] = "passwords"
    organization_id: str | None = None
    organization_name: str | None = None
    name: str | None = None
    username: str | None = None
    password: SecretStr | None = Field(default=None, exclude=True, repr=False)
    url: str | None = None
    notes: str | None = None
    password_category_id: str | None = None
    password_category_name: str | None = None
    password_folder_id: str | None = None
    resource_id: str | None = None
    resource_type_name: str | None = Field(default=None, alias="resource-type")
    cached_resource_name: str | None = None
    restricted: bool | None = None
    archived: bool | None = None


class PasswordFolder(Named):
    resource_type: ClassVar[str] = "password_folders"
    organization_id: str | None = None
    parent_id: str | None = None
    restricted: bool | None = None


class FlexibleAssetType(Named):
    resource_type: ClassVar[str] = "flexible_asset_types"
    description: str | None = None
    icon: str | None = None
    enabled: bool | None = None
    show_in_menu: bool | None = None


class FlexibleAssetField(Named):
    resource_type: ClassVar[str] = "flexible_asset_fields"
    flexible_asset_type_id: str | None = None
    order: int | None = None
    name_key: str | None = None
    kind: str | None = None
    hint: str | None = None
    tag_type: str | None = None
    required: bool | None = None
    show_in_list: bool | None = None
    use_for_title: bool | None = None


class _OrganizationRecord(Named):
    organization_id: str | None = None
    organization_name: str | None = None


class Checklist(_OrganizationRecord):
    resource_type: ClassVar[str] = "checklists"
    description: str | None = None
    completed: bool | None = None
    archived: bool | None = None


class ChecklistTemplate(_OrganizationRecord):
    resource_type: ClassVar[str] = "checklist_templates"
    description: str | None = None


class Domain(_OrganizationRecord):
    resource_type: ClassVar[str] = "domains"
    registrar_name: str | None = None
    expires_on: str | None = None


class Expiration(_OrganizationRecord):
    resource_type: ClassVar[str] = "expirations"
    resource_id: str | None = None
    resource_name: str | None = None
    resource_type_name: str | None = None
    description: str | None = None
    expiration_date: str | None = None


class SslCertificate(_OrganizationRecord):
    resource_type: ClassVar[str] = "ssl_certificates"
    common_name: str | None = None
    valid_not_after: str | None = None


class Ticket(_OrganizationRecord):
    resource_type: ClassVar[str] = "tickets"
    number: str | None = None
    status: str | None = None


class User(Named):
    resource_type: ClassVar[str] = "users"
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    role_name: str | None = None


class UserMetric(Resource):
    resource_type: ClassVar[str] = "user_metrics"
    user_id: str | None = None
    organization_id: str | None = None
    date: str | None = None
    created: int | None = None
    viewed: int | None = None
    edited: int | None = None
    deleted: int | None = None


class Log(Resource):
    resource_type: ClassVar[str] = "logs"
    action: str | None = None
    user_id: str | None = None
    resource_id: str | None = None


class Export(Resource):
    resource_type: ClassVar[str] = "exports"
    organization_id: str | None = None
    include_logs: bool | None = None
    state: str | None = None
    download_url: str | None = None


__all__ = [
    "Attachment",
    "Configuration",
    "Contact",
    "Document",
    "DocumentImage",
    "DocumentSection",
    "FlexibleAsset",
    "GenericResource",
    "Location",
    "Organization",
    "RelatedItem",
    "Resource",
    "singular",
    "to_kebab",
    "to_snake",
]
