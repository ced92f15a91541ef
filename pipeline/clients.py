"""The IT Glue clients of a configuration: each instance's table mapped onto the client.

It lives beside the settings (``core_client`` must not import ``pipeline``) so that the
engine and every CLI command build a client the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from .settings import ConfigError, Settings
from .state_database import open_cache_database, open_state_database

if TYPE_CHECKING:
    from core_client.client import ITGlueClient


def build_client(settings: Settings, instance: str | None = None) -> ITGlueClient:
    """The resilient client of ``instance`` (default: the command's ``--instance``, else
    the default instance): its budget ``<name>.ratelimit`` in the state dir, its metadata
    cache in the ``[state]`` database (:func:`~.state_database.open_cache_database`,
    opened on first use); with ``[state] backend = "postgresql"`` its rate budget is the
    instance's row in the shared database, one budget for every collector of the account.

    :raises ConfigError: the configuration has no instance of that name.
    """
    from core_client.client import ITGlueClient  # the engine needs it only when it delivers

    name = instance or settings.selected_instance
    named = settings.itglue.named
    if name not in named:
        from .instance_names import unknown_instance

        raise ConfigError(unknown_instance(name, list(named)))
    it = named[name]
    rate_database = (
        open_state_database(settings, "ratelimit")
        if settings.state.backend == "postgresql"
        else None
    )
    try:
        return ITGlueClient.from_instance(
            name,
            base_url=it.base_url,
            region=it.region,
            api_key_env=it.api_key_env,
            api_key_file=it.api_key_file,
            ca_bundle=it.ca_bundle,
            allow_insecure_loopback=it.allow_insecure_loopback,
            state_dir=settings.state.dir,
            rate_limit=it.rate_limit,
            rate_window=it.rate_window,
            rate_share=it.rate_share,
            connect_timeout=it.connect_timeout,
            read_timeout=it.read_timeout,
            rate_database=rate_database,
            cache_database=lambda: open_cache_database(settings, name),
        )
    except BaseException:
        if rate_database is not None:
            rate_database.close()
        raise


def instance_factories(
    settings: Settings, build: Callable[[Settings, str], ITGlueClient] = build_client
) -> dict[str, Callable[[], ITGlueClient]]:
    """A client factory per instance of ``settings`` (the default one first)."""
    names = sorted(settings.itglue.named, key=lambda n: n != settings.itglue.default_name)
    return {name: partial(build, settings, name) for name in names}
