"""Jittered exponential backoff (itglue_common.backoff), and the callers' numbers."""

from __future__ import annotations

import random
import threading

import pytest

from itglue_common import backoff_delay, exponential_delay
from plugins.http_feed.options import HttpFeedOptions
from plugins.http_feed.transport import FeedClient


def test_doubles_from_base_up_to_the_cap() -> None:
    assert [exponential_delay(a, base=0.5, cap=10.0) for a in range(1, 8)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        10.0,
        10.0,
    ]


@pytest.mark.parametrize("attempt", [0, -1, -100])
def test_attempts_below_one_count_as_the_first(attempt: int) -> None:
    assert exponential_delay(attempt, base=2.0, cap=60.0) == 2.0


@pytest.mark.parametrize("attempt", [100, 1_000, 10**9])
def test_huge_attempt_numbers_stay_finite(attempt: int) -> None:
    # a daemon that retried for months must not overflow into an exception
    assert exponential_delay(attempt, base=5.0, cap=3600.0) == 3600.0
    assert 1800.0 <= backoff_delay(attempt, base=5.0, cap=3600.0) <= 3600.0


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        exponential_delay(1, base=-1.0, cap=10.0)
    with pytest.raises(ValueError, match="negative"):
        backoff_delay(1, base=1.0, cap=-10.0)


def test_zero_means_no_wait() -> None:
    assert backoff_delay(5, base=0.0, cap=60.0) == 0.0
    assert backoff_delay(5, base=1.0, cap=0.0) == 0.0


def test_equal_jitter_stays_in_the_upper_half() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        full = exponential_delay(attempt, base=1.0, cap=60.0)
        samples = [backoff_delay(attempt, base=1.0, cap=60.0, rng=rng) for _ in range(200)]
        assert all(full / 2 <= s <= full for s in samples)
        # spread: clients that failed together do not retry in step
        assert max(samples) - min(samples) > full / 4


def test_a_seeded_rng_makes_it_reproducible() -> None:
    a = [backoff_delay(n, base=1.0, cap=30.0, rng=random.Random(1)) for n in range(1, 6)]
    b = [backoff_delay(n, base=1.0, cap=30.0, rng=random.Random(1)) for n in range(1, 6)]
    assert a == b


def test_http_feed_keeps_its_numbers() -> None:
    # the feed counts attempts from 0: its first retry waits about backoff_base
    opts = HttpFeedOptions.model_validate(
        {
            "url": "https://feed.example/items",
            "fields": {"file_url": "url"},
            "backoff_base": 2.0,
            "backoff_max": 20.0,
        }
    )
    feed = FeedClient(opts, threading.Event(), dict)
    try:
        assert 1.0 <= feed.backoff(0) <= 2.0
        assert 4.0 <= feed.backoff(2) <= 8.0
        assert 10.0 <= feed.backoff(10) <= 20.0
    finally:
        feed.close()
