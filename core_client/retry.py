"""When to retry a failed attempt: :class:`RetryPolicy` decides, the transport acts.

Modelled on urllib3's ``Retry`` (a value object holding the knobs and the rules), but
not urllib3's ``Retry`` itself: the transport must wait on the shared rate limiter
between attempts, retry 429s without limit (and interruptibly), turn a lost POST
answer into :class:`~core_client.exceptions.AmbiguousOutcomeError` and stop retrying
as soon as the circuit breaker opens, which ``Retry`` cannot express.

The rules (why each one):

* **429** -> wait for the budget, then retry; never counted, never given up: the
  budget comes back by itself, so a 429 must not fail an operation.
* **not sent** (connect refused/timeout, DNS, TLS handshake) -> retry any method:
  the server never saw the request.
* **answer lost** (read timeout, connection reset after sending) -> retry an
  idempotent method; a non-idempotent one (POST) is *ambiguous*: it may have been
  applied, so the caller must reconcile before trying again.
* **5xx** -> retry an idempotent method; for a POST, 503 means "not handled" (give
  up, nothing happened) and any other 5xx is ambiguous (a gateway may have passed it on).
* **fatal** (certificate refused, invalid URL) -> give up at once.
* PATCH counts as idempotent: every PATCH this client sends sets absolute values, so
  resending one yields the same state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from itglue_common import backoff_delay, exponential_delay

from .exceptions import ConfigurationError

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


class Failure(enum.Enum):
    """What went wrong with one attempt."""

    NOT_SENT = "not_sent"  # the server never saw the request
    ANSWER_LOST = "answer_lost"  # sent; the answer never came
    FATAL = "fatal"  # retrying cannot help (certificate, invalid URL)
    RATE_LIMITED = "rate_limited"  # HTTP 429
    SERVER_ERROR = "server_error"  # HTTP 5xx


class Action(enum.Enum):
    RETRY = "retry"  # sleep ``Decision.delay`` seconds, then send again (counts as a retry)
    WAIT_FOR_BUDGET = "wait_for_budget"  # let the rate limiter pause, then send again
    GIVE_UP = "give_up"  # raise the failure's own error
    AMBIGUOUS = "ambiguous"  # raise AmbiguousOutcomeError: it may have been applied


@dataclass(frozen=True)
class Decision:
    action: Action
    delay: float | None = None
    """RETRY: the backoff in seconds. WAIT_FOR_BUDGET: the server's Retry-After (None:
    the limiter estimates the pause itself)."""


@dataclass(frozen=True)
class RetryPolicy:
    """The retry rules of one client (see the module docstring).

    ``max_retries``: retries after counted failures (not sent, answer lost, 5xx) before
    giving up; 429s are not counted. ``backoff_base``/``backoff_max``: the backoff
    before retry *n* is ``min(backoff_max, backoff_base * 2**(n-1))``, of which half
    is fixed and half random ("equal jitter", so that clients that failed together do
    not retry together); ``jitter=False`` makes it exact.
    """

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: bool = True
    idempotent_methods: frozenset[str] = IDEMPOTENT

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigurationError("max_retries must be >= 0")
        if self.backoff_base < 0 or self.backoff_max < 0:
            raise ConfigurationError("backoff_base and backoff_max must be >= 0")

    def is_idempotent(self, method: str) -> bool:
        return method.upper() in self.idempotent_methods

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1, 2, ...)."""
        if not self.jitter:
            return exponential_delay(retry, base=self.backoff_base, cap=self.backoff_max)
        return backoff_delay(retry, base=self.backoff_base, cap=self.backoff_max)

    def decide(
        self,
        method: str,
        failure: Failure,
        *,
        retries: int,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> Decision:
        """What to do after an attempt of ``method`` failed with ``failure``.

        ``retries``: counted retries already made in this operation; ``status``: the
        HTTP status of a 5xx; ``retry_after``: the 429's parsed ``Retry-After``.
        """
        if failure is Failure.RATE_LIMITED:
            return Decision(Action.WAIT_FOR_BUDGET, retry_after)
        if failure is Failure.FATAL:
            return Decision(Action.GIVE_UP)
        if not self.is_idempotent(method):
            if failure is Failure.ANSWER_LOST:
                return Decision(Action.AMBIGUOUS)
            if failure is Failure.SERVER_ERROR:
                return Decision(Action.GIVE_UP if status == 503 else Action.AMBIGUOUS)
        if retries >= self.max_retries:
            return Decision(Action.GIVE_UP)
        return Decision(Action.RETRY, self.backoff(retries + 1))

    def already_done(self, method: str, status: int, *, answer_lost: bool) -> bool:
        """A DELETE resent after a lost answer that now gets 404: the first one worked."""
        return method.upper() == "DELETE" and status == 404 and answer_lost


__all__ = ["IDEMPOTENT", "Action", "Decision", "Failure", "RetryPolicy"]
