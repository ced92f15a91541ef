"""The configuration keys of an ``http_feed`` source (its ``[[sources]]`` table).

Validated by pydantic when the engine builds the source; an error names the key
(``sources[0].pagination.next_path: Field required``). ``config/example.toml`` documents
every key.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline import FileField, SourceOptions

from .guard import parse_host_pattern
from .values import url_problem


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthOptions(_Strict):
    """How to authenticate. The secret itself is never in the configuration file: it comes
    from the environment variable ``env`` when set, else from the keyring (service
    ``itglue-ingest``, user ``source:<source name>:<secret>``)."""

    type: Literal["none", "header", "bearer", "basic"] = "none"
    header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    username: str | None = None  # basic auth only (the user name is not a secret)
    secret: str = Field(default="token", pattern=r"^[A-Za-z0-9_.-]+$")  # keyring key name
    env: str | None = None  # environment variable holding the secret

    @model_validator(mode="after")
    def _complete(self) -> AuthOptions:
        if self.type == "header" and not self.header:
            raise ValueError('auth.type "header" needs auth.header (e.g. "X-API-Key")')
        if self.type == "basic" and not self.username:
            raise ValueError('auth.type "basic" needs auth.username')
        return self


class NoPagination(_Strict):
    """The first answer is the whole feed."""

    style: Literal["none"] = "none"


class NextLinkPagination(_Strict):
    """The body holds the URL of the next page at ``next_path`` (absolute or relative)."""

    style: Literal["next_link"]
    next_path: str


class LinkHeaderPagination(_Strict):
    """RFC 8288: ``Link: <https://...>; rel="next"``."""

    style: Literal["link_header"]


class PagePagination(_Strict):
    """``?page=1, 2, ...`` until a page is empty (or shorter than ``page_size``)."""

    style: Literal["page"]
    page_param: str = "page"
    first_page: int = 1
    size_param: str | None = None
    page_size: int | None = Field(default=None, gt=0)


class OffsetPagination(_Strict):
    """``?offset=0&limit=100``, then offset 100, ... until a page is shorter than ``limit``."""

    style: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(default=100, gt=0)


class CursorPagination(_Strict):
    """The body holds an opaque cursor at ``cursor_path``; sent back as ``cursor_param``."""

    style: Literal["cursor"]
    cursor_path: str
    cursor_param: str = "cursor"
    has_more_path: str | None = None  # a boolean; false ends the feed even with a cursor


Pagination = Annotated[
    NoPagination
    | NextLinkPagination
    | LinkHeaderPagination
    | PagePagination
    | OffsetPagination
    | CursorPagination,
    Field(discriminator="style"),
]


class FieldMap(_Strict):
    """Dotted paths (``attributes.title``, ``files.0.url``) of each item's fields."""

    id: str = "id"
    name: str | None = None
    file_url: str | None = None
    file_base64: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    organization: str | None = None
    updated_at: str | None = None
    file_name: str | None = None
    mime: str | None = None

    @model_validator(mode="after")
    def _some_content(self) -> FieldMap:
        if not (self.file_url or self.file_base64 or self.body_text or self.body_html):
            raise ValueError(
                "map at least one of fields.file_url, fields.file_base64, "
                "fields.body_text, fields.body_html"
            )
        return self


class HttpFeedOptions(SourceOptions):
    """The ``[[sources]]`` keys of an ``http_feed`` source (see config/example.toml)."""

    url: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    auth: AuthOptions = Field(default_factory=AuthOptions)
    pagination: Pagination = Field(default_factory=NoPagination)
    items_path: str = ""  # "" = the body itself is the list
    fields: FieldMap
    checkpoint: Literal["auto", "updated_at", "cursor", "none"] = "auto"
    since_param: str | None = None  # query parameter that takes the saved updated-at
    poll_interval: float = Field(default=300.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    page_timeout: float = Field(default=300.0, gt=0)  # one page, retries included
    download_timeout: float = Field(default=1800.0, gt=0)  # one download, its body included
    download_hosts: list[str] = Field(default_factory=list)
    max_pages: int = Field(default=100, ge=1)
    max_page_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    backoff_base: float = Field(default=1.0, ge=0)
    backoff_max: float = Field(default=60.0, ge=0)
    retry_after_max: float = Field(default=120.0, ge=0)
    allow_insecure_loopback: bool = False
    ca_bundle: FileField | None = None

    def secrets(self) -> list[tuple[str, str | None]]:
        return [] if self.auth.type == "none" else [(self.auth.secret, self.auth.env)]

    def endpoints(self) -> list[tuple[str, int]]:
        url = urlsplit(self.url)
        port = url.port or (443 if url.scheme == "https" else 80)
        return [(url.hostname, port)] if url.hostname else []

    @field_validator("download_hosts")
    @classmethod
    def _host_patterns(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_host_pattern(entry)  # a ValueError names the entry
        return value

    @model_validator(mode="after")
    def _consistent(self) -> HttpFeedOptions:
        problem = url_problem(self.url, self.allow_insecure_loopback)
        if problem:
            raise ValueError(f"url: {problem}")
        mode = self.checkpoint_mode
        if mode == "updated_at" and not self.fields.updated_at:
            raise ValueError('checkpoint "updated_at" needs fields.updated_at')
        if mode == "cursor" and self.pagination.style not in ("cursor", "next_link", "link_header"):
            raise ValueError(
                'checkpoint "cursor" needs pagination.style "cursor", "next_link" or "link_header"'
            )
        if self.since_param and mode != "updated_at":
            raise ValueError('since_param needs checkpoint "updated_at" (and fields.updated_at)')
        if self.ca_bundle is not None and not self.ca_bundle.is_file():
            raise ValueError(f"ca_bundle: no such file: {self.ca_bundle}")
        return self

    @property
    def checkpoint_mode(self) -> Literal["updated_at", "cursor", "none"]:
        """``auto`` is ``updated_at`` when the feed maps one, else ``none``."""
        if self.checkpoint == "auto":
            return "updated_at" if self.fields.updated_at else "none"
        return self.checkpoint
