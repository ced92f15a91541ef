"""The plugin manager: built-ins, entry points, blocking.

Nothing is loaded at import time; :func:`get_plugin_manager` builds a manager when it is
asked for one. Built-in plugins are listed in :data:`DEFAULT_PLUGINS` (this is the one
place in ``pipeline`` that names plugin modules) and register through the same hooks as
third-party plugins, which come from the ``itglue_ingest`` entry-point group.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import pluggy

from . import hookspecs
from .hooks import reject_notification_wrappers

DEFAULT_PLUGINS: tuple[str, ...] = (
    "plugins.filesystem",
    "plugins.imap",
    "plugins.http_feed",
    "plugins.mime",
    "plugins.routing",
    "plugins.title",
    "plugins.extract",
    "plugins.extract.ocr",
    "plugins.extract.office",
    "plugins.extract.eml",
    "plugins.itglue_sink",
)


def get_plugin_manager(
    *, load_entrypoints: bool = True, block: Iterable[str] = (), extra: Iterable[object] = ()
) -> pluggy.PluginManager:
    """A new plugin manager with the hook specs, the built-ins and the installed plugins.

    :param load_entrypoints: also load plugins from the ``itglue_ingest`` entry points.
    :param block: plugin names to skip (a built-in's module name such as
        ``plugins.imap``, or an entry point's name).
    :param extra: plugin objects or modules to register as well (tests, embedding).
    :raises pluggy.PluginValidationError: a plugin's hook implementation does not fit
        its hook (a wrapper of a notification hook, an unknown argument).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in block:
        pm.set_blocked(name)
    for module_name in DEFAULT_PLUGINS:
        if pm.is_blocked(module_name):
            continue
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    reject_notification_wrappers(pm)
    return pm


def installed_plugin_names() -> list[str]:
    """The names ``[plugins] block`` may use: the built-ins' modules and the entry points'."""
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group=hookspecs.PROJECT_NAME)}
    return sorted(names.union(DEFAULT_PLUGINS))


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, object]]:
    """Every registered plugin with its hooks and distribution (for ``itglue-ingest plugins``)."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out: list[dict[str, object]] = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin) or repr(plugin)
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        dist = dists.get(id(plugin))
        out.append(
            {
                "name": name,
                "hooks": hooks,
                "distribution": (
                    f"{dist.project_name} {dist.version}" if dist else "itglue-ingest (built-in)"
                ),
            }
        )
    return sorted(out, key=lambda p: str(p["name"]))
