"""Rate limiter math and the shared state file (pure logic; Retry-After: tests/common)."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from core_client.exceptions import ClientClosedError
from core_client.rate_limiter import (
    RateLimiter,
    WindowState,
    backoff_estimate,
    decide,
)

# -- decide() ------------------------------------------------------------------------


def test_below_threshold_goes_at_once() -> None:
    st = WindowState(stamps=[100.0] * 79)
    assert decide(st, 100.0, budget=100, window=10.0) == 0.0


def test_full_window_waits_for_the_oldest_to_leave() -> None:
    st = WindowState(stamps=[float(i) for i in range(10)])  # 10 requests at t=0..9
    assert decide(st, 9.5, budget=10, window=20.0) == pytest.approx(20.0 - 9.5)
    st = WindowState(stamps=[0.0, 5.0, 6.0])
    assert decide(st, 6.0, budget=2, window=10.0) == pytest.approx(5.0 + 10.0 - 6.0)


def test_throttle_spreads_the_remaining_budget() -> None:
    # 80 of 100 used in a burst at t=0: the 20 left are spread over the 10 s until t=10
    st = WindowState(stamps=[0.0] * 80)
    assert decide(st, 0.0, budget=100, window=10.0) == pytest.approx(10.0 / 20)
    st.stamps.append(0.5)
    assert decide(st, 0.5, budget=100, window=10.0) == pytest.approx(0.5 + 9.5 / 19 - 0.5)


def test_pause_and_slow_down_after_429() -> None:
    st = WindowState(stamps=[0.0], pause_until=5.0, slow_until=20.0)
    assert decide(st, 1.0, budget=100, window=10.0) == pytest.approx(4.0)
    # after the pause, half pace: 2 * window / budget between requests
    st.stamps = [5.0]
    assert decide(st, 5.0, budget=100, window=10.0) == pytest.approx(0.2)
    assert decide(st, 5.3, budget=100, window=10.0) == 0.0
    assert decide(st, 25.0, budget=100, window=10.0) == 0.0


def _simulate(budget: int, window: float, n: int) -> tuple[float, list[float]]:
    """Drive decide() on a virtual clock; returns (finish time, send times)."""
    now = 0.0
    st = WindowState()
    sent: list[float] = []
    while len(sent) < n:
        st.stamps = [s for s in st.stamps if s > now - window]
        wait = decide(st, now, budget=budget, window=window)
        if wait <= 0:
            st.stamps.append(now)
            sent.append(now)
            now += 0.001  # request latency
        else:
            now += wait
    return now, sent


def test_simulated_throughput_and_ceiling() -> None:
    budget, window, n = 300, 30.0, 1000
    finish, sent = _simulate(budget, window, n)
    # never more than the budget in any window
    j = 0
    for i, t in enumerate(sent):
        while sent[j] <= t - window + 1e-9:  # float noise at the boundary
            j += 1
        assert i - j + 1 <= budget
    # at least 90 % of the ceiling (300 per 30 s) on average
    achieved = n / finish
    assert achieved >= 0.9 * budget / window, achieved


def test_backoff_estimate_grows_and_is_capped() -> None:
    est = [backoff_estimate(k, 300.0, 3000) for k in range(1, 10)]
    assert 0.8 <= est[0] <= 1.2
    assert 1.6 <= est[1] <= 2.4
    assert max(est) <= 60.0 * 1.2
    assert backoff_estimate(20, 5.0, 50) <= 1.2  # never longer than a fifth of the window
    assert backoff_estimate(1, 300.0, 100) >= 0.8 * 30  # slow budgets wait ten slots


# -- the limiter object --------------------------------------------------------------


def test_state_file_mode_and_content(tmp_path: Path) -> None:
    path = tmp_path / "s" / "inst.ratelimit"
    lim = RateLimiter(10, 60.0, state_path=path)
    try:
        for _ in range(3):
            lim.acquire()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
        assert lim.get_stats()["requests_in_window"] == 3
        # another limiter (another process would do the same) sees the same window
        other = RateLimiter(10, 60.0, state_path=path)
        try:
            assert other.get_stats()["requests_in_window"] == 3
            other.acquire()
            assert lim.get_stats()["requests_in_window"] == 4
        finally:
            other.close()
    finally:
        lim.close()


def test_share_reduces_the_budget(tmp_path: Path) -> None:
    lim = RateLimiter(3000, 300.0, 0.25, state_path=tmp_path / "x")
    try:
        assert lim.budget == 750
        with pytest.raises(ValueError):
            RateLimiter(10, 1.0, 0.0)
    finally:
        lim.close()


def test_acquire_blocks_when_full_and_close_interrupts(tmp_path: Path) -> None:
    lim = RateLimiter(2, 30.0, state_path=tmp_path / "x")
    lim.acquire()
    lim.acquire()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            lim.acquire()
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=worker)
    t.start()
    time.sleep(0.3)  # deliberate: it must stay blocked, waiting for the window
    assert t.is_alive()
    lim.close()
    t.join(5)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ClientClosedError)


def test_on_429_pauses_every_sharer(tmp_path: Path) -> None:
    path = tmp_path / "x"
    a = RateLimiter(100, 10.0, state_path=path, penalty_seconds=5.0)
    b = RateLimiter(100, 10.0, state_path=path, penalty_seconds=5.0)
    try:
        pause = a.on_429(0.4)
        assert 0.4 <= pause <= 0.5
        started = time.monotonic()
        waited = b.acquire()
        assert time.monotonic() - started >= 0.3
        assert waited > 0
        assert b.get_stats()["slowed_down"] is True
        assert a.get_stats()["rate_limited_429"] == 1
        assert b.get_stats()["waits"] == 1
    finally:
        a.close()
        b.close()


def test_corrupt_state_file_is_reset(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"garbage")
    os.chmod(path, 0o644)
    lim = RateLimiter(5, 10.0, state_path=path)
    try:
        lim.acquire()
        assert lim.get_stats()["requests_in_window"] == 1
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        lim.close()


def test_future_stamps_from_a_clock_jump_are_dropped(tmp_path: Path) -> None:
    now = [1000.0]
    lim = RateLimiter(2, 10.0, state_path=tmp_path / "x", clock=lambda: now[0])
    try:
        lim.acquire()
        lim.acquire()
        now[0] = 500.0  # the wall clock jumped back
        assert lim.acquire() == 0.0
    finally:
        lim.close()


def test_forked_child_gets_its_own_lock(tmp_path: Path) -> None:
    """A limiter inherited through fork reopens its file: the flock still excludes."""
    import multiprocessing

    path = tmp_path / "x"
    lim = RateLimiter(1000, 60.0, state_path=path)
    try:
        lim.acquire()
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_acquire_n, args=(lim, 50)) for _ in range(3)]
        for p in procs:
            p.start()
        _acquire_n(lim, 50)
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        # 1 + 4 x 50 stamps: none lost to a read-modify-write race
        assert lim.get_stats()["requests_in_window"] == 201
    finally:
        lim.close()


def _acquire_n(lim: RateLimiter, n: int) -> None:
    for _ in range(n):
        lim.acquire()


def test_peek_does_not_record(tmp_path: Path) -> None:
    lim = RateLimiter(1, 60.0, state_path=tmp_path / "x")
    try:
        assert lim.peek() == 0.0
        lim.acquire()
        assert lim.peek() > 50
        assert lim.get_stats()["requests_in_window"] == 1
    finally:
        lim.close()
