"""The production IT Glue client built from a test's settings with test-sized pauses
(retries, backoff, 429 penalty, breaker cool-down), so fault tests take seconds while
the behaviour stays the production one. One builder; each suite picks its pauses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.settings import Settings


def fast_client(settings: Settings, **pauses: Any) -> Any:
    from core_client.client import ITGlueClient

    it = settings.itglue
    return ITGlueClient.from_instance(
        it.instance,
        base_url=it.base_url,
        api_key_env=it.api_key_env,
        ca_bundle=it.ca_bundle,
        allow_insecure_loopback=it.allow_insecure_loopback,
        state_dir=settings.state.dir,
        **pauses,
    )


def fast_client_factory(settings: Settings, **pauses: Any) -> Callable[[], Any]:
    """A ``client_factory`` for :class:`pipeline.runner.Engine`."""
    return lambda: fast_client(settings, **pauses)
