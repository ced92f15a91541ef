"""The soak bench for two minutes (issue 10): the daemon with a drop folder, a mailbox
and a feed against the emulator with faults stays flat and lands every item once.

The bounds catch real leaks without timing anything: with about 100 items of 256 KiB
and about 60 feed polls in the measured window, a descriptor or a thread per item or
per poll, or the bytes of every file kept, each overshoots its bound several times.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "soak.py"
WARMUP = 30.0


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_soak", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_minute_soak_stays_flat_and_lands_every_item_once(tmp_path: Path) -> None:
    bench = load_bench()
    result = bench.soak(
        tmp_path,
        minutes=2.0,
        interval=5.0,
        rate=1.0,
        warmup=WARMUP,
        storm_every=30.0,
        payload=256 * 1024,
        drain=240.0,
    )
    bench.report(result)
    assert result.daemon_rc == 0
    assert sum(result.fed.values()) >= 60 and set(result.fed) == {"drop", "mail", "feed"}
    assert result.storms >= 2
    assert result.missing == [], "an item was lost"
    assert result.duplicates == 0, "an item was delivered twice"
    assert result.wrong_files == [], "a file is missing, doubled or differs"
    assert result.failed == 0, result.ledger

    measured = result.after_warmup()
    assert len(measured) >= 12
    third = len(measured) // 3
    early, late = measured[:third], measured[-third:]
    rss_growth_mb = (late[-1].rss_kb - measured[0].rss_kb) / 1024
    assert rss_growth_mb < 12, f"RSS grew {rss_growth_mb:.1f} MB after the warm-up"
    # the least of the last third against the most of the first: noise cancels, leaks stay
    assert min(s.fds for s in late) <= max(s.fds for s in early) + 6, measured
    assert min(s.threads for s in late) <= max(s.threads for s in early) + 3, measured
