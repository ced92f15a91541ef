"""What the engine shares with transforms and sinks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core_client.cache import MetadataCache
    from core_client.client import ITGlueClient

    from .hooks import HookFacade
    from .settings import Settings


@dataclass
class EngineContext:
    """Shared services for plugins.

    ``client`` and ``cache`` are created lazily by the engine on first use, so a
    pipeline that never talks to IT Glue (a test with a custom sink) needs no key.
    """

    settings: Settings
    state_dir: Path
    hook: HookFacade
    log: logging.Logger
    _client_factory: Any = None
    _client: ITGlueClient | None = None

    @property
    def client(self) -> ITGlueClient:
        """The resilient IT Glue client of the configured instance."""
        if self._client is None:
            if self._client_factory is None:
                raise RuntimeError("this engine has no IT Glue client configured")
            self._client = self._client_factory()
        assert self._client is not None
        return self._client

    @property
    def cache(self) -> MetadataCache:
        """The metadata cache (same SQLite database as the ledger)."""
        return self.client.cache
