"""Rate limiting against an emulator with a small budget (real HTTPS, real clock).

The tests taking ``make_shared_client`` or ``state_backend`` run with the budget in the
state file of the machine and in the PostgreSQL row of a fleet."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from core_client import ITGlueClient
from itglue_emulator import run_emulator
from tests.client.conftest import ClientFactory, requests_seen


@pytest.mark.slow
@pytest.mark.parametrize("retry_after", [True, False])
def test_unaware_client_finishes_every_request_through_429s(
    make_shared_client: ClientFactory, retry_after: bool
) -> None:
    """The client believes the budget is 3000/300 s; the server allows 20 per 2 s."""
    with run_emulator(rate_limit=(20, 2.0), retry_after=retry_after) as emu:
        client = make_shared_client(emu, rate_penalty_seconds=1.5)
        done = 0
        for _ in range(70):
            client.get_json("/organizations", {"page[size]": 1})
            done += 1
        assert done == 70
        throttled = requests_seen(emu, status=429)
        assert throttled > 0  # the server did push back
        m = client.get_metrics()
        assert m.rate_limited_429 == throttled
        assert m.failed_operations == 0 and m.operation_count == 70
        assert requests_seen(emu, status=200) == 70
        assert client.circuit_breaker.state == "closed"  # 429 never counts


def _run_unaware(client: ITGlueClient, n: int) -> float:
    """``n`` GETs through ``client``; returns the elapsed seconds."""
    start = time.monotonic()
    for _ in range(n):
        client.get_json("/organizations", {"page[size]": 1})
    return time.monotonic() - start


@pytest.mark.slow
def test_unaware_client_learns_a_smaller_budget(make_client: ClientFactory) -> None:
    """Issue 16: configured 3000 per 300 s, the server allows 100 per 10 s (no
    Retry-After): >= 90 % of the ceiling over 4 windows, no operation lost."""
    with run_emulator(rate_limit=(100, 10.0)) as emu:
        client = make_client(emu)
        elapsed = _run_unaware(client, 400)
        m = client.get_metrics()
        assert m.failed_operations == 0 and requests_seen(emu, status=200) == 400
        assert 400 / elapsed >= 0.9 * 100 / 10.0, elapsed
        assert client.rate_limiter.get_stats()["learned_budget"] is not None
        # probes, not a 429 per request beyond the budget
        assert m.rate_limited_429 == requests_seen(emu, status=429) < 40


@pytest.mark.slow
def test_unaware_client_learns_what_another_process_leaves(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    """Issue 16: the same, while another integration (its own state, unseen by ours)
    uses a third of the server's 90 per 10 s: ours gets >= 90 % of what is left."""
    with run_emulator(rate_limit=(90, 10.0)) as emu:
        other = make_client(emu, rate_limit=30, rate_window=10.0, state_dir=tmp_path / "other")
        ours = make_client(emu, state_dir=tmp_path / "ours")
        stop = threading.Event()
        other_done = [0]

        def other_integration() -> None:
            while not stop.is_set():
                other.get_json("/organizations", {"page[size]": 1})
                other_done[0] += 1

        worker = threading.Thread(target=other_integration)
        worker.start()
        try:
            elapsed = _run_unaware(ours, 300)
            used_by_other = other_done[0]
        finally:
            stop.set()
            worker.join(60)
        left = 90 / 10.0 - used_by_other / elapsed
        assert 300 / elapsed >= 0.9 * left, (elapsed, used_by_other)
        assert ours.get_metrics().failed_operations == 0
        assert other.get_metrics().failed_operations == 0


def test_configured_client_gets_no_429(make_shared_client: ClientFactory) -> None:
    """Budget known (50 per 2 s): 120 requests in ~5 s, and the server never says 429."""
    with run_emulator(rate_limit=(50, 2.0)) as emu:
        client = make_shared_client(emu, rate_limit=50, rate_window=2.0)
        for _ in range(40):
            client.get_json("/organizations", {"page[size]": 1})
        # issue 15: the first 80 % of an empty window's budget go at once
        assert client.rate_limiter.get_stats()["waits"] == 0
        for _ in range(80):
            client.get_json("/organizations", {"page[size]": 1})
        assert requests_seen(emu, status=429) == 0
        assert requests_seen(emu, status=200) == 120
        stats = client.rate_limiter.get_stats()
        assert stats["waits"] > 0 and stats["rate_limited_429"] == 0


def test_rate_share(make_shared_client: ClientFactory) -> None:
    """share=0.5 of 40 per 2 s leaves the other half of the account untouched."""
    with run_emulator(rate_limit=(20, 2.0)) as emu:
        client = make_shared_client(emu, rate_limit=40, rate_window=2.0, rate_share=0.5)
        assert client.rate_limiter.budget == 20
        for _ in range(45):
            client.get_json("/organizations", {"page[size]": 1})
        assert requests_seen(emu, status=429) == 0


_WORKER = textwrap.dedent(
    """
    import json, sys
    from core_client import ITGlueClient
    from core_client.postgres import PostgresDatabase
    base, key, ca, state, n, dsn = sys.argv[1:7]
    database = PostgresDatabase(dsn, component="ratelimit") if dsn else None
    with ITGlueClient.from_instance("shared", state, base_url=base, api_key=key, ca_bundle=ca,
                                    rate_limit=40, rate_window=2.0,
                                    rate_database=database) as c:
        for _ in range(int(n)):
            c.get_json("/organizations", {"page[size]": 1})
        print(json.dumps(c.get_metrics().rate_limited_429))
    """
)


def test_processes_sharing_a_state_share_one_budget(
    tmp_path: Path, state_backend: str, rate_state: str
) -> None:
    """3 processes x 40 requests with one 40-per-2 s budget, shared through the state dir
    (the machine's file) or the PostgreSQL database (three collectors, each with its own
    state dir): no 429 from the server."""
    pg = state_backend == "postgresql"
    with run_emulator(rate_limit=(40, 2.0)) as emu:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _WORKER,
                    emu.base_url,
                    emu.api_key,
                    str(emu.ca_file),
                    str(tmp_path / (f"state{i}" if pg else "state")),
                    "40",
                    rate_state if pg else "",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(3)
        ]
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=90)
            assert p.returncode == 0, err
            outs.append(json.loads(out))
        assert outs == [0, 0, 0]
        assert requests_seen(emu, status=200) == 120
        assert requests_seen(emu, status=429) == 0
    if not pg:
        assert (tmp_path / "state" / "shared.ratelimit").stat().st_mode & 0o777 == 0o600
    else:  # no state file: the budget is the database's
        assert not list(tmp_path.glob("state*/*.ratelimit"))


def test_separate_state_dirs_do_not_share(tmp_path: Path, make_client: ClientFactory) -> None:
    """Control for the test above: without the shared file the server does push back."""
    with run_emulator(rate_limit=(30, 3.0)) as emu:
        a = make_client(
            emu, rate_limit=30, rate_window=3.0, state_dir=tmp_path / "a", rate_penalty_seconds=1.0
        )
        b = make_client(
            emu, rate_limit=30, rate_window=3.0, state_dir=tmp_path / "b", rate_penalty_seconds=1.0
        )
        for _ in range(24):  # 80 % of the budget each, at once: 48 > 30
            a.get_json("/organizations", {"page[size]": 1})
            b.get_json("/organizations", {"page[size]": 1})
        assert requests_seen(emu, status=429) > 0
        assert requests_seen(emu, status=200) == 48
