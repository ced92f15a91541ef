"""Retry-After parsing (itglue_common.retry_after): the client's and the HTTP feed's rule."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formatdate

import pytest

from itglue_common import parse_retry_after

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 12 ", 12.0),
        ("0", 0.0),
        ("1.5", 1.5),  # fractions: some proxies send them (the feed's copy said None)
        (".5", 0.5),
        ("2.", 2.0),
        ("+3", 3.0),
        ("-3", 0.0),  # negative: go now
        (None, None),
        ("", None),
        ("   ", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("-inf", None),
        ("1e3", None),  # not delta-seconds, not a date
        ("1_000", None),
        ("0x10", None),
        ("1.2.3", None),
        ("9" * 400, None),  # overflows a float: unusable, not "forever"
    ],
)
def test_delta_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_http_dates() -> None:
    now = NOW.timestamp()
    later = format_datetime(NOW + timedelta(seconds=42), usegmt=True)
    assert later.endswith("GMT")
    assert parse_retry_after(later, now=now) == pytest.approx(42.0)
    # the obsolete formats RFC 9110 still requires recipients to accept
    assert parse_retry_after("Wednesday, 25-Nov-26 12:00:30 GMT", now=now) == pytest.approx(30.0)
    assert parse_retry_after("Wed Nov 25 12:00:10 2026", now=now) == pytest.approx(10.0)
    # "-0000" (no zone information) and asctime dates are UTC
    assert parse_retry_after("Wed, 25 Nov 2026 12:00:05 -0000", now=now) == pytest.approx(5.0)
    past = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_http_date_against_the_current_time_by_default() -> None:
    future = formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after(future) or 0) <= 31


@pytest.mark.parametrize(
    "value", ["Wed, 32 Nov 2026 12:00:00 GMT", "Wed, 25 Foo 2026 12:00:00 GMT", "Wed,", "GMT"]
)
def test_broken_dates_are_unusable(value: str) -> None:
    assert parse_retry_after(value, now=NOW.timestamp()) is None


def test_maximum_caps_both_forms() -> None:
    now = NOW.timestamp()
    assert parse_retry_after("3600", maximum=120.0) == 120.0
    assert parse_retry_after("30", maximum=120.0) == 30.0
    far = format_datetime(NOW + timedelta(days=2), usegmt=True)
    assert parse_retry_after(far, now=now, maximum=120.0) == 120.0
    assert parse_retry_after("-5", maximum=120.0) == 0.0
    assert parse_retry_after("soon", maximum=120.0) is None


@pytest.mark.parametrize("seconds", [0, 1, 59, 86_400, 10**9])
def test_any_whole_number_of_seconds_round_trips(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == float(seconds)
    assert parse_retry_after(f"{seconds}.25") == seconds + 0.25
