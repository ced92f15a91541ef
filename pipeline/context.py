"""What the engine offers transforms, sinks and routers: a few narrow services.

The services are the whole contract; a plugin never reaches the configuration or the
plugin manager. ``itglue()`` and ``metadata_cache()`` are for plugins that talk to IT
Glue (the sink, routers): the client is built on first use, so a pipeline that never
talks to IT Glue (a custom sink) needs no API key.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .observability.tally import Tally
from .secrets import read_secret

if TYPE_CHECKING:
    from collections.abc import Callable

    from core_client.cache import MetadataCache
    from core_client.client import ITGlueClient

    from .extraction import ExtractorRegistry
    from .hooks import HookFacade
    from .records import DocumentRecord, Route


@dataclass(frozen=True)
class Limits:
    """The limits a transform or sink must respect."""

    max_file_size: int  # bytes, per file ([pipeline] max_file_size)
    dedupe_scope: Literal["organization", "global"]  # where identical content is a duplicate
    retry_max: float  # seconds: the longest a record waits between two attempts
    request_timeout: float  # seconds the IT Glue client waits for an answer (read_timeout)


class EngineContext:
    """The services of one engine, shared by its transforms and its sink (thread-safe).

    * ``state_dir``: the engine's private state folder (a plugin may keep files in a
      sub-folder named after itself);
    * ``limits``: the :class:`Limits` of the configuration;
    * ``log``: the logger for plugin messages;
    * ``tally``: the engine's counters for the metrics endpoint; a transform that
      extracts content counts each file with ``tally.extraction(record.source,
      extractor, outcome)``;
    * :meth:`secret`, :meth:`route`, :meth:`add_plugin`, :meth:`itglue`,
      :meth:`metadata_cache`, :meth:`extractors`.
    """

    def __init__(
        self,
        *,
        state_dir: Path,
        limits: Limits,
        hook: HookFacade,
        log: logging.Logger | None = None,
        client_factory: Callable[[], ITGlueClient] | None = None,
        tally: Tally | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.tally = tally if tally is not None else Tally()
        self.limits = limits
        self.log = log or logging.getLogger("itglue_ingest.plugins")
        self._hook = hook
        self._client_factory = client_factory
        self._client: ITGlueClient | None = None
        self._client_lock = threading.Lock()  # several workers may ask at once
        self._plugins: list[object] = []
        self._extractors: ExtractorRegistry | None = None
        self._extractors_lock = threading.Lock()

    def itglue(self) -> ITGlueClient:
        """The resilient IT Glue client of the configured instance (built on first use).

        :raises RuntimeError: the engine has no IT Glue client (a test's custom sink).
        :raises core_client.exceptions.ConfigurationError: no API key, insecure URL.
        """
        with self._client_lock:
            if self._client is None:
                if self._client_factory is None:
                    raise RuntimeError("this engine has no IT Glue client configured")
                self._client = self._client_factory()
            return self._client

    def built_client(self) -> ITGlueClient | None:
        """The IT Glue client if it was built already (None: not yet, or none): for
        readers such as the metrics endpoint, which must never build one."""
        return self._client

    def metadata_cache(self) -> MetadataCache:
        """The IT Glue metadata cache (organizations, documents by hash, ...)."""
        return self.itglue().cache

    def extractors(self) -> ExtractorRegistry:
        """The content extractors by MIME type (the ``ingest_register_extractors``
        hook), collected on first use.

        :raises ValueError: two plugins registered the same MIME type.
        """
        with self._extractors_lock:
            if self._extractors is None:
                self._extractors = self._hook.extractors()
            return self._extractors

    def route(self, record: DocumentRecord) -> Route | None:
        """Ask the routers (the ``ingest_route`` hook) where ``record`` goes."""
        return self._hook.route(record, self)

    def add_plugin(self, plugin: object) -> None:
        """Register an object with ``@hookimpl`` methods for this engine's lifetime (a
        transform's per-engine hook implementations, e.g. the built-in router); it is
        unregistered when the engine closes. Its hooks see every engine's calls: an
        ``ingest_route`` implementation answers only for ``context is self.context``.

        :raises pluggy.PluginValidationError: its hook implementations do not fit.
        """
        self._hook.register(plugin)
        self._plugins.append(plugin)

    def secret(self, key: str, env: str | None = None) -> str:
        """A secret for a transform or sink: the variable ``env`` when set, else the
        keyring (service ``itglue-ingest``, user ``plugin:<key>``); registered for log
        redaction. Raises a ``PermanentError`` saying how to set it when missing."""
        return read_secret(f"plugin:{key}", key, env, "plugin")

    def _close(self) -> None:
        """The engine is closing: unregister the added plugins, close the client."""
        for plugin in reversed(self._plugins):
            self._hook.unregister(plugin)
        self._plugins.clear()
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
