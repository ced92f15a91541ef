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
from ..instance_names import unknown_instance
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

    :raises ConfigError: every problem of :func:`load_plugins`, one per line.
    """
    pm, problems = load_plugins(settings)
    if problems or pm is None:
        raise ConfigError("\n".join(problems))
    return pm


def load_plugins(settings: Settings) -> tuple[pluggy.PluginManager | None, list[str]]:
    """The plugin manager of ``settings`` built from what is valid, and every problem of
    the ``[plugins]`` table: an unknown key, a blocked name no plugin has (a typo would
    leave the plugin running), a module that cannot be imported, a plugin whose hook
    implementations do not fit the hooks (then there is no manager)."""
    from ..plugins import get_plugin_manager, installed_plugin_names

    problems = [
        f"plugins.{key}: unknown key (use block or modules)"
        for key in settings.plugins
        if key not in ("block", "modules")
    ]
    extra: list[object] = []
    modules = settings.plugins.get("modules", [])
    for i, name in enumerate(modules):
        try:
            extra.append(importlib.import_module(name))
        except Exception as e:
            problems.append(
                f"plugins.modules[{i}]: cannot import {name!r}: {type(e).__name__}: {e}"
            )
    known = set(installed_plugin_names()).union(modules)
    block = settings.plugins.get("block", [])
    for i, name in enumerate(block):
        if name not in known:
            problems.append(
                f"plugins.block[{i}]: no plugin is called {name!r}"
                f" (plugins: {', '.join(sorted(known))})"
            )
    try:
        return get_plugin_manager(block=block, extra=extra), problems
    except ImportError as e:
        return None, [*problems, f"plugins: a plugin cannot be loaded: {e}"]
    except pluggy.PluginValidationError as e:
        return None, [*problems, f"plugins: {e}"]


def limits_of(settings: Settings) -> Limits:
    p = settings.pipeline
    return Limits(
        max_file_size=p.max_file_size,
        dedupe_scope=p.dedupe_scope,
        retry_max=p.retry_max,
        # the sink waits this long for a lost answer's effect to show: the slowest instance
        request_timeout=max(it.read_timeout for it in settings.itglue.named.values()),
    )


def engine_context(
    settings: Settings,
    hook: HookFacade,
    client_factory: Callable[[], Any] | None,
    tally: Tally | None = None,
    instances: Mapping[str, Callable[[], Any]] | None = None,
) -> EngineContext:
    """The services the engine of ``settings`` offers its transforms and sink.
    ``client_factory`` builds the default instance's client, ``instances`` (with
    ``[itglue.instances.NAME]`` tables) each instance's: default
    :func:`pipeline.clients.instance_factories`."""
    if settings.itglue.instances and instances is None:
        from ..clients import instance_factories

        instances = instance_factories(settings)
    return EngineContext(
        tally=tally,
        state_dir=settings.state.dir,
        limits=limits_of(settings),
        hook=hook,
        log=logging.getLogger("itglue_ingest.plugins"),
        client_factory=client_factory,
        instances=instances if settings.itglue.instances else None,
        default_instance=settings.itglue.default_name,
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
            problems = self.problems()
            if problems:
                raise ConfigError("\n".join(problems))

    def problems(self) -> list[str]:
        """Every unknown source type, transform or sink name, and every top-level table
        no plugin reads, one line each naming the key."""
        s = self.settings
        found = [
            _unknown(self.source_types, src.type, f"sources[{i}].type", "source type")
            for i, src in enumerate(s.sources)
        ]
        found += [
            _unknown(self.transform_types, name, f"pipeline.transforms[{i}]", "transform")
            for i, name in enumerate(s.pipeline.transforms)
        ]
        found.append(_unknown(self.sink_types, s.pipeline.sink, "pipeline.sink", "sink"))
        known = list(s.itglue.named)
        found += [
            f"sources[{i}].instance: {unknown_instance(src.instance, known)}"
            for i, src in enumerate(s.sources)
            if src.instance is not None and src.instance not in known
        ]
        return [p for p in found if p is not None] + self._unread_tables()

    def _unread_tables(self) -> list[str]:
        """A top-level table is a plugin's (its options model's ``config_table``) or a typo."""
        plugins: list[type[Transform] | type[Sink]] = [
            *self.transform_types.values(),
            *self.sink_types.values(),
        ]
        read = {t for t in (_config_table(c.options_model) for c in plugins) if t}
        return [
            f"{table}: unknown table (no installed plugin reads [{table}];"
            f" plugin tables: {', '.join(sorted(read)) or 'none'})"
            for table in self.settings.plugin_tables
            if table not in read
        ]

    def options(self, model: type[BaseModel], data: dict[str, Any], prefix: str) -> BaseModel:
        """``data`` validated by a plugin's options model; errors name ``prefix.key``."""
        try:
            context = validation_context(self.settings.config_dir, list(self.settings.itglue.named))
            return model.model_validate(data, context=context)
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
        options, _ = self.plugin_options(cls.options_model, "transforms", name)
        return _construct(cls, name, options, key, context)

    def sink(self, context: EngineContext, name: str | None = None) -> Sink:
        """The sink ``name`` (default: ``[pipeline] sink``)."""
        name = name or self.settings.pipeline.sink
        cls = self.sink_types[name]
        options, _ = self.plugin_options(cls.options_model, "sinks", name)
        return _construct(cls, name, options, "pipeline.sink", context)

    def plugin_options(self, model: type[BaseModel], kind: str, name: str) -> tuple[BaseModel, str]:
        """A transform's or sink's validated options, and the key its errors name."""
        data, prefix = self._table(_config_table(model), kind, name)
        return self.options(model, data, prefix), prefix

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


def _unknown(registry: Registry[Any], name: str, key: str, kind: str) -> str | None:
    if name in registry:
        return None
    return f"{key}: unknown {kind} {name!r} (known: {', '.join(sorted(registry)) or 'none'})"


def _construct(cls: Callable[..., P], name: str, options: Any, key: str, ctx: Any) -> P:
    try:
        return cls(name, options, ctx)
    except ConfigError:
        raise
    except (ValueError, TypeError, OSError, PermanentError) as e:
        raise ConfigError(f"{key} ({name}): {e}") from None
