"""A daemon (``Engine.run``) in a thread with its metrics endpoint on an ephemeral port,
and the scrape of ``/metrics`` parsed by ``prometheus_client.parser``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import Settings, parse_settings
from tests.fast_clients import fast_client_factory
from tests.waiting import wait_for

KEY_ENV = "ITGLUE_OBS_KEY"


def daemon_settings(
    base_url: str,
    state_dir: Path,
    drop: Path,
    *,
    ca_file: str | None = None,
    more_sources: tuple[dict[str, Any], ...] = (),
    **observability: Any,
) -> Settings:
    itglue: dict[str, Any] = {"instance": "obs", "base_url": base_url, "api_key_env": KEY_ENV}
    if ca_file is None:
        itglue["allow_insecure_loopback"] = True
    else:
        itglue["ca_bundle"] = ca_file
    return parse_settings(
        {
            "itglue": itglue,
            "state": {"dir": str(state_dir)},
            "pipeline": {"workers": 4, "retry_base": 0.05, "retry_max": 0.3},
            "observability": {
                "listen": "127.0.0.1:0",
                "probe_interval": 0.2,
                "heartbeat_interval": 0.5,
                **observability,
            },
            "sources": [
                {
                    "name": "drop",
                    "type": "filesystem",
                    "path": str(drop),
                    "organization_from": "subfolder",
                    "stability_delay": 0,
                    "after": "move",
                    "missing_retry_interval": 0.2,
                },
                *more_sources,
            ],
        }
    )


def fast_client(settings: Settings) -> Callable[[], Any]:
    """The production client with test-sized pauses (retry backoff, 429 penalty)."""
    return fast_client_factory(
        settings,
        max_retries=2,
        backoff_base=0.02,
        backoff_max=0.1,
        rate_penalty_seconds=0.1,
        breaker_cooldown=0.3,
    )


@contextmanager
def running_daemon(settings: Settings) -> Iterator[tuple[Engine, str]]:
    """``itglue-ingest run`` in this process: (engine, base URL of its endpoint)."""
    pm = get_plugin_manager(load_entrypoints=False)
    with Engine(settings, pm, client_factory=fast_client(settings)) as engine:
        engine.context.itglue()  # as `run` does: the client is built before the start
        stop = threading.Event()
        t = threading.Thread(target=engine.run, args=(stop,), name="daemon", daemon=True)
        t.start()
        try:
            watch = wait_for(lambda: engine.watch, message="the daemon to start")
            url = wait_for(lambda: watch.url, message="the endpoint")
            yield engine, url
        finally:
            stop.set()
            t.join(30)
            assert not t.is_alive(), "the daemon did not stop"


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of ``/metrics``: (name, sorted labels) -> value."""
    resp = requests.get(f"{url}/metrics", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` (KeyError names it when absent)."""
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        raise KeyError(f"no sample {name}{labels}")
    return samples[key]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every sample ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))
