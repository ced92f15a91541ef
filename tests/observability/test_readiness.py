"""``/readyz`` of a running daemon turns 503 within seconds of a regenerated API key, a
stopped IT Glue (the emulator is stopped) and an unmounted drop folder (renamed away),
and 200 again after each fix; ``/healthz`` stays 200 throughout (the daemon is alive)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.observability.obs_helpers import KEY_ENV, daemon_settings, running_daemon
from tests.waiting import wait_for


def readyz(url: str) -> tuple[int, dict[str, Any]]:
    resp = requests.get(f"{url}/readyz", timeout=5)
    assert resp.headers["Content-Type"] == "application/json"
    return resp.status_code, resp.json()


def flips(url: str, status: int, change: Callable[[], object]) -> tuple[float, dict[str, Any]]:
    """Make ``change``; seconds until /readyz answers ``status``, and its body."""
    change()
    t0 = time.monotonic()
    body = wait_for(
        lambda: (lambda r: r[1] if r[0] == status else None)(readyz(url)),
        timeout=20,
        message=f"/readyz to answer {status}",
    )
    return time.monotonic() - t0, body


def test_readyz_follows_the_key_the_api_and_the_drop_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from itglue_emulator import run_emulator

    monkeypatch.setenv(KEY_ENV, "obs-key")
    drop = tmp_path / "drop"
    drop.mkdir()
    timings: dict[str, float] = {}
    with ExitStack() as stack:
        emu = stack.enter_context(run_emulator(api_key="obs-key", tls=False, seed="demo"))
        port = emu.port
        settings = daemon_settings(emu.base_url, tmp_path / "state", drop)
        with running_daemon(settings) as (_engine, url):
            wait_for(lambda: readyz(url)[0] == 200, message="the daemon to be ready")

            timings["key regenerated"], body = flips(
                url, 503, lambda: emu.set_api_key("regenerated-key")
            )
            assert body["itglue"]["key_accepted"] is False
            assert "IT Glue refused the API key (401/403)" in body["problems"]
            timings["key fixed"], body = flips(url, 200, lambda: emu.set_api_key("obs-key"))
            assert body["itglue"]["key_accepted"] is True

            timings["API stopped"], body = flips(url, 503, stack.close)
            assert body["itglue"]["reachable"] is False
            assert any(p.startswith("IT Glue unreachable") for p in body["problems"])
            timings["API back"], body = flips(
                url,
                200,
                lambda: stack.enter_context(
                    run_emulator(api_key="obs-key", tls=False, seed="demo", port=port)
                ),
            )

            timings["folder unmounted"], body = flips(
                url, 503, lambda: drop.rename(tmp_path / "unmounted")
            )
            assert body["sources"]["drop"]["connected"] is False
            assert "is not available" in body["sources"]["drop"]["error"]
            assert body["itglue"]["reachable"] is True  # only the source is wrong
            timings["folder back"], body = flips(
                url, 200, lambda: (tmp_path / "unmounted").rename(drop)
            )
            assert body["sources"]["drop"] == {
                "connected": True,
                "last_scan_at": body["sources"]["drop"]["last_scan_at"],
                "error": None,
            }
            health = requests.get(f"{url}/healthz", timeout=5)
            assert health.status_code == 200, health.json()
    print("\n/readyz flipped after: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))


def test_readyz_follows_a_feed_that_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The http_feed source reports each poll: a feed answering 503 is a source that
    cannot scan; the next good poll makes it connected again."""
    from itglue_emulator import run_emulator
    from tests.http_feed.http_feed_server import run_feed_server

    monkeypatch.setenv(KEY_ENV, "obs-key")
    (tmp_path / "drop").mkdir()
    with (
        run_emulator(api_key="obs-key", tls=False, seed="demo") as emu,
        run_feed_server(tmp_path) as feed,
    ):
        source = {
            "name": "feed",
            "type": "http_feed",
            "url": feed.url("/feed/next_link"),
            "ca_bundle": str(feed.ca_file),
            "items_path": "data",
            "pagination": {"style": "next_link", "next_path": "links.next"},
            "fields": {"id": "id", "name": "attributes.title", "file_url": "links.file"},
            "poll_interval": 0.2,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "max_retries": 1,
        }
        settings = daemon_settings(
            emu.base_url, tmp_path / "state", tmp_path / "drop", more_sources=(source,)
        )
        with running_daemon(settings) as (_engine, url):
            # ready, and the drop folder reported (None until its first report: a daemon
            # starting on a loaded machine may be ready before it)
            wait_for(
                lambda: (
                    (now := readyz(url))[0] == 200
                    and now[1]["sources"]["drop"]["connected"] is True
                ),
                message="the daemon to be ready and the drop folder connected",
            )
            seconds, body = flips(
                url, 503, lambda: feed.state.fail_next("/feed", 503, times=10_000)
            )
            assert body["sources"]["feed"]["connected"] is False
            assert "503" in body["sources"]["feed"]["error"]
            assert body["sources"]["drop"]["connected"] is True

            def heal() -> None:
                with feed.state.lock:
                    feed.state.faults.clear()

            back, body = flips(url, 200, heal)
            assert body["sources"]["feed"]["error"] is None
    print(f"\n/readyz: feed failing after {seconds:.2f} s, back after {back:.2f} s")
