"""The dependency rule between the top-level packages (README, "Where things live").

``itglue_common`` is a leaf: the client, the pipeline and plugins import it, it imports
none of them. ``itglue_emulator`` shares no code with the client side, so a bug in a
shared helper cannot hide itself by being on both ends of a test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "itglue_common": {"core_client", "pipeline", "plugins", "itglue_emulator"},
    "itglue_emulator": {"core_client", "pipeline", "plugins", "itglue_common"},
}


def imported_packages(tree: ast.AST) -> set[str]:
    """Top-level packages named by import statements and ``importlib.import_module``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_it_must_not(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    bad = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in sorted(imported_packages(tree) & FORBIDDEN[package]):
            bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_check_sees_every_kind_of_import() -> None:
    code = """
import core_client.transport
from pipeline import Source
import importlib
importlib.import_module("plugins.http_feed")
from . import sibling
"""
    assert imported_packages(ast.parse(code)) == {
        "core_client",
        "pipeline",
        "importlib",
        "plugins",
    }
