"""Feed pages as JSON, safe at any nesting depth.

Python's JSON decoder and encoder (and every recursive walk) raise ``RecursionError``
somewhere below 1000 levels, counted from however deep the calling thread already is, so
one hostile item nested a thousand times would fail the whole page on every poll. Values
nested deeper than :data:`MAX_DEPTH` are cut out of the text before decoding and stand
as :data:`TOO_DEEP`; the item holding one then fails alone (``contains_too_deep``).
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, Final

MAX_DEPTH: Final = 100  # far beyond real feeds, far below any recursion limit

# a JSON string (escapes included) or a run of brackets of one direction
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{]+|[\]}]+', re.DOTALL)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


class TooDeep:
    """Stands for a value nested deeper than :data:`MAX_DEPTH` (never a real value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<nested deeper than {MAX_DEPTH} levels>"

    __str__ = __repr__


TOO_DEEP: Final = TooDeep()


def parse_page(body: bytes) -> tuple[Any, bool]:
    """The JSON document in ``body`` and whether values were cut for their depth.

    Raises ``ValueError`` for what is not JSON (including nesting that is both too deep
    and unbalanced, which the decoder could not survive)."""
    text = body.decode(json.detect_encoding(body), "surrogatepass")
    spans = _deep_spans(text) if _deeper_than(text, MAX_DEPTH) else []
    if not spans:
        try:
            return json.loads(text), False
        except RecursionError:  # unbalanced brackets, too deep to find the error
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    marker = f"\x00too-deep-{secrets.token_hex(8)}"  # no feed can guess it
    placeholder = json.dumps(marker)
    pieces: list[str] = []
    last = 0
    for start, end in spans:
        pieces += [text[last:start], placeholder]
        last = end
    pieces.append(text[last:])
    doc = json.loads("".join(pieces))
    return _swap_markers(doc, marker), True


def contains_too_deep(value: Any) -> bool:
    """Whether :data:`TOO_DEEP` is anywhere in ``value`` (iterative: no recursion)."""
    stack = [value]
    while stack:
        cur = stack.pop()
        if cur is TOO_DEEP:
            return True
        if isinstance(cur, dict):
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return False


def _deeper_than(text: str, limit: int) -> bool:
    """Cheap test at C speed: strip strings and everything but brackets, then remove
    innermost ``[]``/``{}`` pairs once per level; anything left after ``limit`` rounds
    is deeper (or unbalanced: the span scan and the decoder sort that out)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    skeleton = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(limit):
        reduced = _INNERMOST.sub("", skeleton)
        if not reduced:
            return False
        if reduced == skeleton:  # mismatched brackets: not JSON
            return True
        skeleton = reduced
    return True


def _deep_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of each outermost value that opens at level
    ``MAX_DEPTH + 1``; none when the brackets do not balance (then it is not JSON)."""
    spans: list[tuple[int, int]] = []
    depth = 0
    start = -1
    for m in _TOKEN.finditer(text):
        run = m.group()
        if run[0] == '"':
            continue
        n = len(run)
        if run[0] in "[{":
            if depth <= MAX_DEPTH < depth + n:
                start = m.start() + (MAX_DEPTH - depth)
            depth += n
        else:
            if depth - n < 0:
                return []
            if depth > MAX_DEPTH >= depth - n:
                spans.append((start, m.start() + (depth - MAX_DEPTH)))
            depth -= n
    return spans if depth == 0 else []


def _swap_markers(doc: Any, marker: str) -> Any:
    """``doc`` with every ``marker`` string replaced by :data:`TOO_DEEP` (iterative)."""
    if doc == marker:
        return TOO_DEEP
    stack = [doc]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for key, value in cur.items():
                if value == marker:
                    cur[key] = TOO_DEEP
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(cur, list):
            for i, value in enumerate(cur):
                if value == marker:
                    cur[i] = TOO_DEEP
                elif isinstance(value, dict | list):
                    stack.append(value)
    return doc
