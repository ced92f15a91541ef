"""core_client: the resilient IT Glue API client (usable without the pipeline).

``ITGlueClient`` (resource collections, pagination, streamed uploads, typed health
and metrics) over a transport with HTTPS-only policy, a :class:`RetryPolicy`, a rate
limiter and a circuit breaker; the exception tree is in :mod:`core_client.exceptions`.
"""

from .circuit_breaker import CircuitBreaker
from .client import REGIONS, ITGlueClient
from .download import Downloaded
from .exceptions import (
    AmbiguousNameError,
    AmbiguousOutcomeError,
    APIError,
    AuthenticationError,
    CircuitOpenError,
    ClientClosedError,
    ConfigurationError,
    DownloadError,
    InsecureURLError,
    ITGlueError,
    MissingAPIKeyError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    TransportError,
    UnknownNameError,
    UnsupportedActionError,
    ValidationError,
)
from .metrics import Metrics
from .rate_limiter import RateLimiter
from .reports import ClientMetrics, HealthReport
from .retry import RetryPolicy
from .transport import Timeouts

__all__ = [
    "REGIONS",
    "APIError",
    "AmbiguousNameError",
    "AmbiguousOutcomeError",
    "AuthenticationError",
    "CircuitBreaker",
    "CircuitOpenError",
    "ClientClosedError",
    "ClientMetrics",
    "ConfigurationError",
    "DownloadError",
    "Downloaded",
    "HealthReport",
    "ITGlueClient",
    "ITGlueError",
    "InsecureURLError",
    "Metrics",
    "MissingAPIKeyError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "RateLimiter",
    "RetryPolicy",
    "ServerError",
    "Timeouts",
    "TransportError",
    "UnknownNameError",
    "UnsupportedActionError",
    "ValidationError",
]
