"""The Prometheus collector of an engine: read at scrape time from the engine's tally,
its ledger, its sources' states and the IT Glue client's own metrics (nothing is kept
twice, so nothing can drift apart). Metric names: docs/admin.md, "Metrics and alerts"."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..ledger import ALL_STATES, LedgerQueries
from .source_health import SourceHealth
from .tally import DELIVERY_BUCKETS, Tally

if TYPE_CHECKING:
    from core_client.client import ITGlueClient

P = "itglue_ingest_"
BREAKER_STATES = ("closed", "open", "half_open")


@dataclass(frozen=True)
class EngineParts:
    """What the collector (and the health endpoints) read of a running engine."""

    tally: Tally
    sources: SourceHealth
    ledger: LedgerQueries
    state_dir: Path
    client: Callable[[], ITGlueClient | None]  # None: not built (yet), or no IT Glue sink
    storage_trouble: Callable[[], bool]
    started_at: float  # wall clock
    # with [itglue.instances.NAME]: every built client by instance name; the API metrics
    # then carry an ``instance`` label and readiness names the instance of a problem
    clients: Callable[[], dict[str, ITGlueClient]] | None = None
    # whether this collector owns a source now (its lease; always, with SQLite)
    owns: Callable[[str], bool] = lambda _source: True

    @property
    def named_instances(self) -> bool:
        return self.clients is not None

    def built_clients(self) -> dict[str, ITGlueClient]:
        """The IT Glue clients built so far, by instance ("" for the only one)."""
        if self.clients is not None:
            return self.clients()
        client = self.client()
        return {} if client is None else {"": client}


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(P + name, doc, labels=labels)


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(P + name, doc, labels=labels or [])


class EngineCollector(Collector):
    """Yields every itglue-ingest metric of one engine."""

    def __init__(self, parts: EngineParts) -> None:
        self._p = parts

    def collect(self) -> Iterator[Metric]:
        yield from self._records()
        yield from self._ledger()
        yield from self._sources()
        clients = self._p.built_clients()
        if clients:
            yield from self._clients(clients)
        start = _gauge("daemon_start_time_seconds", "When this engine started (Unix time).")
        start.add_metric([], self._p.started_at)
        yield start
        trouble = _gauge(
            "storage_trouble", "1 while the state folder's disk or database refuses writes."
        )
        trouble.add_metric([], float(self._p.storage_trouble()))
        yield trouble

    def _records(self) -> Iterator[Metric]:
        snap = self._p.tally.snapshot()
        docs = {
            "received": "Records the sources handed to the engine.",
            "delivered": "Records delivered to IT Glue.",
            "duplicate": "Records whose content was already there (not uploaded again).",
            "retried": "Transient failures: the record waits for another attempt.",
        }
        names = {s for s, _ in snap.records} | set(self._p.sources.snapshot())
        for outcome, doc in docs.items():
            m = _counter(f"records_{outcome}", doc, ["source"])
            for source in sorted(names):
                m.add_metric([source], snap.records.get((source, outcome), 0))
            yield m
        failed = _counter(
            "records_failed", "Records failed for good, by reason class.", ["source", "reason"]
        )
        for (source, reason), n in sorted(snap.failed.items()):
            failed.add_metric([source, reason], n)
        yield failed
        ext = _counter(
            "extractions",
            "Files whose content extraction ended, by extractor and outcome.",
            ["source", "extractor", "outcome"],
        )
        for key, n in sorted(snap.extractions.items()):
            ext.add_metric(list(key), n)
        yield ext
        hist = HistogramMetricFamily(
            P + "delivery_latency_seconds",
            "From a record's arrival (its source emitted it) to its delivery.",
            labels=["source"],
        )
        for source, counts in sorted(snap.delivery_buckets.items()):
            buckets: list[tuple[str, float]] = []
            running = 0
            for bound, n in zip(DELIVERY_BUCKETS, counts, strict=True):
                running += n
                buckets.append((_bound(bound), running))
            buckets.append(("+Inf", snap.delivery_count[source]))
            hist.add_metric([source], buckets, snap.delivery_sum[source])
        yield hist
        if snap.last_delivery_at is not None:
            last = _gauge("last_delivery_timestamp_seconds", "The last delivery (Unix time).")
            last.add_metric([], snap.last_delivery_at)
            yield last

    def _ledger(self) -> Iterator[Metric]:
        ledger = self._p.ledger
        records = _gauge(
            "records",
            "Records in the ledger by collector, source and state (every collector's).",
            ["collector", "source", "state"],
        )
        for collector, sources in sorted(ledger.counts_by_collector().items()):
            for source, states in sorted(sources.items()):
                for state in ALL_STATES:
                    records.add_metric([collector, source, state], states.get(state, 0))
        yield records
        oldest = ledger.oldest_active_created_at()
        age = _gauge(
            "oldest_pending_age_seconds",
            "Age of the oldest record not yet delivered, duplicate or failed (0: none).",
        )
        age.add_metric([], max(0.0, time.time() - oldest) if oldest is not None else 0.0)
        yield age
        n, size = ledger.spool_load()
        spool_bytes = _gauge("spool_bytes", "Bytes in the spool for unfinished records.")
        spool_bytes.add_metric([], size)
        yield spool_bytes
        spool_records = _gauge("spool_records", "Unfinished records holding spool space.")
        spool_records.add_metric([], n)
        yield spool_records
        try:
            st = os.statvfs(self._p.state_dir)
        except OSError:
            return
        free = _gauge("state_disk_free_bytes", "Free bytes on the state folder's file system.")
        free.add_metric([], st.f_bavail * st.f_frsize)
        yield free

    def _sources(self) -> Iterator[Metric]:
        connected = _gauge(
            "source_connected",
            "1 when the source reaches what it reads, 0 when not (absent: not known yet).",
            ["source"],
        )
        last = _gauge(
            "source_last_scan_timestamp_seconds",
            "The source's last successful scan (Unix time).",
            ["source"],
        )
        owned = _gauge(
            "source_owned",
            "1 while this collector owns the source (holds its lease), 0 while another does.",
            ["source"],
        )
        for name, s in sorted(self._p.sources.snapshot().items()):
            if s.connected is not None:
                connected.add_metric([name], float(s.connected))
            if s.last_scan_at is not None:
                last.add_metric([name], s.last_scan_at)
            owned.add_metric([name], float(self._p.owns(name)))
        yield connected
        yield last
        yield owned

    def _clients(self, clients: dict[str, ITGlueClient]) -> Iterator[Metric]:
        """The API metrics of each client; labelled by ``instance`` with named instances."""
        extra = ["instance"] if self._p.named_instances else []
        hist = HistogramMetricFamily(
            P + "api_request_duration_seconds",
            "IT Glue API attempts (each retry is one) by route and status.",
            labels=[*extra, "route", "status"],
        )
        docs = {
            "api_operations": "Client calls (one may take several attempts).",
            "api_failed_operations": "Client calls that failed.",
            "api_retries": "Attempts retried after a 5xx or a transport error.",
            "api_rate_limited": "429 answers from IT Glue.",
            "api_rate_limit_waits": "Times the rate limiter made a request wait.",
            "api_rate_limit_wait_seconds": "Seconds requests waited for the rate budget.",
            "api_circuit_rejections": "Calls refused while the breaker was open.",
            "api_ambiguous_outcomes": "Writes whose answer was lost.",
        }
        counters = {name: _counter(name, doc, extra) for name, doc in docs.items()}
        state = _gauge(
            "api_circuit_breaker_state", "1 for the breaker's current state.", [*extra, "state"]
        )
        left = _gauge(
            "api_rate_budget_remaining",
            "Requests this client may still send in the window.",
            extra,
        )
        paused = _gauge(
            "api_rate_limit_pause_seconds", "Seconds left of a pause after 429 answers.", extra
        )
        key = _gauge(
            "api_key_accepted",
            "0 when IT Glue refused the API key on its latest answer (401/403).",
            extra,
        )
        reachable = _gauge(
            "api_reachable", "0 when the latest API attempt got no answer or a 5xx.", extra
        )
        budget_known = False
        for name, client in clients.items():
            inst = [name] if extra else []
            m = client.metrics
            for h in m.latency_histograms():
                buckets: list[tuple[str, float]] = [(_bound(b), n) for b, n in h.buckets]
                buckets.append(("+Inf", h.count))
                hist.add_metric([*inst, h.route, h.status], buckets, h.sum_seconds)
            limiter: dict[str, Any] = client.rate_limiter.get_stats()
            breaker: dict[str, Any] = client.circuit_breaker.get_stats()
            values = {
                "api_operations": m.operation_count,
                "api_failed_operations": m.failed_operations,
                "api_retries": m.retries,
                "api_rate_limited": m.rate_limited_429,
                "api_rate_limit_waits": limiter["waits"],
                "api_rate_limit_wait_seconds": limiter["wait_seconds"],
                "api_circuit_rejections": m.circuit_rejections,
                "api_ambiguous_outcomes": m.ambiguous,
            }
            for counter_name, v in values.items():
                counters[counter_name].add_metric(inst, v)
            for st in BREAKER_STATES:
                state.add_metric([*inst, st], float(breaker["state"] == st))
            used = limiter.get("requests_in_window")
            budget = limiter.get("learned_budget") or limiter.get("budget")
            if isinstance(used, int) and isinstance(budget, int):
                budget_known = True
                left.add_metric(inst, max(0, budget - used))
            paused.add_metric(inst, float(limiter.get("paused_seconds_left") or 0.0))
            key.add_metric(inst, 0.0 if m.key_refused else 1.0)
            reachable.add_metric(inst, 0.0 if api_unreachable(m.last_status) else 1.0)
        yield hist
        yield from counters.values()
        yield state
        if budget_known:
            yield left
        yield paused
        yield key
        yield reachable


def api_unreachable(last_status: str | None) -> bool:
    """Whether the latest attempt says IT Glue cannot be reached (no answer, or 5xx)."""
    return last_status == "transport_error" or (
        last_status is not None and last_status.isdigit() and int(last_status) >= 500
    )


def _bound(b: float) -> str:
    return repr(float(b))
