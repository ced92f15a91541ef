"""``/healthz`` and ``/readyz``: is the daemon alive, and can it do its work.

Alive: the dispatcher (the loop that hands records to the workers) went round within
``stuck_after`` seconds, or is waiting out storage trouble on purpose. Ready: IT Glue
answered the latest attempt (no transport error, no 5xx, breaker not open), the key was
accepted on the latest answer, and no source reports that it cannot reach what it
reads. A prober thread calls IT Glue every ``probe_interval`` seconds so that the
answer is fresh even when nothing is delivered; the endpoints themselves never wait for
IT Glue."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..logs import redact
from .collector import EngineParts, api_unreachable

log = logging.getLogger("itglue_ingest.engine")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    body: dict[str, Any]


class Health:
    """The answers of the two endpoints, from an engine's parts."""

    def __init__(
        self,
        parts: EngineParts,
        *,
        last_tick: Callable[[], float | None],
        stuck_after: float,
    ) -> None:
        self._p = parts
        self._last_tick = last_tick  # monotonic time the dispatcher last went round
        self._stuck_after = stuck_after
        self._created = time.monotonic()  # before the first round: starting counts as alive

    def alive(self) -> Verdict:
        tick = self._last_tick() or self._created
        trouble = self._p.storage_trouble()
        since = round(time.monotonic() - tick, 3)
        ok = trouble or since <= self._stuck_after
        return Verdict(
            ok,
            {
                "status": "ok" if ok else "stuck",
                "dispatcher_seconds_since_tick": since,
                "storage_trouble": trouble,
                "uptime_seconds": round(time.time() - self._p.started_at, 1),
            },
        )

    def ready(self) -> Verdict:
        problems: list[str] = []
        itglue: dict[str, Any] = {"checked": False}
        instances: dict[str, Any] = {}
        for name, client in self._p.built_clients().items():
            details, found = _client_readiness(client)
            if self._p.named_instances:
                instances[name] = details
                problems += [f"IT Glue instance {name!r}: {p}" for p in found]
            else:
                problems += found
            if "reachable" not in itglue:
                itglue = details  # the default instance's when built (it comes first)
        sources: dict[str, Any] = {}
        for name, s in sorted(self._p.sources.snapshot().items()):
            sources[name] = {
                "connected": s.connected,
                "last_scan_at": s.last_scan_at,
                "error": redact(s.error) if s.error else None,
            }
            if s.connected is False:
                problems.append(f"source {name}: {redact(s.error or 'not connected')}")
        ok = not problems
        status = "ready" if ok else "not ready"
        body = {"status": status, "problems": problems, "itglue": itglue, "sources": sources}
        if self._p.named_instances:
            body["instances"] = instances
        return Verdict(ok, body)


def _client_readiness(client: Any) -> tuple[dict[str, Any], list[str]]:
    """What readiness says of one IT Glue client, and its problems."""
    m = client.metrics
    breaker = client.circuit_breaker.state
    reachable = not api_unreachable(m.last_status) and breaker != "open"
    details = {
        "checked": m.last_status is not None,
        "reachable": reachable,
        "key_accepted": not m.key_refused,
        "last_status": m.last_status,
        "circuit_breaker": breaker,
    }
    problems = []
    if m.last_status is None:
        problems.append("IT Glue: not asked yet")
    elif not reachable:
        problems.append(
            "IT Glue unreachable"
            + (" (circuit breaker open)" if breaker == "open" else f" ({m.last_status})")
        )
    if m.key_refused:
        problems.append("IT Glue refused the API key (401/403)")
    return details, problems


class Prober:
    """Asks IT Glue (one cheap authenticated call) every ``interval`` seconds, so that
    readiness knows about a revoked key or an outage while nothing is delivered."""

    def __init__(self, clients: Callable[[], dict[str, Any]], interval: float) -> None:
        self._clients = clients  # the built ones, by instance
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="itglue-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for client in self._clients().values():
                try:
                    client.health_check()  # never raises; its attempts update the metrics
                except Exception:  # a closed client while stopping
                    log.debug("IT Glue probe failed", exc_info=True)
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
