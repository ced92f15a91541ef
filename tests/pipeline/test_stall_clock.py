"""``once_timeout`` as a retry deadline: the clock restarts whenever a record arrives or
finishes (pure logic; the command's exit codes: test_engine_cli)."""

from __future__ import annotations

from pipeline.runner.outcomes import Progress
from pipeline.runner.scheduler import StallClock


def _progress(received: int, finished: int) -> Progress:
    return Progress(received=received, finished=finished, delivered=finished, duplicate=0, failed=0)


def test_progress_keeps_the_run_going_past_once_timeout() -> None:
    clock = StallClock(10.0)
    for t in range(0, 100, 5):  # a record finishes every 5 s, for 100 s
        assert not clock.stalled(_progress(50, t // 5), float(t))


def test_nothing_finishing_for_once_timeout_ends_the_run() -> None:
    clock = StallClock(10.0)
    assert not clock.stalled(_progress(3, 2), 0.0)
    assert not clock.stalled(_progress(3, 2), 9.9)  # one record retrying
    assert clock.stalled(_progress(3, 2), 10.0)


def test_arrivals_count_as_progress() -> None:
    clock = StallClock(10.0)
    assert not clock.stalled(_progress(1, 0), 0.0)
    assert not clock.stalled(_progress(2, 0), 8.0)  # a long scan still emitting
    assert not clock.stalled(_progress(2, 0), 17.0)
    assert clock.stalled(_progress(2, 0), 18.0)
