"""Exponential backoff with jitter, for every retry loop (HTTP, IMAP, the engine)."""

from __future__ import annotations

import random

# 2**64 times any sensible base is past every cap; the clamp only keeps the float finite
_MAX_EXPONENT = 64


def exponential_delay(attempt: int, *, base: float, cap: float) -> float:
    """``base * 2**(attempt - 1)`` seconds, at most ``cap``: base for the first retry.

    ``attempt`` counts from 1; 0 or less is treated as 1.
    """
    if base < 0 or cap < 0:
        raise ValueError(f"backoff base and cap must not be negative (got {base}, {cap})")
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    return min(cap, base * 2.0**exponent)


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """The wait before retry ``attempt`` (from 1): :func:`exponential_delay` with "equal
    jitter", half of it fixed and half random.

    The fixed half keeps retries from hammering; the random half spreads clients that
    failed together (a restarted server, a dropped link) so they do not retry in step.
    """
    delay = exponential_delay(attempt, base=base, cap=cap)
    uniform = rng.uniform if rng is not None else random.uniform
    return delay / 2 + uniform(0, delay / 2)
