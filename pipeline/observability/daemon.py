"""Everything the daemon (``itglue-ingest run``) runs beside the engine so that it can
be watched: the heartbeat in the state database and, with ``[observability] listen``,
the HTTP endpoint and the IT Glue prober that keeps ``/readyz`` fresh."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from core_client.database import Database

from ..ledger import LedgerQueries
from ..settings import ConfigError, ObservabilitySettings
from .collector import EngineParts
from .heartbeat import HeartbeatWriter


class DaemonWatch:
    """Started when the daemon starts (a context manager), stopped when it stops.

    :raises ConfigError: the ``listen`` address cannot be bound (in use, not ours).
    """

    def __init__(
        self,
        settings: ObservabilitySettings,
        open_database: Callable[[str], Database],
        parts: EngineParts,
        last_tick: Callable[[], float | None],
        *,
        collector: str = "",
    ) -> None:
        self._settings = settings
        self._collector = collector  # whose heartbeat this daemon writes
        self._open_database = open_database  # component -> its state database
        self._parts = parts
        self._last_tick = last_tick
        self._heartbeat: HeartbeatWriter | None = None
        self._server: Any = None
        self._prober: Any = None
        self._reader: LedgerQueries | None = None

    @property
    def url(self) -> str | None:
        """The endpoint's base URL (``http://host:port``) while it serves, else None."""
        return self._server.url if self._server is not None else None

    def __enter__(self) -> DaemonWatch:
        s = self._settings
        tally = self._parts.tally
        self._heartbeat = HeartbeatWriter(
            self._open_database("daemon"),
            s.heartbeat_interval,
            self._parts.sources.snapshot,
            lambda: tally.snapshot().last_delivery_at,
            self._collector,
        )
        try:
            if s.listen is not None:
                self._serve(s.listen)
            self._heartbeat.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _serve(self, listen: str) -> None:
        # the endpoint's modules import prometheus_client: only when it is asked for
        from .address import parse_listen
        from .health import Health, Prober
        from .server import ObservabilityServer

        host, port = parse_listen(listen)
        # a connection of its own: a scrape's counts over a big ledger (0.1 s at 200,000
        # records) must not hold the lock the engine's workers share
        self._reader = LedgerQueries(self._open_database("ledger"))
        # what this engine works on (its spool, its oldest pending record) as it does
        self._reader.own_sources = self._parts.ledger.own_sources
        self._parts = dataclasses.replace(self._parts, ledger=self._reader)
        health = Health(
            self._parts, last_tick=self._last_tick, stuck_after=self._settings.stuck_after
        )
        try:
            self._server = ObservabilityServer(host, port, self._parts, health)
        except OSError as e:
            raise ConfigError(
                f"observability.listen: cannot listen on {listen}: {e.strerror or e}"
            ) from None
        self._server.start()
        self._prober = Prober(self._parts.built_clients, self._settings.probe_interval)
        self._prober.start()

    def __exit__(self, *exc: object) -> None:
        if self._prober is not None:
            self._prober.stop()
            self._prober = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
