"""The ``type = "imap"`` source's configuration keys (validated by pydantic).

Every key is documented in ``config/example.toml``. Rules inherit the source-level
defaults (``ingest``, ``include_inline``, ``on_success``, ...) for the keys they leave out,
so a mailbox with one purpose needs no ``[[sources.rules]]`` table at all.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from itglue_common import is_loopback_host
from pipeline import FileField, SourceOptions

SuccessAction = Literal["seen", "flag", "keyword", "move", "delete"]
FailureAction = Literal["flag", "keyword", "move"]
Ingest = Literal["attachments", "eml", "both"]

DEFAULT_SUBJECT_TAG = r"\[org:\s*([^\]]+?)\s*\]"


def _actions(*names: SuccessAction) -> list[SuccessAction]:
    return list(names)


def _failure(name: FailureAction) -> FailureAction:
    return name


def _check_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"not a valid regular expression ({e}): {value!r}") from None
    return value


class RuleOptions(BaseModel):
    """One ``[[sources.rules]]`` table: filters (all must match), organization, what to take."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]+$")
    # filters: regular expressions, searched case-insensitively
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None  # To and Cc
    subject: str | None = None
    body: str | None = None
    max_age_days: float | None = Field(default=None, gt=0)
    has_attachments: bool | None = None
    attachment_patterns: list[str] = Field(default_factory=list)  # globs, case-insensitive
    attachment_exclude: list[str] = Field(default_factory=list)
    # organization: subject tag, then address/domain map, then the fixed value
    organization: str | None = None
    organization_map: dict[str, str] = Field(default_factory=dict)
    subject_tag: str | None = None  # regex; group 1 is the organization name
    # what to ingest and what to do afterwards (None: the source's default)
    ingest: Ingest | None = None
    include_inline: bool | None = None
    on_success: list[SuccessAction] | None = None
    success_keyword: str | None = None
    success_folder: str | None = None

    _regexes = field_validator("from_", "to", "subject", "body", "subject_tag")(_check_regex)

    @field_validator("organization_map")
    @classmethod
    def _lower_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.strip().lower().lstrip("@"): v for k, v in value.items()}


class ImapOptions(SourceOptions):
    """The keys of an IMAP ``[[sources]]`` table."""

    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["ssl", "starttls", "plain"] = "ssl"
    ca_file: FileField | None = None
    allow_insecure_loopback: bool = False
    username: str
    auth: Literal["password", "xoauth2"] = "password"
    password_env: str | None = None
    token_command: list[str] | None = None
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    batch_size: int = Field(default=25, ge=1, le=1000)
    idle: bool = True
    poll_interval: float = Field(default=60.0, gt=0)
    idle_renew: float = Field(default=600.0, gt=0, le=1740)  # RFC 2177: under 29 minutes
    timeout: float = Field(default=60.0, gt=0)
    reconnect_max: float = Field(default=300.0, gt=0)
    scan_attempts: int = Field(default=4, ge=1)
    max_message_size: int | None = Field(default=None, gt=0)
    body_max_chars: int = Field(default=500_000, gt=0)
    match: Literal["first", "all"] = "first"
    rules: list[RuleOptions] = Field(default_factory=lambda: [RuleOptions()], min_length=1)
    # defaults for the rules
    ingest: Ingest = "attachments"
    include_inline: bool = False
    on_success: list[SuccessAction] = Field(default_factory=lambda: _actions("seen", "keyword"))
    success_keyword: str = "$Ingested"
    success_folder: str | None = None
    on_failure: list[FailureAction] = Field(default_factory=lambda: [_failure("keyword")])
    failure_keyword: str = "$IngestFailed"
    failure_folder: str | None = None

    def secrets(self) -> list[tuple[str, str | None]]:
        # an OAuth2 token comes from a hook or token_command when the source connects
        return [("password", self.password_env)] if self.auth == "password" else []

    def endpoints(self) -> list[tuple[str, int]]:
        return [(self.host, self.effective_port)]

    @field_validator("token_command")
    @classmethod
    def _command(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("token_command needs a program (a list: [program, args...])")
        return value

    @field_validator("success_keyword", "failure_keyword")
    @classmethod
    def _keyword(cls, value: str) -> str:
        if not re.fullmatch(r'[^\s(){}%*"\\\]\x00-\x1f\x7f]+', value):
            raise ValueError(f"not a valid IMAP keyword: {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ImapOptions:
        if self.security == "plain":
            if not self.allow_insecure_loopback:
                raise ValueError(
                    "security = 'plain' sends the password unencrypted; it is only allowed for a"
                    " loopback host with allow_insecure_loopback = true (use 'ssl' or 'starttls')"
                )
            if not is_loopback_host(self.host):
                raise ValueError(
                    f"security = 'plain' is only allowed for a loopback host, not {self.host!r}"
                )
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("rule names must be unique")
        for r in self.rules:
            if "move" in (r.on_success or self.on_success) and not (
                r.success_folder or self.success_folder
            ):
                raise ValueError(f"rule {r.name!r}: on_success 'move' needs success_folder")
        for r in self.rules:
            actions = r.on_success or self.on_success
            if "move" in actions and "delete" in actions:
                raise ValueError(f"rule {r.name!r}: on_success has both 'move' and 'delete'")
            for key in ("success_folder",):
                target = getattr(r, key) or self.success_folder
                if target and target in self.folders:
                    raise ValueError(f"{key} {target!r} must not be one of the watched folders")
        if self.failure_folder and self.failure_folder in self.folders:
            raise ValueError(
                f"failure_folder {self.failure_folder!r} must not be one of the watched folders"
            )
        if "move" in self.on_failure and not self.failure_folder:
            raise ValueError("on_failure 'move' needs failure_folder")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "ssl" else 143)


class Rule(BaseModel):
    """A rule with the source defaults filled in (what the matcher and actions use)."""

    model_config = ConfigDict(frozen=True)

    options: RuleOptions
    ingest: Ingest
    include_inline: bool
    on_success: tuple[SuccessAction, ...]
    success_keyword: str
    success_folder: str | None

    @property
    def name(self) -> str:
        return self.options.name


def effective_rules(options: ImapOptions) -> list[Rule]:
    return [
        Rule(
            options=r,
            ingest=r.ingest or options.ingest,
            include_inline=(
                options.include_inline if r.include_inline is None else r.include_inline
            ),
            on_success=tuple(options.on_success if r.on_success is None else r.on_success),
            success_keyword=r.success_keyword or options.success_keyword,
            success_folder=r.success_folder or options.success_folder,
        )
        for r in options.rules
    ]
