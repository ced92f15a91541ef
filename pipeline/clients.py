"""The IT Glue client of a configuration: the ``[itglue]`` table mapped onto the client.

It lives beside the settings (``core_client`` must not import ``pipeline``) so that the
engine and every CLI command build the client the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .settings import Settings

if TYPE_CHECKING:
    from core_client.client import ITGlueClient


def build_client(settings: Settings) -> ITGlueClient:
    """The resilient client for ``settings.itglue``, its state (budget, cache) in the state dir."""
    from core_client.client import ITGlueClient  # the engine needs it only when it delivers

    it = settings.itglue
    return ITGlueClient.from_instance(
        it.instance,
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
    )
