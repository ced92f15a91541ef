"""What the engine offers transforms, sinks and routers: a few narrow services.

The services are the whole contract; a plugin never reaches the configuration or the
plugin manager. ``itglue()`` and ``metadata_cache()`` are for plugins that talk to IT
Glue (the sink, routers), per instance (``[itglue.instances.NAME]``; a record carries
its instance's name): each client is built on first use, so a pipeline that never talks
to IT Glue (a custom sink), or to one of its instances, needs no key for it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .errors import PermanentError
from .instance_names import unknown_instance
from .observability.tally import Tally
from .secrets import read_secret

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

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
      :meth:`metadata_cache`, :meth:`extractors`, :meth:`instance_of`.
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
        instances: Mapping[str, Callable[[], ITGlueClient]] | None = None,
        default_instance: str | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.tally = tally if tally is not None else Tally()
        self.limits = limits
        self.log = log or logging.getLogger("itglue_ingest.plugins")
        self._hook = hook
        # instance name -> factory, the default first (the single [itglue] form: only it)
        self._factories: dict[str, Callable[[], ITGlueClient]] = dict(instances or {})
        self._named = instances is not None  # records carry their instance's name
        self.default_instance = default_instance or next(iter(self._factories), "")
        if client_factory is not None:
            self._factories[self.default_instance] = client_factory
        self._clients: dict[str, ITGlueClient] = {}
        self._client_lock = threading.Lock()  # several workers may ask at once
        self._plugins: list[object] = []
        self._extractors: ExtractorRegistry | None = None
        self._extractors_lock = threading.Lock()

    @property
    def instances(self) -> list[str]:
        """The names of the IT Glue instances, the default one first."""
        return list(self._factories)

    def instance_of(self, name: str | None) -> str | None:
        """What a routed record carries: the instance ``name`` (None: the default), or
        None with the single ``[itglue]`` table (its dedupe keys stay as they were).

        :raises PermanentError: no instance has that name.
        """
        if not self._named:
            if name is not None and name != self.default_instance:
                raise self._unknown(name)
            return None
        name = name or self.default_instance
        if name not in self._factories:
            raise self._unknown(name)
        return name

    def _unknown(self, name: str) -> PermanentError:
        return PermanentError(unknown_instance(name, self.instances or ["(none)"]))

    def itglue(self, instance: str | None = None) -> ITGlueClient:
        """The resilient IT Glue client of ``instance`` (default: the default instance),
        built on first use.

        :raises RuntimeError: the engine has no IT Glue client configured (a test's
            custom sink).
        :raises PermanentError: no instance has that name.
        :raises core_client.exceptions.ConfigurationError: no API key, insecure URL.
        """
        name = instance or self.default_instance
        with self._client_lock:
            client = self._clients.get(name)
            if client is None:
                if not self._factories:
                    raise RuntimeError("this engine has no IT Glue client configured")
                factory = self._factories.get(name)
                if factory is None:
                    raise self._unknown(name)
                client = self._clients[name] = factory()
            return client

    def built_client(self, instance: str | None = None) -> ITGlueClient | None:
        """The IT Glue client of ``instance`` (default: the default one) if it was built
        already (None: not yet, or none): for readers such as the metrics endpoint,
        which must never build one."""
        return self._clients.get(instance or self.default_instance)

    def built_clients(self) -> dict[str, ITGlueClient]:
        """Every IT Glue client built so far, by instance name (the default one first)."""
        with self._client_lock:
            return {n: self._clients[n] for n in self._factories if n in self._clients}

    def metadata_cache(self, instance: str | None = None) -> MetadataCache:
        """The IT Glue metadata cache of ``instance`` (organizations, documents by hash, ...)."""
        return self.itglue(instance).cache

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

    def routers(self) -> list[object]:
        """The plugins that implement ``ingest_route`` (every engine's)."""
        return self._hook.routers()

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
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
