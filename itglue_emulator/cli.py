"""Run the emulator in the foreground until SIGINT/SIGTERM (``itglue-ingest emulator``).

The first line on stdout is a JSON object ``{"base_url": ..., "ca_file": ...}`` once the
server accepts connections; the API key is never printed.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from .runner import run_emulator


def parse_rate_limit(text: str) -> tuple[int, float]:
    """``"3000/300"`` -> (3000, 300.0): requests per window seconds."""
    count, sep, window = text.partition("/")
    try:
        limit, seconds = int(count), float(window) if sep else 300.0
    except ValueError:
        raise ValueError(f"rate limit must look like 3000/300, not {text!r}") from None
    if limit < 1 or seconds <= 0:
        raise ValueError("rate limit needs a positive count and window")
    return limit, seconds


def serve(
    *,
    port: int,
    api_key: str,
    tls: bool,
    rate_limit: tuple[int, float],
    retry_after: bool,
    seed: str | None,
    state_file: Path | None,
    max_body_bytes: int | None,
    faults: Mapping[str, Any] | None = None,
    random_seed: int | None = None,
    ca_dir: Path | None = None,
) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with run_emulator(
            api_key=api_key,
            tls=tls,
            port=port,
            seed=seed,
            rate_limit=rate_limit,
            retry_after=retry_after,
            max_body_bytes=max_body_bytes,
            state_file=state_file,
            faults=faults,
            random_seed=random_seed,
            ca_dir=ca_dir,
        ) as emu:
            sys.stdout.write(json.dumps({"base_url": emu.base_url, "ca_file": emu.ca_file}) + "\n")
            sys.stdout.flush()
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
