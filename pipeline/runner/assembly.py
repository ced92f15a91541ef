"""From a configuration to engine parts: the plugin manager, the named plugins it
registers, their validated options, and the transforms, sink and sources built from them.

Nothing here knows a particular plugin: an options model may read a top-level table of
its own (``config_table``) and mark path fields (``PathField``, resolved against the
configuration file's folder).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pluggy
from pydantic import BaseModel, ValidationError

from ..context import EngineContext, Limits
from ..errors import PermanentError
from ..hooks import HookFacade, Registry
from ..observability.tally import Tally
from ..paths import validation_context
from ..settings import ConfigError, Settings, SourceSettings
from ..sinks import Sink
from ..sources import Source, SourceContext
from ..transforms import Transform

P = TypeVar("P")


class PluginConflictError(ConfigError, ValueError):
    """Two plugins registered the same source, transform or sink name (a configuration
    problem for the CLI; still the ``ValueError`` the registry raises)."""


def plugin_manager_for(settings: Settings) -> pluggy.PluginManager:
    """The plugin manager a configuration asks for: built-ins and installed plugins
    except ``[plugins] block``, plus ``[plugins] modules`` (importable module names of
    local plugins that are not packaged with an entry point).

    :raises ConfigError: an unknown ``[plugins]`` key, a module that cannot be imported,
        a plugin whose hook implementations do not fit the hooks.
    """
    from ..plugins import get_plugin_manager

    for key in settings.plugins:
        if key not in ("block", "modules"):
            raise ConfigError(f"plugins.{key}: unknown key (use block or modules)")
    extra: list[object] = []
    for i, name in enumerate(settings.plugins.get("modules", [])):
        try:
            extra.append(importlib.import_module(name))
        except Exception as e:
            raise ConfigError(
                f"plugins.modules[{i}]: cannot import {name!r}: {type(e).__name__}: {e}"
            ) from None
    try:
        return get_plugin_manager(block=settings.plugins.get("block", ()), extra=extra)
    except ImportError as e:
        raise ConfigError(f"plugins: a plugin cannot be loaded: {e}") from None
    except pluggy.PluginValidationError as e:
        raise ConfigError(f"plugins: {e}") from None


def limits_of(settings: Settings) -> Limits:
    p = settings.pipeline
    return Limits(
        max_file_size=p.max_file_size,
        dedupe_scope=p.dedupe_scope,
        retry_max=p.retry_max,
        request_timeout=settings.itglue.read_timeout,
    )


def engine_context(
    settings: Settings,
    hook: HookFacade,
    client_factory: Callable[[], Any] | None,
    tally: Tally | None = None,
) -> EngineContext:
    """The services the engine of ``settings`` offers its transforms and sink."""
    return EngineContext(
        tally=tally,
        state_dir=settings.state.dir,
        limits=limits_of(settings),
        hook=hook,
        log=logging.getLogger("itglue_ingest.plugins"),
        client_factory=client_factory,
    )


def _options_error(prefix: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")  # pydantic's wording for a ValueError
        lines.append(f"{prefix}.{loc}: {msg}" if loc else f"{prefix}: {msg}")
    return "\n".join(lines)


class Assembly:
    """The named plugins of a plugin manager, checked against a configuration.

    :raises PluginConflictError: two plugins registered one name.
    :raises ConfigError: an unknown source type, transform or sink name, or a top-level
        table no plugin reads, naming the key.
    """

    def __init__(self, settings: Settings, hook: HookFacade, *, check: bool = True) -> None:
        self.settings = settings
        try:
            self.source_types = hook.sources()
            self.transform_types = hook.transforms()
            self.sink_types = hook.sinks()
        except ValueError as e:  # a name registered twice: say which plugins clash
            raise PluginConflictError(f"plugins: {e}") from None
        if check:  # not when a test builds one plugin of a configuration
            self._check_names()
            self._check_tables()

    def _check_names(self) -> None:
        s = self.settings
        for i, src in enumerate(s.sources):
            _known(self.source_types, src.type, f"sources[{i}].type", "source type")
        for i, name in enumerate(s.pipeline.transforms):
            _known(self.transform_types, name, f"pipeline.transforms[{i}]", "transform")
        _known(self.sink_types, s.pipeline.sink, "pipeline.sink", "sink")

    def _check_tables(self) -> None:
        """A top-level table is a plugin's (its options model's ``config_table``) or a typo."""
        plugins: list[type[Transform] | type[Sink]] = [
            *self.transform_types.values(),
            *self.sink_types.values(),
        ]
        read = {t for t in (_config_table(c.options_model) for c in plugins) if t}
        for table in self.settings.plugin_tables:
            if table not in read:
                raise ConfigError(
                    f"{table}: unknown table (no installed plugin reads [{table}];"
                    f" plugin tables: {', '.join(sorted(read)) or 'none'})"
                )

    def options(self, model: type[BaseModel], data: dict[str, Any], prefix: str) -> BaseModel:
        """``data`` validated by a plugin's options model; errors name ``prefix.key``."""
        try:
            return model.model_validate(data, context=validation_context(self.settings.config_dir))
        except ValidationError as e:
            raise ConfigError(_options_error(prefix, e)) from None

    def transforms(self, context: EngineContext) -> list[Transform]:
        """The ``[pipeline] transforms``, in order."""
        return [
            self.transform(name, context, f"pipeline.transforms[{i}]")
            for i, name in enumerate(self.settings.pipeline.transforms)
        ]

    def transform(self, name: str, context: EngineContext, key: str) -> Transform:
        cls = self.transform_types[name]
        data, prefix = self._table(_config_table(cls.options_model), "transforms", name)
        return _construct(cls, name, self.options(cls.options_model, data, prefix), key, context)

    def sink(self, context: EngineContext, name: str | None = None) -> Sink:
        """The sink ``name`` (default: ``[pipeline] sink``)."""
        name = name or self.settings.pipeline.sink
        cls = self.sink_types[name]
        data, prefix = self._table(_config_table(cls.options_model), "sinks", name)
        options = self.options(cls.options_model, data, prefix)
        return _construct(cls, name, options, "pipeline.sink", context)

    def source(
        self, index: int, s: SourceSettings, context: Callable[[SourceSettings], SourceContext]
    ) -> Source:
        cls = self.source_types[s.type]
        options = self.options(cls.options_model, s.options, f"sources[{index}]")
        return _construct(cls, s.name, options, f"sources[{index}]", context(s))

    def _table(self, config_table: str | None, kind: str, name: str) -> tuple[dict[str, Any], str]:
        """A plugin's options: ``[<kind>.<name>]``, with its own top-level table over it."""
        tables: Mapping[str, dict[str, Any]] = getattr(self.settings, kind)
        data = dict(tables.get(name, {}))
        if config_table is None:
            return data, f"{kind}.{name}"
        data.update(self.settings.table(config_table))
        return data, config_table


def _config_table(model: type[BaseModel]) -> str | None:
    """The top-level table an options model reads (``config_table``), if any."""
    table = getattr(model, "config_table", None)
    return table if isinstance(table, str) else None


def _known(registry: Registry[Any], name: str, key: str, kind: str) -> None:
    if name not in registry:
        raise ConfigError(
            f"{key}: unknown {kind} {name!r} (known: {', '.join(sorted(registry)) or 'none'})"
        )


def _construct(cls: Callable[..., P], name: str, options: Any, key: str, ctx: Any) -> P:
    try:
        return cls(name, options, ctx)
    except ConfigError:
        raise
    except (ValueError, TypeError, OSError, PermanentError) as e:
        raise ConfigError(f"{key} ({name}): {e}") from None
