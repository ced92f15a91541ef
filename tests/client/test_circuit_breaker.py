"""Circuit breaker transitions on a fake clock (pure logic)."""

from __future__ import annotations

import threading

import pytest

from core_client.circuit_breaker import CircuitBreaker
from core_client.exceptions import CircuitOpenError, ServerError, ValidationError


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _fail() -> None:
    raise ServerError("boom", status=500)


def _business() -> None:
    raise ValidationError("bad", status=422)


def _classify(exc: BaseException) -> str:
    if isinstance(exc, ServerError):
        return "failure"
    if isinstance(exc, ValidationError):
        return "neutral"
    return "ignore"


def test_opens_after_threshold_and_fails_fast() -> None:
    clock = Clock()
    changes: list[tuple[str, str]] = []
    cb = CircuitBreaker(5, 60.0, clock=clock, on_change=lambda a, b: changes.append((a, b)))
    for _ in range(4):
        with pytest.raises(ServerError):
            cb.call(_fail, _classify)
    assert cb.state == "closed"
    with pytest.raises(ServerError):
        cb.call(_fail, _classify)
    assert cb.state == "open"
    calls = []
    with pytest.raises(CircuitOpenError) as info:
        cb.call(lambda: calls.append(1), _classify)
    assert calls == []  # nothing ran
    assert info.value.retry_after == pytest.approx(60.0)
    assert info.value.transient
    assert changes == [("closed", "open")]
    stats = cb.get_stats()
    assert stats["state"] == "open" and stats["rejected_calls"] == 1
    assert stats["times_opened"] == 1


def test_success_resets_the_count() -> None:
    cb = CircuitBreaker(3, 60.0, clock=Clock())
    for _ in range(2):
        with pytest.raises(ServerError):
            cb.call(_fail, _classify)
    cb.call(lambda: None, _classify)
    for _ in range(2):
        with pytest.raises(ServerError):
            cb.call(_fail, _classify)
    assert cb.state == "closed"


def test_business_errors_never_count() -> None:
    cb = CircuitBreaker(2, 60.0, clock=Clock())
    for _ in range(10):
        with pytest.raises(ValidationError):
            cb.call(_business, _classify)
    assert cb.state == "closed"
    assert cb.get_stats()["consecutive_failures"] == 0


def test_half_open_probe_closes_or_reopens() -> None:
    clock = Clock()
    cb = CircuitBreaker(1, 10.0, clock=clock)
    with pytest.raises(ServerError):
        cb.call(_fail, _classify)
    assert cb.state == "open"
    clock.t = 9.9
    with pytest.raises(CircuitOpenError):
        cb.call(lambda: None, _classify)
    clock.t = 10.0
    assert cb.state == "half_open"
    # failed probe: open again for a full cool-down
    with pytest.raises(ServerError):
        cb.call(_fail, _classify)
    assert cb.state == "open"
    clock.t = 15.0
    with pytest.raises(CircuitOpenError):
        cb.call(lambda: None, _classify)
    clock.t = 20.0
    assert cb.call(lambda: 42, _classify) == 42
    assert cb.state == "closed"
    old_new = [(t["old"], t["new"]) for t in cb.get_stats()["recent_transitions"]]
    assert old_new == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_only_one_probe_at_a_time() -> None:
    clock = Clock()
    cb = CircuitBreaker(1, 1.0, clock=clock)
    with pytest.raises(ServerError):
        cb.call(_fail, _classify)
    clock.t = 2.0
    inside = threading.Event()
    release = threading.Event()

    def slow_probe() -> str:
        inside.set()
        release.wait(5)
        return "ok"

    result: list[str] = []
    t = threading.Thread(target=lambda: result.append(cb.call(slow_probe, _classify)))
    t.start()
    assert inside.wait(5)
    with pytest.raises(CircuitOpenError, match="probe"):
        cb.call(lambda: None, _classify)
    release.set()
    t.join(5)
    assert result == ["ok"] and cb.state == "closed"


def test_business_answer_to_the_probe_closes() -> None:
    clock = Clock()
    cb = CircuitBreaker(1, 1.0, clock=clock)
    with pytest.raises(ServerError):
        cb.call(_fail, _classify)
    clock.t = 1.0
    with pytest.raises(ValidationError):
        cb.call(_business, _classify)
    assert cb.state == "closed"


def test_cancelled_probe_lets_another_try() -> None:
    clock = Clock()
    cb = CircuitBreaker(1, 1.0, clock=clock)
    with pytest.raises(ServerError):
        cb.call(_fail, _classify)
    clock.t = 1.0

    def cancelled() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cb.call(cancelled, _classify)
    assert cb.state == "half_open"
    assert cb.call(lambda: 1, _classify) == 1


def test_manual_reset() -> None:
    cb = CircuitBreaker(1, 3600.0, clock=Clock())
    with pytest.raises(ServerError):
        cb.call(_fail, _classify)
    assert cb.state == "open"
    cb.reset()
    assert cb.state == "closed"
    assert cb.call(lambda: 5, _classify) == 5


def test_transitions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    cb = CircuitBreaker(1, 1.0, clock=Clock())
    with caplog.at_level("INFO", logger="itglue_ingest.client"), pytest.raises(ServerError):
        cb.call(_fail, _classify)
    rec = [r for r in caplog.records if "circuit breaker" in r.getMessage()]
    assert rec and rec[0].levelname == "WARNING"
    assert rec[0].new_state == "open"  # type: ignore[attr-defined]
