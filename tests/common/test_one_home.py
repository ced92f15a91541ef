"""Each shared helper is defined once, in itglue_common; a copy elsewhere fails here.

The checks look for what a copy is made of, not only for its name: a comparison with
"localhost", ``.is_loopback``, the "no proxy" mapping, an HTTP-date parser, ``2 **``,
size units, the application name as a literal. Each check is shown to catch the copy it
replaced (``test_the_checks_catch_the_old_copies``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import itglue_common

ROOT = Path(__file__).resolve().parents[2]
TREES = ("core_client", "itglue_common", "pipeline", "plugins")

# where each ingredient may appear, relative to ROOT
HOME = {
    "loopback": {"itglue_common/net.py"},
    "proxy": {"itglue_common/net.py"},
    # the mail Date header is not a Retry-After
    "http-date": {"itglue_common/retry_after.py", "plugins/imap/parse.py"},
    "exponential": {"itglue_common/backoff.py"},
    "size-unit": {"itglue_common/sizes.py"},
    "app-name": {"itglue_common/__init__.py"},
}

# names a copy would likely be given; methods that delegate to the helper may keep theirs
HELPER_FUNCTIONS = {
    "is_loopback",
    "is_loopback_host",
    "proxies_for",
    "parse_retry_after",
    "backoff",
    "backoff_delay",
    "exponential_delay",
    "human_size",
}

SIZE_UNITS = {"KiB", "MiB", "GiB", "TiB", "KB", "MB", "GB"}
DATE_PARSERS = {"parsedate_to_datetime", "parsedate", "parsedate_tz"}


@dataclass(frozen=True)
class Finding:
    kind: str
    where: str
    line: int

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.kind}"


def _is_two(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in (2, 2.0) and node.value is not True


def ingredients(tree: ast.AST, where: str) -> Iterator[Finding]:
    """Everything in ``tree`` that belongs to one of the shared helpers."""
    module_functions = {
        id(n)
        for n in getattr(tree, "body", [])
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name.lstrip("_") in HELPER_FUNCTIONS and id(node) in module_functions:
                yield Finding(f"function {node.name}", where, line)
        elif isinstance(node, ast.Attribute) and node.attr == "is_loopback":
            yield Finding("loopback", where, line)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.strip()
            if text.rstrip(".").lower() == "localhost":
                yield Finding("loopback", where, line)
            elif text in SIZE_UNITS:
                yield Finding("size-unit", where, line)
            elif text == itglue_common.APP_NAME:
                yield Finding("app-name", where, line)
        elif isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            no_proxy = all(isinstance(v, ast.Constant) and v.value is None for v in node.values)
            if {"http", "https"} <= keys and no_proxy:
                yield Finding("proxy", where, line)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in DATE_PARSERS:
                yield Finding("http-date", where, line)
        elif isinstance(node, ast.BinOp) and _doubles(node):
            yield Finding("exponential", where, line)


def _doubles(node: ast.BinOp) -> bool:
    """``2 ** n`` or ``1 << n``: the heart of an exponential backoff."""
    if isinstance(node.op, ast.Pow):
        return _is_two(node.left)
    return (
        isinstance(node.op, ast.LShift)
        and isinstance(node.left, ast.Constant)
        and node.left.value == 1
        and not isinstance(node.right, ast.Constant)
    )


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            yield where, ast.parse(path.read_text(encoding="utf-8"), filename=where)


def test_no_copies_outside_itglue_common() -> None:
    stray = []
    for where, tree in _sources():
        for f in ingredients(tree, where):
            if f.kind.startswith("function "):
                if not where.startswith("itglue_common/"):
                    stray.append(f)
            elif where not in HOME[f.kind]:
                stray.append(f)
    assert not stray, "use the helper in itglue_common instead:\n" + "\n".join(map(str, stray))


def test_each_helper_is_defined_exactly_once() -> None:
    counts: dict[str, list[str]] = {}
    for where, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                counts.setdefault(node.name, []).append(where)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name) and t.id == "APP_NAME":
                        counts.setdefault("APP_NAME", []).append(where)
    for name in itglue_common.__all__:
        assert len(counts.get(name, [])) == 1, (name, counts.get(name))


def test_the_public_names_are_all_exported() -> None:
    defined = set()
    for where, tree in _sources():
        if where.startswith("itglue_common/"):
            defined |= {
                n.name
                for n in tree.body
                if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
            }
    assert defined <= set(itglue_common.__all__)


# -- the checks themselves: each catches the copy it replaced --------------------------

OLD_COPIES = {
    "function is_loopback": """
def is_loopback(host):
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
""",
    "loopback": """
def allowed(host):
    return host in ("localhost", "127.0.0.1") or ipaddress.ip_address(host).is_loopback
""",
    "proxy": """
def request_kwargs(url):
    return {"http": None, "https": None, "all": None} if local(url) else None
""",
    "http-date": """
def wait_for(value):
    if value.isdigit():
        return float(value)
    return (email.utils.parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
""",
    "exponential": """
class Poller:
    def delay(self, attempt):
        ceiling = min(self.cap, self.base * (2.0**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

def other(attempt):
    return min(60, 1 << attempt)
""",
    "size-unit": """
def fmt(n):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        pass
""",
    "app-name": """
SERVICE = "itglue-ingest"
""",
}


@pytest.mark.parametrize("kind", sorted(OLD_COPIES))
def test_the_checks_catch_the_old_copies(kind: str) -> None:
    found = {f.kind for f in ingredients(ast.parse(OLD_COPIES[kind]), "plugins/x.py")}
    assert kind in found
    assert all(where not in HOME.get(kind, set()) for where in ("plugins/x.py", "core_client/y.py"))


def test_harmless_lookalikes_are_not_copies() -> None:
    code = """
x = 2 * attempt  # not a power
y = base ** 2  # a square, not a backoff
MARKER = ".itglue-ingest-demo"
help_text = "bodies larger than this (default 64 MiB)"
ports = {"https": 443, "http": 80}
def _retry_after(e):
    return getattr(e, "retry_after", None)
"""
    assert list(ingredients(ast.parse(code), "pipeline/z.py")) == []
