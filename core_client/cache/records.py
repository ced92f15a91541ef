"""Turning what the client returns (models, JSON:API resources, plain dicts) into rows.

The cache accepts the client's pydantic models, raw JSON:API resources
(``{"id", "type", "attributes"}``) and flat dicts, so it can be fed from
``client.list_*()`` as well as from tests or other tools. Attributes are kept as the
API spells them (kebab-case); lookups accept snake_case too.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from core_client.models import singular


def name_key(name: str) -> str:
    """The form names are compared in: NFKC, Unicode case folding, outer spaces removed."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


def flatten(item: Any) -> dict[str, Any]:
    """One record as a flat ``{"id": str, <kebab-case attribute>: value, ...}`` dict."""
    if isinstance(item, BaseModel):
        # exclude_unset: what the API sent (explicit nulls included), not every default
        data: dict[str, Any] = item.model_dump(mode="json", by_alias=True, exclude_unset=True)
    elif isinstance(item, Mapping):
        data = dict(item)
        attributes = data.get("attributes")
        if isinstance(attributes, Mapping):
            data = {"id": data.get("id"), **attributes}
    else:
        raise TypeError(f"cannot cache a {type(item).__name__}: expected a model or a mapping")
    if data.get("id") in (None, ""):
        raise ValueError("a cached record needs an id")
    data["id"] = str(data["id"])
    return data


def attr(data: Mapping[str, Any], name: str) -> Any:
    """``data[name]`` under its kebab-case or snake_case spelling (None when absent)."""
    value = data.get(name)
    if value is None:
        value = data.get(name.replace("-", "_"))
    return value


def opt_id(value: Any) -> str | None:
    """Ids are strings in the API; hand-built records may use ints."""
    return None if value is None or value == "" else str(value)


def _name(data: Mapping[str, Any]) -> str:
    return str(attr(data, "name") or "")


def _contact_name(data: Mapping[str, Any]) -> str:
    name = attr(data, "name")
    if name:
        return str(name)
    parts = (attr(data, "first-name"), attr(data, "last-name"))
    return " ".join(str(p) for p in parts if p)


def _contact_email(data: Mapping[str, Any]) -> str | None:
    """The primary address (else the first) of ``contact-emails``, lower-cased."""
    emails = attr(data, "contact-emails")
    chosen: Any = None
    if isinstance(emails, list):
        for entry in emails:
            if isinstance(entry, Mapping) and entry.get("value"):
                if chosen is None or entry.get("primary"):
                    chosen = entry["value"]
                if entry.get("primary"):
                    break
    if chosen is None:
        chosen = attr(data, "primary-email")
    return str(chosen).strip().lower() if chosen else None


@dataclass(frozen=True)
class Kind:
    """How one resource kind maps onto its table."""

    name: str  # plural, as in the API and the CLI: "organizations"
    model: str  # class name in core_client.models
    api_get: str  # ITGlueClient method (or "collection.get") fetching one by id
    columns: tuple[str, ...]  # indexed columns besides id, data, cached_at
    extract: Callable[[Mapping[str, Any]], tuple[Any, ...]] = field(repr=False)
    scope: str | None = None  # the column a name is unique within (organization_id, ...)

    @property
    def table(self) -> str:
        return self.name

    @property
    def singular(self) -> str:
        return singular(self.name)


def _named(name: str, model: str, scope: str | None = None) -> Kind:
    """A lookup table the client resolves names in (types, statuses, the catalog)."""
    if scope is None:
        return Kind(
            name,
            model,
            f"{name}.get",
            ("name", "name_key"),
            lambda d: (_name(d), name_key(_name(d))),
        )
    attribute = scope.replace("_", "-")
    return Kind(
        name,
        model,
        f"{name}.get",
        (scope, "name", "name_key"),
        lambda d: (opt_id(attr(d, attribute)), _name(d), name_key(_name(d))),
        scope,
    )


# the kinds names are resolved in besides organizations and contacts (schema v2)
NAMED_KINDS: tuple[Kind, ...] = (
    _named("organization_types", "OrganizationType"),
    _named("organization_statuses", "OrganizationStatus"),
    _named("configuration_types", "ConfigurationType"),
    _named("configuration_statuses", "ConfigurationStatus"),
    _named("contact_types", "ContactType"),
    _named("manufacturers", "Manufacturer"),
    _named("models", "Model", "manufacturer_id"),
    _named("platforms", "Platform"),
    _named("operating_systems", "OperatingSystem", "platform_id"),
    _named("password_categories", "PasswordCategory"),
    _named("countries", "Country"),
    _named("regions", "Region", "country_id"),
    _named("locations", "Location", "organization_id"),
)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "organizations",
            "Organization",
            "get_organization",
            ("name", "name_key"),
            lambda d: (_name(d), name_key(_name(d))),
        ),
        Kind(
            "configurations",
            "Configuration",
            "get_configuration",
            ("organization_id", "name", "name_key"),
            lambda d: (opt_id(attr(d, "organization-id")), _name(d), name_key(_name(d))),
            "organization_id",
        ),
        Kind(
            "contacts",
            "Contact",
            "get_contact",
            ("organization_id", "name", "name_key", "email"),
            lambda d: (
                opt_id(attr(d, "organization-id")),
                _contact_name(d),
                name_key(_contact_name(d)),
                _contact_email(d),
            ),
            "organization_id",
        ),
        Kind(
            "documents",
            "Document",
            "get_document",
            ("organization_id", "name", "name_key"),
            lambda d: (opt_id(attr(d, "organization-id")), _name(d), name_key(_name(d))),
            "organization_id",
        ),
        *NAMED_KINDS,
    )
}

_ALIASES = (
    {k.rstrip("s"): k for k in KINDS} | {singular(k): k for k in KINDS} | {k: k for k in KINDS}
)


def kind(name: str) -> Kind:
    """The kind called ``name`` ("organizations" or "organization", any case)."""
    try:
        return KINDS[_ALIASES[name.strip().lower().replace("-", "_")]]
    except KeyError:
        raise ValueError(f"unknown cache kind {name!r} (one of: {', '.join(KINDS)})") from None


@dataclass(frozen=True)
class CachedDocument:
    """A document as the cache knows it: IT Glue metadata plus what we uploaded.

    ``sha256``/``size`` are the content key the sink recorded after uploading (None
    for documents only seen in a listing); ``attachment_ids`` the files it attached.
    """

    id: str
    organization_id: str | None
    name: str
    sha256: str | None
    size: int | None
    attachment_ids: tuple[str, ...]
    attributes: dict[str, Any]
    cached_at: float
    recorded_at: float | None
