"""JSON:API request and response shapes: filters, attributes, ids, resource objects."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import SecretStr

from .exceptions import APIError
from .models import Resource, to_kebab
from .redaction import Secret
from .transport import Response

M = TypeVar("M", bound=Resource)


def collection_name(resource_type: str) -> str:
    """``flexible-assets`` / ``FlexibleAsset`` / ``flexible_assets`` -> ``flexible_assets``."""
    text = resource_type.strip()
    if not text:
        raise ValueError("resource_type is empty")
    if any(c.isupper() for c in text) and "_" not in text and "-" not in text:
        # CamelCase class name ("FlexibleAsset") -> snake plural
        snake = "".join("_" + c.lower() if c.isupper() else c for c in text).lstrip("_")
        text = snake if snake.endswith("s") else snake + "s"
    return text.lower().replace("-", "_")


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _escape(value: str) -> str:
    return value.replace(",", "\\,")


def filter_params(filters: Mapping[str, Any] | None, prefix: str = "filter") -> dict[str, str]:
    r"""``{"name": "Kub, Reynolds", "id": [1, 2], "exclude": {"id": 3}}`` ->
    ``filter[name]=Kub\, Reynolds``, ``filter[id]=1,2``, ``filter[exclude][id]=3``.

    A single value is literal (its commas are escaped as ``\,``); a list/tuple/set is
    a list or range (joined with commas, each element escaped); a nested mapping
    becomes nested brackets. ``None`` values are left out. Keys pass through as
    given (the API uses snake_case, and hyphens for flexible assets).
    """
    out: dict[str, str] = {}
    for key, value in (filters or {}).items():
        name = f"{prefix}[{key}]"
        if value is None:
            continue
        if isinstance(value, Mapping):
            out.update(filter_params(value, name))
        elif isinstance(value, list | tuple | set | frozenset):
            items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
            out[name] = ",".join(_escape(_format_value(v)) for v in items)
        else:
            out[name] = _escape(_format_value(value))
    return out


def joined(value: str | Any) -> str:
    """A ``sort``/``include`` value: a string as is, a sequence joined with commas."""
    return value if isinstance(value, str) else ",".join(value)


def attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """snake_case kwargs -> kebab-case attributes; ``*_id`` digit strings -> ints; a
    secret (``Secret``, ``SecretStr``, e.g. a password) revealed only here, in the body."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        k = to_kebab(key)
        if isinstance(value, Secret):
            value = value.reveal()
        elif isinstance(value, SecretStr):
            value = value.get_secret_value()
        if (k.endswith("-id") or k == "id") and isinstance(value, str) and value.isdigit():
            value = int(value)
        out[k] = value
    return out


def to_id(value: Any) -> int | str:
    """An id as the API's bodies want it: an int when it is all digits."""
    text = str(value)
    return int(text) if text.isdigit() else text


def one(resp: Response, model: type[M]) -> M:
    """The single resource of a response (the first one of a list)."""
    body = resp.body if isinstance(resp.body, dict) else {}
    data = body.get("data")
    if isinstance(data, list):
        data = data[0] if data else None
    if not isinstance(data, dict):
        raise APIError(
            f"unexpected response without a resource [request {resp.request_id}]",
            status=resp.status,
            request_id=resp.request_id,
        )
    return model.from_jsonapi(data)


def one_or_none(resp: Response, model: type[M]) -> M | None:
    """The resource of a response that may come without one (publish, rename)."""
    if isinstance(resp.body, dict) and isinstance(resp.body.get("data"), dict):
        return one(resp, model)
    return None


def many(resp: Response, model: type[M]) -> list[M]:
    body = resp.body if isinstance(resp.body, dict) else {}
    data = body.get("data") or []
    if isinstance(data, dict):
        data = [data]
    return [model.from_jsonapi(d) for d in data if isinstance(d, dict)]


__all__ = [
    "attributes",
    "collection_name",
    "filter_params",
    "joined",
    "many",
    "one",
    "one_or_none",
    "to_id",
]
