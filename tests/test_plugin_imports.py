"""The plugin API is what ``pipeline/__init__.py`` exports, and nothing more.

Walks the imports (ast, so ``if TYPE_CHECKING:`` blocks count too) of every module under
``plugins/`` and of ``pipeline/``: a built-in plugin imports from ``pipeline`` only the
names ``pipeline.__all__`` lists (``from pipeline import X``), ``core_client`` only in the
sink and the router, and besides that only the stdlib, third-party libraries, its own
package ``plugins`` and the shared helpers ``itglue_common``. The engine never imports
the CLI layer: only ``pipeline/cli.py`` and ``pipeline/commands/`` import
``pipeline.commands``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pipeline

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = {p.parent.name for p in ROOT.glob("*/__init__.py")}
PUBLIC = set(pipeline.__all__)
# the modules that talk to IT Glue through the client (DESIGN: "and core_client for the sink")
CLIENT_USERS = {"plugins.itglue_sink", "plugins.routing"}
CLI_LAYER = ("pipeline.cli", "pipeline.commands")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(module: str, source: str, is_package: bool = False) -> list[tuple[int, str, str]]:
    """(line, imported module, name or "") of every import, relative ones made absolute."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    out: list[tuple[int, str, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            out += [(node.lineno, target, alias.name) for alias in node.names]
    return out


def plugin_violations(module: str, source: str, is_package: bool = False) -> list[str]:
    bad: list[str] = []
    for line, target, name in imports(module, source, is_package):
        top = target.split(".")[0]
        where = f"{module}:{line}"
        if top == "pipeline":
            if target != "pipeline" or not name:
                bad.append(f"{where}: imports {target} (only `from pipeline import X`)")
            elif name not in PUBLIC:
                bad.append(f"{where}: pipeline.{name} is not public API (pipeline.__all__)")
        elif top == "core_client":
            if module.rsplit(".", 1)[0] not in CLIENT_USERS and module not in CLIENT_USERS:
                bad.append(f"{where}: imports {target} (only the sink and the router may)")
        elif top in FIRST_PARTY and top not in ("plugins", "itglue_common"):
            bad.append(f"{where}: imports {target}, which is not for plugins")
    return bad


def cli_violations(module: str, source: str, is_package: bool = False) -> list[str]:
    if module.startswith(CLI_LAYER):
        return []
    return [
        f"{module}:{line}: imports the CLI layer ({target}{'.' + name if name else ''})"
        for line, target, name in imports(module, source, is_package)
        if target.startswith("pipeline.commands") or (target == "pipeline" and name == "commands")
    ]


def files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_the_walk_finds_the_modules() -> None:
    names = {module_name(p) for p in files("plugins")}
    assert {"plugins.routing", "plugins.itglue_sink", "plugins.filesystem.source"} <= names
    assert {"pipeline", "plugins", "core_client", "itglue_common"} <= FIRST_PARTY


@pytest.mark.parametrize("path", files("plugins"), ids=lambda p: module_name(p))
def test_a_built_in_plugin_uses_only_the_public_api(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    bad = plugin_violations(module_name(path), source, path.name == "__init__.py")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", files("pipeline"), ids=lambda p: module_name(p))
def test_only_the_cli_imports_the_commands(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    bad = cli_violations(module_name(path), source, path.name == "__init__.py")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("plugins.title", "from pipeline.settings import Settings", "only `from pipeline import"),
        ("plugins.title", "import pipeline.runner", "only `from pipeline import"),
        ("plugins.title", "from pipeline import HookFacade", "not public API"),
        ("plugins.title", "from pipeline import commands", "not public API"),
        ("plugins.mime", "from core_client.client import ITGlueClient", "sink and the router"),
        ("plugins.imap.source", "from itglue_emulator import run_emulator", "not for plugins"),
        ("plugins.imap.source", "if True:\n    from ...pipeline.hooks import x", "only `from"),
    ],
)
def test_the_plugin_rule_catches(module: str, source: str, expected: str) -> None:
    bad = plugin_violations(module, source)
    assert len(bad) == 1 and expected in bad[0], bad


@pytest.mark.parametrize(
    ("module", "source", "is_package", "allowed"),
    [
        ("plugins.title", "from pipeline import Transform, hookimpl", False, True),
        ("plugins.routing", "from core_client import exceptions as itg", False, True),
        ("plugins.imap.source", "from .options import ImapOptions", False, True),
        ("plugins.imap", "from .source import ImapSource", True, True),
        ("plugins.imap.source", "import itglue_common, json, pydantic", False, True),
    ],
)
def test_the_plugin_rule_allows(module: str, source: str, is_package: bool, allowed: bool) -> None:
    assert (not plugin_violations(module, source, is_package)) is allowed


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("pipeline.runner.engine", "from ..commands.common import build_client"),
        ("pipeline.context", "from pipeline.commands import common"),
        ("pipeline.runner", "from ..commands import engine"),
        ("pipeline", "from . import commands"),
    ],
)
def test_the_cli_rule_catches(module: str, source: str) -> None:
    """(The engine's old ``from .commands.common import build_client`` is the first case.)"""
    is_package = module in ("pipeline", "pipeline.runner")
    assert cli_violations(module, source, is_package)
    assert not cli_violations("pipeline.commands.engine", "from .common import load_config")
    assert not cli_violations("pipeline.cli", "from .commands import engine")
