"""A typed facade over ``pm.hook`` (as tox 4 does), and the registries it fills."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

if TYPE_CHECKING:
    import click

    from .context import EngineContext
    from .records import DocumentRecord, Route
    from .sinks import DeliveryResult, Sink
    from .sources import Source
    from .transforms import Transform

log = logging.getLogger("itglue_ingest.hooks")
T = TypeVar("T")


class Registry(dict[str, T]):
    """Named plugin classes of one kind; registering a name twice is an error."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str, cls: T) -> None:
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({self[name]!r}, {cls!r})")
        self[name] = cls


class HookFacade:
    """Typed calls of the plugin hooks."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def sources(self) -> Registry[type[Source]]:
        reg: Registry[type[Source]] = Registry("source type")
        self.pm.hook.ingest_register_sources(register=reg.register)
        return reg

    def transforms(self) -> Registry[type[Transform]]:
        reg: Registry[type[Transform]] = Registry("transform")
        self.pm.hook.ingest_register_transforms(register=reg.register)
        return reg

    def sinks(self) -> Registry[type[Sink]]:
        reg: Registry[type[Sink]] = Registry("sink")
        self.pm.hook.ingest_register_sinks(register=reg.register)
        return reg

    def register_commands(self, cli: click.Group) -> None:
        # one broken plugin must not take the other plugins' commands with it
        self._call_each("ingest_register_commands", cli=cli)

    def route(self, record: DocumentRecord, context: EngineContext) -> Route | None:
        result: Route | None = self.pm.hook.ingest_route(record=record, context=context)
        return result

    def access_token(self, source: str, account: str) -> str | None:
        token: str | None = self.pm.hook.ingest_access_token(source=source, account=account)
        return token

    # Notifications never break the pipeline: a failing listener is logged.
    def record_delivered(self, record: DocumentRecord, result: DeliveryResult) -> None:
        self._notify("ingest_record_delivered", record=record, result=result)

    def record_duplicate(self, record: DocumentRecord, existing: str) -> None:
        self._notify("ingest_record_duplicate", record=record, existing=existing)

    def record_failed(self, record: DocumentRecord, reason: str, permanent: bool) -> None:
        self._notify("ingest_record_failed", record=record, reason=reason, permanent=permanent)

    def _notify(self, name: str, **kwargs: Any) -> None:
        self._call_each(name, **kwargs)

    def _call_each(self, name: str, **kwargs: Any) -> None:
        # Call each implementation on its own: with plain pm.hook.<name>(...) one raising
        # plugin would stop pluggy from calling the others.
        for impl in getattr(self.pm.hook, name).get_hookimpls():
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception:
                log.exception("plugin %s raised in %s; the others go on", impl.plugin_name, name)
