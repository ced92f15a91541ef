"""Injected faults: 5xx answers, 429 storms, latency, and "commit then drop".

Schema (POST /_emulator/faults, ``run_emulator(faults=...)``, ``emu.set_faults(**...)``);
every POST *replaces* the whole configuration, an empty object clears all faults::

    {
      "seed": 42,                      # reseed the fault RNG (reproducible rates)
      "errors": [                      # 5xx answers, checked before the handler runs
        {"rate": 0.2, "next": 0, "status": 503,
         "methods": ["GET"], "path_prefix": "/configurations"}
      ],
      "storm": {"next": 5, "seconds": 0.0},   # 429 for the next N requests / S seconds
      "latency": {"ms": 50, "jitter_ms": 20, "methods": [...], "path_prefix": "/"},
      "drop": [                        # store the write, then close without answering
        {"rate": 0.0, "next": 1, "methods": ["POST", "PATCH"], "path_prefix": "/"}
      ],
      "cut": [                         # a 2xx answer's body stops halfway (connection closed)
        {"next": 1, "methods": ["GET"], "path_prefix": "/_downloads"}
      ]
    }

A rule with ``next`` > 0 fires on exactly the next N matching requests and is then spent;
otherwise it fires with probability ``rate``. ``methods`` (default: all; for drop POST and
PATCH; for cut GET) and ``path_prefix`` (default "/") scope a rule. Flat shorthands are
accepted too:
``error_rate``/``error_next``/``status``, ``storm_next``/``storm_seconds``,
``latency_ms``/``jitter_ms``, ``drop_rate``/``drop_next``, with ``methods`` and
``path_prefix`` applying to the flat error, latency and drop rules.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any


class FaultConfigError(ValueError):
    """The faults document is malformed (the inspection route answers 400)."""


@dataclass
class Rule:
    rate: float = 0.0
    next: int = 0
    status: int = 503
    methods: frozenset[str] = frozenset()
    path_prefix: str = "/"

    def applies(self, method: str, path: str) -> bool:
        return (not self.methods or method in self.methods) and path.startswith(self.path_prefix)

    def fire(self, rng: random.Random) -> bool:
        """Caller holds the lock."""
        if self.next > 0:
            self.next -= 1
            return True
        return self.rate > 0 and rng.random() < self.rate

    def describe(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "next": self.next,
            "status": self.status,
            "methods": sorted(self.methods),
            "path_prefix": self.path_prefix,
        }


@dataclass
class _Config:
    errors: list[Rule] = field(default_factory=list)
    drops: list[Rule] = field(default_factory=list)
    cuts: list[Rule] = field(default_factory=list)
    latency: Rule | None = None
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    storm_next: int = 0
    storm_until: float = 0.0


def _number(doc: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = doc.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise FaultConfigError(f"{key} must be a number in [{lo}, {hi}]")
    return float(value)


def _rule(doc: Any, default_methods: frozenset[str], what: str) -> Rule:
    if not isinstance(doc, dict):
        raise FaultConfigError(f"{what} rules must be objects")
    methods = doc.get("methods")
    if methods is None:
        mset = default_methods
    elif isinstance(methods, list) and all(isinstance(m, str) for m in methods):
        mset = frozenset(m.upper() for m in methods)
    else:
        raise FaultConfigError("methods must be a list of strings")
    prefix = doc.get("path_prefix", "/")
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise FaultConfigError("path_prefix must start with /")
    status = int(_number(doc, "status", 503, 500, 599))
    return Rule(
        rate=_number(doc, "rate", 0.0, 0.0, 1.0),
        next=int(_number(doc, "next", 0, 0, 1e9)),
        status=status,
        methods=mset,
        path_prefix=prefix,
    )


def _rules(value: Any, default_methods: frozenset[str], what: str) -> list[Rule]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [_rule(v, default_methods, what) for v in items]


_WRITES = frozenset({"POST", "PATCH"})
_KNOWN = {
    "seed",
    "errors",
    "storm",
    "latency",
    "drop",
    "cut",
    "error_rate",
    "error_next",
    "status",
    "methods",
    "path_prefix",
    "storm_next",
    "storm_seconds",
    "latency_ms",
    "jitter_ms",
    "drop_rate",
    "drop_next",
}


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._cfg = _Config()

    def configure(self, doc: Any) -> None:
        """Replace the whole fault configuration (validated first; nothing half-applied)."""
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise FaultConfigError("faults must be a JSON object")
        unknown = set(doc) - _KNOWN
        if unknown:
            raise FaultConfigError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        scope = {k: doc[k] for k in ("methods", "path_prefix") if k in doc}
        cfg = _Config()
        cfg.errors = _rules(doc.get("errors"), frozenset(), "errors")
        if "error_rate" in doc or "error_next" in doc:
            cfg.errors.append(
                _rule(
                    {
                        "rate": doc.get("error_rate", 0.0),
                        "next": doc.get("error_next", 0),
                        "status": doc.get("status", 503),
                        **scope,
                    },
                    frozenset(),
                    "errors",
                )
            )
        cfg.drops = _rules(doc.get("drop"), _WRITES, "drop")
        if "drop_rate" in doc or "drop_next" in doc:
            cfg.drops.append(
                _rule(
                    {"rate": doc.get("drop_rate", 0.0), "next": doc.get("drop_next", 0), **scope},
                    _WRITES,
                    "drop",
                )
            )
        cfg.cuts = _rules(doc.get("cut"), frozenset({"GET"}), "cut")
        latency = doc.get("latency")
        if latency is None and ("latency_ms" in doc or "jitter_ms" in doc):
            latency = {
                "ms": doc.get("latency_ms", 0),
                "jitter_ms": doc.get("jitter_ms", 0),
                **scope,
            }
        if latency is not None:
            if not isinstance(latency, dict):
                raise FaultConfigError("latency must be an object")
            cfg.latency = _rule(
                {k: v for k, v in latency.items() if k in ("methods", "path_prefix")},
                frozenset(),
                "latency",
            )
            cfg.latency_ms = _number(latency, "ms", 0.0, 0.0, 60_000.0)
            cfg.jitter_ms = _number(latency, "jitter_ms", 0.0, 0.0, 60_000.0)
        storm = doc.get("storm")
        if storm is None and ("storm_next" in doc or "storm_seconds" in doc):
            storm = {"next": doc.get("storm_next", 0), "seconds": doc.get("storm_seconds", 0)}
        if storm is not None:
            if not isinstance(storm, dict):
                raise FaultConfigError("storm must be an object")
            cfg.storm_next = int(_number(storm, "next", 0, 0, 1e9))
            seconds = _number(storm, "seconds", 0.0, 0.0, 86_400.0)
            cfg.storm_until = time.monotonic() + seconds if seconds else 0.0
        seed = doc.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise FaultConfigError("seed must be an integer")
        with self._lock:
            self._cfg = cfg
            if seed is not None:
                self._rng = random.Random(seed)

    def latency(self, method: str, path: str) -> float:
        """Seconds to sleep before answering (0 when no latency fault applies)."""
        with self._lock:
            cfg = self._cfg
            if cfg.latency is None or not cfg.latency.applies(method, path):
                return 0.0
            jitter = self._rng.uniform(0, cfg.jitter_ms) if cfg.jitter_ms else 0.0
            return (cfg.latency_ms + jitter) / 1000.0

    def storm(self) -> float | None:
        """None, or the seconds the storm still lasts (for an optional Retry-After)."""
        with self._lock:
            cfg = self._cfg
            if cfg.storm_next > 0:
                cfg.storm_next -= 1
                return 1.0
            remaining = cfg.storm_until - time.monotonic()
            if cfg.storm_until and remaining > 0:
                return remaining
            return None

    def error_status(self, method: str, path: str) -> int | None:
        with self._lock:
            for rule in self._cfg.errors:
                if rule.applies(method, path) and rule.fire(self._rng):
                    return rule.status
            return None

    def drop(self, method: str, path: str) -> bool:
        with self._lock:
            for rule in self._cfg.drops:
                if rule.applies(method, path) and rule.fire(self._rng):
                    return True
            return False

    def cut(self, method: str, path: str) -> bool:
        """Whether this answer's body stops halfway (a download cut by the network)."""
        with self._lock:
            return any(r.applies(method, path) and r.fire(self._rng) for r in self._cfg.cuts)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            cfg = self._cfg
            remaining = max(0.0, cfg.storm_until - time.monotonic()) if cfg.storm_until else 0.0
            return {
                "errors": [r.describe() for r in cfg.errors],
                "drop": [r.describe() for r in cfg.drops],
                "cut": [r.describe() for r in cfg.cuts],
                "latency": None
                if cfg.latency is None
                else {
                    "ms": cfg.latency_ms,
                    "jitter_ms": cfg.jitter_ms,
                    "methods": sorted(cfg.latency.methods),
                    "path_prefix": cfg.latency.path_prefix,
                },
                "storm": {"next": cfg.storm_next, "seconds": round(remaining, 3)},
            }
