"""The TOML configuration, validated by pydantic.

``config/example.toml`` documents every key. A source's own keys (path, host, url, ...)
are validated by its type's ``options_model`` when the engine builds the source; a
transform's or sink's by theirs, from ``[transforms.<name>]`` / ``[sinks.<name>]`` or
the top-level table its options model names (``config_table``, e.g. ``[routing]``):
the core keeps such tables for the plugins without knowing them. Relative paths are
taken from the file's folder: the core's own here, a plugin's (its ``PathField``,
``FolderField``, ``FileField`` options) when the engine validates them against
:attr:`Settings.config_dir`.
"""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from itglue_common import APP_NAME, escape_controls

from .instance_names import unknown_instance
from .paths import FileField, FolderField, resolve_from_config_dir, validation_context


class ConfigError(Exception):
    """The configuration file is missing, not TOML, or invalid; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _key_file(value: str | None, info: ValidationInfo) -> str | None:
    # "${CREDENTIALS_DIRECTORY}/..." is expanded when the key is read: only the service
    # has the variable, and commands run from a shell (status, retry) must still load
    if value is None or value.startswith("$"):
        return value
    return str(resolve_from_config_dir(Path(value), info))


INSTANCE_NAME = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"  # names files: <state.dir>/<name>.db


class InstanceSettings(_Strict):
    """One IT Glue account: endpoint, key source, rate budget, TLS trust, timeouts."""

    base_url: str | None = None
    region: Literal["us", "eu", "au"] | None = None
    api_key_env: str | None = None  # read the key from this variable instead of the keyring
    # or from this file (owner-only: mode 0600/0400); ${NAME} is taken from the environment
    api_key_file: Annotated[str | None, AfterValidator(_key_file)] = None
    ca_bundle: FileField | None = None  # trust this CA (the emulator's)
    allow_insecure_loopback: bool = False  # permit http:// to 127.0.0.1/localhost only
    rate_limit: int = 3000  # account budget: requests per window
    rate_window: float = 300.0  # seconds
    rate_share: float = Field(default=1.0, gt=0, le=1)  # this pipeline's share of the budget
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @model_validator(mode="after")
    def _one_endpoint(self) -> InstanceSettings:
        if self.base_url and self.region:
            raise ValueError("give either base_url or region, not both")
        if self.api_key_env and self.api_key_file:
            raise ValueError("give either api_key_env or api_key_file, not both")
        return self


class ItglueSettings(InstanceSettings):
    """``[itglue]``: one instance (its keys here), or several ``[itglue.instances.NAME]``
    tables, each an :class:`InstanceSettings` of its own (then only ``default_instance``
    may stand beside them: a key here would be ambiguous)."""

    instance: str = "default"  # names the keyring entry and the state database
    instances: dict[Annotated[str, Field(pattern=INSTANCE_NAME)], InstanceSettings] = Field(
        default_factory=dict
    )
    # where records go that no rule or source sends elsewhere; default: the first instance
    default_instance: str | None = None

    @model_validator(mode="after")
    def _instances(self) -> ItglueSettings:
        if not self.instances:
            if self.default_instance is not None and self.default_instance != self.instance:
                raise ValueError(
                    "default_instance names an [itglue.instances.NAME] table; there is none"
                )
            return self
        # a key set to its default is no conflict (a dumped and re-read configuration)
        stray = sorted(
            k
            for k in self.model_fields_set - {"instances", "default_instance"}
            if getattr(self, k) != type(self).model_fields[k].get_default(call_default_factory=True)
        )
        if stray:
            raise ValueError(
                f"{', '.join(stray)}: not beside [itglue.instances.NAME] tables (each"
                " instance has these keys in its own table; default_instance names the"
                " default)"
            )
        if self.default_instance is not None and self.default_instance not in self.instances:
            raise ValueError(unknown_instance(self.default_instance, list(self.instances)))
        return self

    @property
    def named(self) -> dict[str, InstanceSettings]:
        """Every instance by name (the single form: ``instance`` -> this table)."""
        return dict(self.instances) if self.instances else {self.instance: self}

    @property
    def default_name(self) -> str:
        """The instance of records no rule or source sends elsewhere."""
        if not self.instances:
            return self.instance
        return self.default_instance or next(iter(self.instances))


class StateSettings(_Strict):
    dir: FolderField = Field(default_factory=lambda: Path(platformdirs.user_state_dir(APP_NAME)))
    # sources stop spooling while less is free on the state folder's file system; unset:
    # 5% of that file system, at most 1 GiB (pipeline.runner.backpressure.default_min_free)
    min_free_bytes: int | None = Field(default=None, ge=0)
    # ledger changes are committed at once but fsync'd together, before anything outside
    # is told (pipeline.ledger.store); false: one fsync per change, as before
    group_commit: bool = True
    # where ledger, journal, cache, rate budget and heartbeats live: "sqlite" (a file in
    # dir, one machine) or "postgresql" (shared by several collectors; spools stay in dir)
    backend: Literal["sqlite", "postgresql"] = "sqlite"
    dsn: str | None = None  # postgresql: a libpq DSN or URI, without the password
    password_env: str | None = None  # the password from this variable ...
    # ... or from this file (owner-only); else the keyring ("state-postgresql"), else none
    password_file: Annotated[str | None, AfterValidator(_key_file)] = None
    # this collector's name in the shared state (records, leases, status); default: host name
    collector: str = Field(default_factory=socket.gethostname, pattern=r"^[A-Za-z0-9_.:@-]+$")
    # postgresql: a collector owns a source while it renews the source's lease (every
    # third of this); one that stops renewing loses the source to a standby configured
    # with the same source name after this many seconds
    lease_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)

    @model_validator(mode="after")
    def _backend_needs(self) -> StateSettings:
        if self.backend == "postgresql":
            from core_client.postgres import dsn_has_password  # psycopg: only when used

            if not self.dsn:
                raise ValueError(
                    'backend = "postgresql" needs dsn (e.g. "postgresql://ingest@db/itglue")'
                )
            if dsn_has_password(self.dsn):
                raise ValueError(
                    "dsn must not hold the password: use password_env, password_file or the keyring"
                )
        if self.password_env and self.password_file:
            raise ValueError("give either password_env or password_file, not both")
        return self


class CacheSettings(_Strict):
    # the daemon refreshes each cached kind this often (seconds; 0: never); a refresh
    # costs requests in proportion to what changed
    refresh_interval: float = Field(default=86400.0, ge=0)


class PipelineSettings(_Strict):
    transforms: list[str] = Field(default_factory=lambda: ["mime", "extract", "route", "title"])
    sink: str = "itglue"
    workers: int = Field(default=4, ge=1, le=32)
    max_file_size: int = Field(default=100 * 1024 * 1024, gt=0)  # bytes
    spool_max_bytes: int = Field(default=2 * 1024 * 1024 * 1024, gt=0)  # back-pressure
    spool_max_records: int = Field(default=1000, gt=0)
    dedupe_scope: Literal["organization", "global"] = "organization"
    retry_base: float = Field(default=5.0, gt=0)  # seconds; doubles per attempt, jittered
    retry_max: float = Field(default=900.0, gt=0)
    shutdown_timeout: float = Field(default=8.0, gt=0)
    # `once`: end the run when no record finished (or arrived) for this long: only
    # records that keep failing transiently are left, and they wait for the next run
    once_timeout: float = Field(default=600.0, gt=0)
    once_max_duration: float | None = Field(default=None, gt=0)  # `once`: longest run; unset: none


def _listen(value: str | None) -> str | None:
    if value is None:
        return None
    from .observability.address import parse_listen  # the one parser of host:port

    parse_listen(value)
    return value


class ObservabilitySettings(_Strict):
    # the daemon (`run`) serves /metrics, /healthz and /readyz here; unset: no endpoint
    listen: Annotated[str | None, AfterValidator(_listen)] = None
    heartbeat_interval: float = Field(default=15.0, gt=0)  # seconds; `status` reads it
    probe_interval: float = Field(default=30.0, gt=0)  # seconds between IT Glue probes
    stuck_after: float = Field(default=120.0, gt=0)  # /healthz: dispatcher silent this long


class SourceSettings(BaseModel):
    """One ``[[sources]]`` table: the common keys, plus the type's own (kept in ``options``)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    type: str
    organization: str | None = None
    instance: str | None = None  # the IT Glue instance of its records (default_instance)
    enabled: bool = True

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Settings(BaseModel):
    # Other top-level tables belong to plugins (an options model's ``config_table``): kept
    # here, validated by the engine, which refuses a table no plugin reads.
    model_config = ConfigDict(extra="allow")

    itglue: ItglueSettings = Field(default_factory=ItglueSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    transforms: dict[str, dict[str, Any]] = Field(default_factory=dict)
    sinks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    plugins: dict[str, list[str]] = Field(default_factory=dict)  # {"block": [...]}
    sources: list[SourceSettings] = Field(default_factory=list)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceSettings]) -> list[SourceSettings]:
        seen: set[str] = set()
        for s in sources:
            if s.name in seen:
                raise ValueError(f"source name {s.name!r} is used twice")
            seen.add(s.name)
        return sources

    @model_validator(mode="after")
    def _plugin_tables_are_tables(self) -> Settings:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, dict):
                raise ValueError(f"{key}: unknown key (a plugin's settings are a [{key}] table)")
        return self

    _config_dir: Path | None = PrivateAttr(default=None)
    _selected: str | None = PrivateAttr(default=None)  # a command's --instance

    @property
    def config_dir(self) -> Path | None:
        """The configuration file's folder (relative paths are taken from it), if any."""
        return self._config_dir

    @property
    def plugin_tables(self) -> list[str]:
        """The top-level tables the core does not know (plugins' ``config_table``)."""
        return sorted(self.model_extra or {})

    def table(self, name: str) -> dict[str, Any]:
        """A copy of the top-level table ``[name]`` of a plugin ({} when absent)."""
        value = (self.model_extra or {}).get(name)
        return dict(value) if isinstance(value, dict) else {}

    @property
    def selected_instance(self) -> str:
        """The instance a command works on: its ``--instance``, else the default."""
        return self._selected or self.itglue.default_name

    @property
    def instance_selected(self) -> bool:
        """Whether a command was told which instance (``--instance``)."""
        return self._selected is not None

    def select_instance(self, name: str) -> None:
        """Make ``name`` the instance a command works on (not where records go).

        :raises ConfigError: no instance has that name.
        """
        if name not in self.itglue.named:
            raise ConfigError(unknown_instance(name, list(self.itglue.named)))
        self._selected = name

    @property
    def cache_path(self) -> Path:
        """The metadata cache database of the instance a command works on."""
        return self.state.dir / f"{self.selected_instance}.db"

    @property
    def database_path(self) -> Path:
        """The SQLite database of the ledger and of the default instance's metadata cache
        (another instance's cache is in ``<state.dir>/<name>.db``)."""
        return self.state.dir / f"{self.itglue.default_name}.db"


def format_validation_error(err: ValidationError, origin: str) -> str:
    """One line per problem, naming the key path (``sources[0].name``) and the problem."""
    lines = [f"{origin}: invalid configuration"]
    for e in err.errors():
        parts: list[str] = []
        for p in e["loc"]:
            if isinstance(p, int) and parts:
                parts[-1] += f"[{p}]"
            else:
                # a quoted TOML key may hold anything, a newline too: one line per problem
                parts.append(escape_controls(str(p)) if str(p) else '""')
        msg = e["msg"].removeprefix("Value error, ")  # pydantic's wording for a ValueError
        lines.append(f"  {'.'.join(parts) or '(top level)'}: {escape_controls(msg)}")
    return "\n".join(lines)


def parse_settings(
    data: dict[str, Any], origin: str = "<config>", config_dir: Path | None = None
) -> Settings:
    """Validate ``data``; relative paths are taken from ``config_dir`` when given."""
    try:
        settings = Settings.model_validate(data, context=validation_context(config_dir))
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, origin)) from None
    settings._config_dir = config_dir
    return settings


def load_settings(path: Path) -> Settings:
    """Read and validate a TOML file; relative paths in it are taken from its folder."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read configuration: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {escape_controls(str(e))}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    return parse_settings(data, str(path), config_dir=path.parent)
