"""Error bodies exactly as the real IT Glue API sends them, inconsistencies included.

The real API is not uniform (docs/itglue-api.md section 4): ``status`` is sometimes an int,
sometimes a string, sometimes a symbolic word; ``detail`` is a string, a list or absent;
source pointers come with or without the leading slash. Each helper below reproduces one
observed variant, always the same one for the same situation, so that a client that parses
errors strictly (or only one way) fails against the emulator as it would in production.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Raised by route handlers; the server turns it into an HTTP answer."""

    def __init__(
        self, status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None
    ):
        super().__init__(status)
        self.status = status
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"errors": self.errors}


def unauthorized() -> ApiError:
    # itglue/automation #31: 401 with pointer "id"; status as a string.
    return ApiError(
        401,
        [
            {
                "status": "401",
                "title": "Unauthorized",
                "detail": "Missing or invalid x-api-key header",
                "source": {"pointer": "id"},
            }
        ],
    )


def record_not_found(kind: str, record_id: str) -> ApiError:
    # Rails' ActiveRecord::RecordNotFound rendered by the API: status string, detail string.
    return ApiError(
        404,
        [
            {
                "status": "404",
                "title": "Record not found",
                "detail": f"Couldn't find {kind} with 'id'={record_id}",
            }
        ],
    )


def route_not_found(method: str, path: str) -> ApiError:
    # Unknown route (e.g. POST /documents/:id/publish): int status, no source.
    return ApiError(
        404,
        [{"status": 404, "title": "Not Found", "detail": f'No route matches [{method}] "{path}"'}],
    )


def blank(attribute: str) -> ApiError:
    # powershellwrapper #96 style: leading slash, detail as a list, int status.
    return ApiError(422, [blank_entry(attribute)])


def blank_entry(attribute: str) -> dict[str, Any]:
    return {
        "source": {"pointer": f"/data/attributes/{attribute}"},
        "detail": ["can't be blank"],
        "title": "Unprocessable Entity",
        "status": 422,
    }


def must_exist_entry(relation: str) -> dict[str, Any]:
    # itglue/automation #38: leading slash, detail as a string.
    return {
        "source": {"pointer": f"/data/attributes/{relation}"},
        "detail": "must exist",
        "title": "Unprocessable Entity",
        "status": 422,
    }


def organization_required_entry() -> dict[str, Any]:
    # itglue/automation #38: no detail, no leading slash, snake_case pointer.
    return {
        "status": 422,
        "title": "Valid organization_id is required",
        "source": {"pointer": "data/attributes/organization_id"},
    }


def invalid_value_entry(attribute: str, detail: str) -> dict[str, Any]:
    return {
        "source": {"pointer": f"/data/attributes/{attribute}"},
        "detail": [detail],
        "title": "Unprocessable Entity",
        "status": 422,
    }


def unprocessable(entries: list[dict[str, Any]]) -> ApiError:
    return ApiError(422, entries)


def invalid_trait_keys() -> ApiError:
    # powershellwrapper #102 / #72: int status, pointer without leading slash.
    return ApiError(
        422,
        [
            {
                "status": 422,
                "title": "Unprocessable Entity",
                "detail": "Request contains invalid trait keys",
                "source": {"pointer": "data/attributes/traits"},
            }
        ],
    )


def trait_blank_entry(name_key: str) -> dict[str, Any]:
    # powershellwrapper #96.
    return {
        "source": {"pointer": f"/data/attributes/flexible-asset-traits.{name_key}"},
        "detail": ["can't be blank"],
        "title": "Unprocessable Entity",
        "status": 422,
    }


def bulk_not_allowed(label: str) -> ApiError:
    # powershellwrapper #92: symbolic status, pointer "data", no detail.
    return ApiError(
        422,
        [
            {
                "status": "unprocessable_entity",
                "title": f"bulk action not allowed for {label} using this route",
                "source": {"pointer": "data"},
            }
        ],
    )


def symbolic_unprocessable(title: str, pointer: str = "data") -> ApiError:
    return ApiError(
        422,
        [{"status": "unprocessable_entity", "title": title, "source": {"pointer": pointer}}],
    )


def param_missing(name: str) -> ApiError:
    # WYRE-AI/itglue-mcp PR #8: 400 "param is missing or the value is empty: resource_type".
    return ApiError(
        400,
        [
            {
                "status": "400",
                "title": "Bad Request",
                "detail": f"param is missing or the value is empty: {name}",
            }
        ],
    )


def bad_request(detail: str) -> ApiError:
    return ApiError(400, [{"status": 400, "title": "Bad Request", "detail": detail}])


def malformed_json() -> ApiError:
    return ApiError(
        400,
        [
            {
                "status": 400,
                "title": "Bad Request",
                "detail": "There was a problem in the JSON you submitted",
            }
        ],
    )


def internal_error() -> ApiError:
    # itglue/automation #27: a double-JSON-encoded body makes the real API answer 500.
    return ApiError(500, [{"status": "500", "title": "Internal Server Error"}])


def payload_too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        [
            {
                "status": 413,
                "title": "Payload Too Large",
                "detail": f"Request body exceeds the limit of {limit} bytes",
            }
        ],
    )


def too_many_requests(retry_after: int | None) -> ApiError:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return ApiError(
        429,
        [{"status": "429", "title": "Too Many Requests", "detail": "Rate limit exceeded"}],
        headers,
    )


_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def injected_server_error(status: int) -> ApiError:
    return ApiError(
        status, [{"status": str(status), "title": _REASONS.get(status, "Server Error")}]
    )
