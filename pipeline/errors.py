"""Exceptions plugins raise to tell the engine what happened to a record.

::

    PipelineError
    ├── PermanentError      the record cannot succeed as it is: it goes to "failed"
    │   │                   with the reason (a person can act on it), the source is
    │   │                   nacked, the original stays recoverable
    │   └── Rejected        a transform refused the record (type not allowed,
    │                       unroutable, too large)
    ├── TransientError      try again later: the record stays, retried with backoff
    │   │                   (``retry_after`` seconds when the cause knows better)
    │   └── AccessRefused   the destination refused our credentials (a wrong or revoked
    │                       key): every record waits; ``once`` stops at once (exit 5)
    └── ScanIncomplete      raised by ``Source.scan``: it ended with items left for the
                            next scan (deferred, a page limit); ``once`` exits 4

Any other exception raised by a plugin fails the record permanently with the plugin's
name in the reason; the run goes on.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of the exceptions plugins raise about a record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermanentError(PipelineError):
    """The record cannot be delivered as it is; it is marked failed with ``reason``."""


class Rejected(PermanentError):
    """A transform refused the record (disallowed type, unroutable, too large, ...)."""


class TransientError(PipelineError):
    """A temporary failure (429, 5xx, timeout, breaker open): retry the record later.

    ``reported``: the cause is logged already, as an episode (the IT Glue client's outage
    and 429-storm lines, the sink's refused-key line): the engine then logs the retry at
    DEBUG, so an outage is a few lines, not a few per record.
    """

    def __init__(
        self, reason: str, retry_after: float | None = None, *, reported: bool = False
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.reported = reported


class AccessRefused(TransientError):
    """The destination refused the credentials (HTTP 401/403): no record can land until a
    person fixes the key, so the daemon keeps the records waiting and ``once`` stops.
    ``instance``: the IT Glue instance that refused (None: the only one)."""

    def __init__(
        self,
        reason: str,
        retry_after: float | None = None,
        *,
        reported: bool = False,
        instance: str | None = None,
    ) -> None:
        super().__init__(reason, retry_after, reported=reported)
        self.instance = instance


class ScanIncomplete(PipelineError):
    """``Source.scan`` took what it could but left items for the next scan (``reason``
    says how many and why): not a failure, but work is left (``once`` exits 4)."""
