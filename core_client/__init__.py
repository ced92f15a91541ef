"""core_client: the resilient IT Glue API client (usable without the pipeline).

``ITGlueClient`` (typed resource methods, pagination, streamed uploads, health and
metrics) over a transport with HTTPS-only policy, retries, a shared rate limiter and
a circuit breaker; the exception tree is in :mod:`core_client.exceptions`.
"""

from .client import ITGlueClient
from .exceptions import (
    AmbiguousOutcomeError,
    APIError,
    AuthenticationError,
    CircuitOpenError,
    ClientClosedError,
    ConfigurationError,
    InsecureURLError,
    ITGlueError,
    MissingAPIKeyError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    TransportError,
    ValidationError,
)

__all__ = [
    "APIError",
    "AmbiguousOutcomeError",
    "AuthenticationError",
    "CircuitOpenError",
    "ClientClosedError",
    "ConfigurationError",
    "ITGlueClient",
    "ITGlueError",
    "InsecureURLError",
    "MissingAPIKeyError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "ValidationError",
]
