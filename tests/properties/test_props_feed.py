"""Properties of the HTTP feed's JSON handling (``plugins.http_feed.values`` and
``pagination``), in-process: any JSON a feed may send, any dotted path a configuration
may hold. Extraction returns the value or ``MISSING``, timestamps are finite numbers or
None, and the next page is a page, None or a ``FeedProblem`` (the documented error).
"""

from __future__ import annotations

import json
import math
from typing import Any

import requests
from hypothesis import example, given
from hypothesis import strategies as st

from plugins.http_feed.options import CursorPagination, LinkHeaderPagination, NextLinkPagination
from plugins.http_feed.pagination import Page, next_page
from plugins.http_feed.transport import FeedProblem
from plugins.http_feed.values import MISSING, canonical_hash, lookup, parse_timestamp, type_name

# what json.loads can return: big integers, NaN and Infinity included
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**4000),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(
        ["NaN", "Infinity", "-inf", "1e999", "2026-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00"]
    ),
)
KEYS = st.one_of(st.text(max_size=6), st.sampled_from(["0", "-1", "a.b", "", "next", "cursor"]))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=20,
)
PATHS = st.one_of(
    st.text(max_size=12),
    st.lists(st.one_of(KEYS, st.integers(-5, 5).map(str)), max_size=5).map(".".join),
)


@given(JSON, PATHS)
def test_lookup_returns_a_value_or_missing(doc: Any, path: str) -> None:
    found = lookup(doc, path)
    assert found is MISSING or _is_inside(found, doc)
    assert isinstance(type_name(found), str)


def _is_inside(value: Any, doc: Any) -> bool:
    stack = [doc]
    while stack:
        cur = stack.pop()
        if cur is value:
            return True
        if isinstance(cur, dict):
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return False


@st.composite
def doc_and_path(draw: st.DrawFn) -> tuple[Any, str, Any]:
    """A document, the path of one of its values, and that value."""
    doc = draw(JSON)
    cur, parts = doc, []
    while isinstance(cur, dict | list) and cur and draw(st.booleans()):
        if isinstance(cur, dict):
            keys = [k for k in cur if k and "." not in k]  # "" and "a.b" have no path
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            parts.append(key)
            cur = cur[key]
        else:
            i = draw(st.integers(-len(cur), len(cur) - 1))
            parts.append(str(i))
            cur = cur[i]
    return doc, ".".join(parts), cur


@given(doc_and_path())
def test_lookup_finds_what_is_at_the_path(case: tuple[Any, str, Any]) -> None:
    doc, path, value = case
    assert lookup(doc, path) is value


def test_lookup_at_any_depth() -> None:
    doc: Any = "leaf"
    for _ in range(50_000):
        doc = {"a": [doc]}
    assert lookup(doc, ".".join(["a.0"] * 50_000)) == "leaf"
    assert lookup(doc, ".".join(["a.0"] * 50_001)) is MISSING


@given(JSON)
@example(10**400)  # int too large for a float: OverflowError
@example("NaN")
@example("1e999")
@example(float("nan"))
@example("0001-01-01T00:00:00+14:00")
@example("9999-12-31T23:59:59-14:00")
def test_timestamps_are_finite_numbers_or_none(value: Any) -> None:
    stamp = parse_timestamp(value)
    assert stamp is None or (isinstance(stamp, float) and math.isfinite(stamp))


@given(JSON)
def test_canonical_hash_is_stable_and_order_free(value: Any) -> None:
    digest = canonical_hash(value)
    assert len(digest) == 64
    if isinstance(value, dict):
        assert canonical_hash(dict(reversed(list(value.items())))) == digest


def response(link_header: str | None) -> requests.Response:
    resp = requests.Response()
    resp.url = "https://feed.example/items?page=1"
    resp.status_code = 200
    if link_header is not None:
        resp.headers["Link"] = link_header
    return resp


PAGINATIONS = st.one_of(
    st.builds(lambda p: NextLinkPagination(style="next_link", next_path=p), PATHS),
    st.builds(
        lambda p, m: CursorPagination(style="cursor", cursor_path=p, has_more_path=m),
        PATHS,
        st.one_of(st.none(), PATHS),
    ),
    st.just(LinkHeaderPagination(style="link_header")),
)
LINKS = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.builds(lambda u: f'<{u}>; rel="next"', st.text(max_size=20)),
    st.just('<http://[oops>; rel="next"'),
)


@given(
    PAGINATIONS, JSON, LINKS, st.lists(JSON, max_size=3), st.one_of(st.none(), st.text(max_size=8))
)
@example(
    NextLinkPagination(style="next_link", next_path="next"),
    {"next": "http://[oops"},
    None,
    [],
    None,
)
@example(LinkHeaderPagination(style="link_header"), {}, '<http://[oops>; rel="next"', [], None)
def test_next_page_is_a_page_none_or_a_feed_problem(
    pg: Any, doc: Any, link: str | None, items: list[Any], token: str | None
) -> None:
    page = Page("https://feed.example/items", {"page": 1}, token)
    try:
        nxt = next_page(pg, page, response(link), doc, items)
    except FeedProblem as e:
        assert e.reason and not e.transient
        return
    if nxt is not None:
        assert isinstance(nxt.url, str) and json.loads(nxt.key())
