"""A typed facade over ``pm.hook`` (as tox 4 does), and the registries it fills."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from .extraction import ExtractorRegistry, RegisterExtractor

if TYPE_CHECKING:
    import click

    from .context import EngineContext
    from .records import DocumentRecord, Route
    from .sinks import DeliveryResult, Sink
    from .sources import Source
    from .transforms import Transform

log = logging.getLogger("itglue_ingest.hooks")
T = TypeVar("T")

#: hooks whose implementations the facade calls one by one (one failing listener must
#: not stop the others), so a wrapper around "the others" cannot exist for them
NOTIFICATION_HOOKS: tuple[str, ...] = (
    "ingest_register_commands",
    "ingest_record_delivered",
    "ingest_record_duplicate",
    "ingest_record_failed",
)


class Registry(dict[str, T]):
    """Named plugin classes of one kind; registering a name twice is an error."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str, cls: T) -> None:
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({self[name]!r}, {cls!r})")
        self[name] = cls


def reject_notification_wrappers(pm: pluggy.PluginManager) -> None:
    """Refuse a ``hookwrapper``/``wrapper`` implementation of a notification hook.

    :raises pluggy.PluginValidationError: naming the plugin and the hook.
    """
    for name in NOTIFICATION_HOOKS:
        caller = getattr(pm.hook, name, None)
        if caller is None:
            continue
        for impl in caller.get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                raise pluggy.PluginValidationError(
                    impl.plugin,
                    f"plugin {impl.plugin_name!r}: {name} is a notification hook; each"
                    " implementation is called on its own (one failing listener must not"
                    " stop the others), so it cannot be a hookwrapper/wrapper -- use a"
                    " plain @hookimpl (tryfirst/trylast set the order)",
                )


class HookFacade:
    """Typed calls of the plugin hooks."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        reject_notification_wrappers(pm)
        self.pm = pm

    def register(self, plugin: object) -> None:
        """Register a plugin object later (one engine's own), with the same checks."""
        self.pm.register(plugin)
        try:
            reject_notification_wrappers(self.pm)
        except pluggy.PluginValidationError:
            self.pm.unregister(plugin)
            raise

    def unregister(self, plugin: object) -> None:
        if self.pm.is_registered(plugin):
            self.pm.unregister(plugin)

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

    def extractors(self) -> ExtractorRegistry:
        reg = ExtractorRegistry()
        self.pm.hook.ingest_register_extractors(register=RegisterExtractor(reg))
        return reg

    def register_commands(self, cli: click.Group) -> None:
        # one broken plugin must not take the other plugins' commands with it
        self._call_each("ingest_register_commands", cli=cli)

    def route(self, record: DocumentRecord, context: EngineContext) -> Route | None:
        result: Route | None = self.pm.hook.ingest_route(record=record, context=context)
        return result

    def routers(self) -> list[object]:
        """The plugins implementing ``ingest_route``."""
        return [impl.plugin for impl in self.pm.hook.ingest_route.get_hookimpls()]

    def access_token(self, source: str, account: str) -> str | None:
        token: str | None = self.pm.hook.ingest_access_token(source=source, account=account)
        return token

    # Notifications never break the pipeline: a failing listener is logged.
    def record_delivered(self, record: DocumentRecord, result: DeliveryResult) -> None:
        self._call_each("ingest_record_delivered", record=record, result=result)

    def record_duplicate(self, record: DocumentRecord, existing: str) -> None:
        self._call_each("ingest_record_duplicate", record=record, existing=existing)

    def record_failed(self, record: DocumentRecord, reason: str, permanent: bool) -> None:
        self._call_each("ingest_record_failed", record=record, reason=reason, permanent=permanent)

    def _call_each(self, name: str, **kwargs: Any) -> None:
        # Call each implementation on its own: with plain pm.hook.<name>(...) one raising
        # plugin would stop pluggy from calling the others. The order is pluggy's own:
        # get_hookimpls() lists the impls in reverse call order (tryfirst at the end).
        assert name in NOTIFICATION_HOOKS, name
        for impl in reversed(getattr(self.pm.hook, name).get_hookimpls()):
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception:
                log.exception("plugin %s raised in %s; the others go on", impl.plugin_name, name)
