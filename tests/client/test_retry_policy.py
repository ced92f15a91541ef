"""RetryPolicy's decisions, in-process (pure logic; the emulator tests check the acting)."""

from __future__ import annotations

import pytest

from core_client import ConfigurationError, RetryPolicy
from core_client.retry import Action, Decision, Failure

POLICY = RetryPolicy(max_retries=3, backoff_base=1.0, backoff_max=5.0, jitter=False)
ALL_METHODS = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "POST"]


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("retries", [0, 3, 1000])
def test_429_always_waits_for_the_budget_and_is_never_given_up(method: str, retries: int) -> None:
    assert POLICY.decide(method, Failure.RATE_LIMITED, retries=retries, retry_after=7.0) == (
        Decision(Action.WAIT_FOR_BUDGET, 7.0)
    )
    # without Retry-After the limiter estimates the pause itself
    assert POLICY.decide(method, Failure.RATE_LIMITED, retries=retries) == Decision(
        Action.WAIT_FOR_BUDGET, None
    )


@pytest.mark.parametrize("method", ALL_METHODS)
def test_a_request_never_sent_is_retried_for_any_method(method: str) -> None:
    delays = [POLICY.decide(method, Failure.NOT_SENT, retries=n) for n in range(3)]
    assert delays == [Decision(Action.RETRY, d) for d in (1.0, 2.0, 4.0)]
    assert POLICY.decide(method, Failure.NOT_SENT, retries=3).action is Action.GIVE_UP


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "PATCH", "DELETE"])
def test_idempotent_requests_are_retried_after_a_lost_answer_or_a_5xx(method: str) -> None:
    for failure, status in [(Failure.ANSWER_LOST, None), (Failure.SERVER_ERROR, 500)]:
        assert POLICY.decide(method, failure, retries=0, status=status) == Decision(
            Action.RETRY, 1.0
        )
        assert POLICY.decide(method, failure, retries=3, status=status).action is Action.GIVE_UP
    assert POLICY.decide(method, Failure.SERVER_ERROR, retries=0, status=503).action is (
        Action.RETRY
    )


@pytest.mark.parametrize("retries", [0, 2, 3])
def test_a_post_whose_answer_may_be_lost_is_ambiguous(retries: int) -> None:
    """Never resent blindly, whatever the retry budget left."""
    for failure, status in [
        (Failure.ANSWER_LOST, None),
        (Failure.SERVER_ERROR, 500),
        (Failure.SERVER_ERROR, 502),
        (Failure.SERVER_ERROR, 504),
    ]:
        decision = POLICY.decide("POST", failure, retries=retries, status=status)
        assert decision.action is Action.AMBIGUOUS
    # 503: "not handled": nothing happened, so a plain failure
    assert POLICY.decide("post", Failure.SERVER_ERROR, retries=0, status=503).action is (
        Action.GIVE_UP
    )


@pytest.mark.parametrize("method", ALL_METHODS)
def test_fatal_failures_are_given_up_at_once(method: str) -> None:
    assert POLICY.decide(method, Failure.FATAL, retries=0) == Decision(Action.GIVE_UP)


def test_backoff_doubles_up_to_the_cap_with_equal_jitter() -> None:
    assert [POLICY.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    jittered = RetryPolicy(backoff_base=1.0, backoff_max=5.0)
    for n, cap in [(1, 1.0), (3, 4.0), (10, 5.0)]:
        for _ in range(50):
            assert cap / 2 <= jittered.backoff(n) <= cap


def test_no_retries_means_one_attempt() -> None:
    assert RetryPolicy(max_retries=0).decide("GET", Failure.NOT_SENT, retries=0).action is (
        Action.GIVE_UP
    )


def test_a_resent_delete_that_finds_nothing_was_done() -> None:
    assert POLICY.already_done("DELETE", 404, answer_lost=True)
    assert not POLICY.already_done("DELETE", 404, answer_lost=False)
    assert not POLICY.already_done("GET", 404, answer_lost=True)
    assert not POLICY.already_done("DELETE", 422, answer_lost=True)


def test_custom_idempotent_methods() -> None:
    strict = RetryPolicy(idempotent_methods=frozenset({"GET"}))
    assert strict.decide("PATCH", Failure.ANSWER_LOST, retries=0).action is Action.AMBIGUOUS
    assert strict.is_idempotent("get") and not strict.is_idempotent("PUT")


@pytest.mark.parametrize(
    "kwargs", [{"max_retries": -1}, {"backoff_base": -0.1}, {"backoff_max": -1.0}]
)
def test_invalid_knobs_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
