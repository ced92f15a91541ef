"""Feed pages as JSON, safe at any nesting depth.

Python's JSON decoder and encoder (and every recursive walk) raise ``RecursionError``
somewhere below 1000 levels, counted from however deep the calling thread already is, so
one hostile item nested a thousand times would fail the whole page on every poll. Values
nested deeper than :data:`MAX_DEPTH` become :data:`TOO_DEEP` (cut from the decoded tree,
or from the text when the decoder itself gave up); the item holding one then fails
alone (``contains_too_deep``).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from typing import Any, Final

MAX_DEPTH: Final = 100  # far beyond real feeds, far below any recursion limit

# a JSON string (escapes included) or a run of brackets of one direction
_NOT_BRACKETS_OR_QUOTES = bytes(sorted(set(range(256)) - set(b'[]{}"')))
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*+"|[\[{]+|[\]}]+', re.DOTALL)


class TooDeep:
    """Stands for a value nested deeper than :data:`MAX_DEPTH` (never a real value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<nested deeper than {MAX_DEPTH} levels>"

    __str__ = __repr__


TOO_DEEP: Final = TooDeep()


def parse_page(body: bytes) -> tuple[Any, bool]:
    """The JSON document in ``body`` and whether values were cut for their depth.

    Raises ``ValueError`` for what is not JSON (including brackets that do not balance
    and are too deep for the decoder to find where)."""
    encoding = json.detect_encoding(body)
    text = body.decode(encoding, "surrogatepass")
    try:
        doc = json.loads(text)
    except RecursionError:
        return _loads_cut(text), True
    utf8 = body if encoding == "utf-8" else text.encode("utf-8", "surrogatepass")
    if not _deeper_than_limit(utf8):
        return doc, False
    return _cut_deep(doc)


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


def _deeper_than_limit(data: bytes) -> bool:
    """Whether the brackets of valid JSON ``data`` nest deeper than :data:`MAX_DEPTH`, at
    C speed: drop escaped quotes, keep what is outside strings, keep only the brackets,
    then take away the innermost pairs once per level."""
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return False
    data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    quoted = data.translate(None, _NOT_BRACKETS_OR_QUOTES)  # smaller before the split
    skeleton = b"".join(quoted.split(b'"')[::2])
    for _ in range(MAX_DEPTH):
        reduced = skeleton.replace(b"[]", b"").replace(b"{}", b"")
        if not reduced:
            return False
        if len(reduced) == len(skeleton):  # cannot happen for valid JSON; be safe
            return True
        skeleton = reduced
    return True


def _cut_deep(doc: Any) -> tuple[Any, bool]:
    """``doc`` with every array or object at level ``MAX_DEPTH + 1`` replaced by
    :data:`TOO_DEEP` (the root is level 1); iterative, so any depth is safe."""
    if not isinstance(doc, dict | list):
        return doc, False
    cut = False
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(doc, 1)]
    while stack:
        node, level = stack.pop()
        keys: Iterable[Any] = node.keys() if isinstance(node, dict) else range(len(node))
        for key in keys:
            value = node[key]
            if isinstance(value, dict | list):
                if level >= MAX_DEPTH:
                    node[key] = TOO_DEEP
                    cut = True
                else:
                    stack.append((value, level + 1))
    return doc, cut


def _loads_cut(text: str) -> Any:
    """What the decoder could not survive: the values that open at level ``MAX_DEPTH +
    1`` are cut out of the text (a random marker string in their place, then
    :data:`TOO_DEEP`) before decoding."""
    spans = _deep_spans(text)
    if not spans:  # unbalanced: not JSON, too deep to say where
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels, brackets unbalanced")
    marker = f"\x00too-deep-{secrets.token_hex(8)}"  # no feed can guess it
    placeholder = json.dumps(marker)
    pieces: list[str] = []
    last = 0
    for start, end in spans:
        pieces += [text[last:start], placeholder]
        last = end
    pieces.append(text[last:])
    try:
        doc = json.loads("".join(pieces))
    except RecursionError:  # mismatched bracket kinds can fool the count; not JSON anyway
        raise ValueError("not JSON") from None
    return _swap_markers(doc, marker)


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
