"""Index routes: filters (with ``\\,`` escaping), sort, page[size]/page[number], meta, links.

``page[size]`` above 1000 is answered with 422 rather than silently capped: the real
maximum is documented as 1000, and a client asking for more almost always assumes it got
everything in one page -- a silent cap would hide exactly the bug the emulator is for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from . import errors
from .resources import Spec, kebab
from .store import to_int

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_FILTER_KEY = re.compile(r"^filter((?:\[[^\[\]]*\])+)$")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


def split_values(raw: str) -> list[str]:
    r"""``a,b\,c`` -> ``["a", "b,c"]`` (IT Glue: a literal comma is written ``\,``)."""
    return [part.replace("\\,", ",") for part in _UNESCAPED_COMMA.split(raw)]


def parse_filters(query: list[tuple[str, str]]) -> tuple[dict[str, str], dict[str, str]]:
    """(filters, exclude filters) with kebab-case keys; range filters are not emulated."""
    include: dict[str, str] = {}
    exclude: dict[str, str] = {}
    for key, value in query:
        m = _FILTER_KEY.match(key)
        if not m:
            continue
        parts = [kebab(p) for p in re.findall(r"\[([^\[\]]*)\]", m.group(1))]
        if len(parts) == 1:
            include[parts[0]] = value
        elif len(parts) == 2 and parts[0] == "exclude":
            exclude[parts[1]] = value
    return include, exclude


def _moment(value: Any) -> datetime | None:
    """A stored timestamp (``2024-01-02T03:04:05.000Z``) or a filter bound, UTC."""
    try:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _bound(raw: str, *, end: bool) -> datetime | None:
    """A range bound: ``*`` is open; a bare date covers its whole day (both ends
    inclusive); a time (``YYYY-MM-DDTHH:MM:SSZ``, docs/itglue-api.md 1) is exact."""
    if raw in ("*", ""):
        return None
    moment = _moment(raw)
    if moment is None:
        raise errors.bad_request(f"{raw!r} is not a date")
    if end and "T" not in raw:
        return moment + timedelta(days=1) - timedelta(microseconds=1)
    return moment


def _matches(kind: str, attr: str, record: dict[str, Any], raw: str) -> bool:
    values = split_values(raw)
    if kind == "id":
        return str(record["id"]) in {v.strip() for v in values}
    current = record.get(attr)
    if kind == "int":
        return current is not None and str(current) in {v.strip() for v in values}
    if kind == "bool":
        want = {v.strip().lower() for v in values}
        return ("true" if current else "false") in want or (
            current is not None and str(current).lower() in want
        )
    if kind == "date":
        moment = _moment(current)
        if moment is None:
            return False
        lo = values[0].strip() if values else "*"
        hi = values[1].strip() if len(values) > 1 else lo
        low, high = _bound(lo, end=False), _bound(hi, end=True)
        return (low is None or moment >= low) and (high is None or moment <= high)
    if kind == "email":
        emails = record.get("contact-emails") or []
        addresses = {str(e.get("value", "")).lower() for e in emails if isinstance(e, dict)}
        return bool(addresses & {v.strip().lower() for v in values})
    # "str": case-insensitive exact match against any listed value
    if current is None:
        return False
    return str(current).lower() in {v.lower() for v in values}


def apply_filters(
    spec: Spec, records: list[dict[str, Any]], query: list[tuple[str, str]]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Filter by the keys this resource knows; unknown keys are ignored like the real API."""
    include, exclude = parse_filters(query)
    applied: dict[str, str] = {}
    for key, raw in include.items():
        kind = spec.filters.get(key)
        if kind is None:
            continue
        applied[key.replace("-", "_")] = raw
        records = [r for r in records if _matches(kind, key, r, raw)]
    for key, raw in exclude.items():
        kind = spec.filters.get(key)
        if kind is None:
            continue
        applied[f"exclude_{key.replace('-', '_')}"] = raw
        records = [r for r in records if not _matches(kind, key, r, raw)]
    return records, applied


def check_date_window(spec: Spec, query: list[tuple[str, str]]) -> None:
    """user_metrics: a ``filter[date]`` range spans at most a week and has no wildcard."""
    days = spec.date_window_days
    raw = parse_filters(query)[0].get("date")
    if days is None or raw is None:
        return
    values = [v.strip() for v in split_values(raw)]
    try:
        span = (date.fromisoformat(values[-1][:10]) - date.fromisoformat(values[0][:10])).days
    except ValueError:  # "*" or not a date
        span = days + 1
    if span > days:
        raise errors.symbolic_unprocessable(
            "date range filter cannot be longer than a week, and cannot start with a wildcard",
            "filter[date]",
        )


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value).lower())


def apply_sort(
    spec: Spec,
    records: list[dict[str, Any]],
    sort: str | None,
    derive: Callable[[dict[str, Any], str], Any] | None = None,
) -> list[dict[str, Any]]:
    """``sort=name,-id``; default order is by id. Fields outside the resource -> 400."""
    if not sort:
        return sorted(records, key=lambda r: r["id"])
    keys: list[tuple[str, bool]] = []
    for part in sort.split(","):
        part = part.strip()
        if not part:
            continue
        desc = part.startswith("-")
        name = kebab(part.lstrip("-"))
        if name not in spec.sorts:
            raise errors.bad_request(f"{part.lstrip('-')} is not a sortable field")
        keys.append((name, desc))
    result = sorted(records, key=lambda r: r["id"])
    for name, desc in reversed(keys):

        def key(r: dict[str, Any], name: str = name) -> tuple[int, Any]:
            if name == "id":
                return (1, r["id"])
            value = r.get(name)
            if value is None and derive is not None:
                value = derive(r, name)
            return _sort_key(value)

        result.sort(key=key, reverse=desc)
    return result


def page_params(query: list[tuple[str, str]]) -> tuple[int, int]:
    size_raw = number_raw = None
    for key, value in query:
        if key == "page[size]":
            size_raw = value
        elif key == "page[number]":
            number_raw = value
    size = DEFAULT_PAGE_SIZE
    number = 1
    if size_raw is not None:
        parsed = to_int(size_raw.strip())
        if parsed is None:
            raise errors.bad_request("page[size] must be an integer")
        if parsed < 1 or parsed > MAX_PAGE_SIZE:
            raise errors.symbolic_unprocessable(
                f"page[size] must be between 1 and {MAX_PAGE_SIZE}", "page[size]"
            )
        size = parsed
    if number_raw is not None:
        parsed = to_int(number_raw.strip())
        if parsed is None or parsed < 1:
            raise errors.bad_request("page[number] must be a positive integer")
        number = parsed
    return size, number


def paginate(
    items: list[Any],
    query: list[tuple[str, str]],
    base_url: str,
    path: str,
    filters: dict[str, str],
) -> tuple[list[Any], dict[str, Any], dict[str, str]]:
    """(page items, meta, links) -- links are absolute and keep the other query params."""
    size, number = page_params(query)
    total = len(items)
    total_pages = max(1, math.ceil(total / size))
    start = (number - 1) * size
    page = items[start : start + size]
    meta = {
        "current-page": number,
        "next-page": number + 1 if number < total_pages else None,
        "prev-page": number - 1 if number > 1 and number <= total_pages + 1 else None,
        "total-pages": total_pages,
        "total-count": total,
        "filters": filters,
    }
    others = [(k, v) for k, v in query if k not in ("page[size]", "page[number]")]

    def link(n: int) -> str:
        params = [*others, ("page[number]", str(n)), ("page[size]", str(size))]
        return f"{base_url}{path}?{urlencode(params, quote_via=quote, safe='[]')}"

    links = {"self": link(number), "first": link(1), "last": link(total_pages)}
    if number < total_pages:
        links["next"] = link(number + 1)
    if 1 < number <= total_pages + 1:
        links["prev"] = link(min(number - 1, total_pages))
    return page, meta, links
