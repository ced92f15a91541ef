"""The plugin contract stays documented and tested.

Fails when a hook in ``pipeline/hookspecs.py`` lacks a docstring or type annotations,
is missing from ``docs/plugins.md`` (or documented with other arguments, or without an
example), has no test in ``tests/test_hooks.py``, or when the docs name a hook that no
longer exists; also when a built-in plugin or a pytest fixture for plugin authors is
not documented.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import pipeline.testing
from pipeline import hookspecs
from pipeline.plugins import DEFAULT_PLUGINS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "plugins.md"
HOOK_TESTS = ROOT / "tests" / "test_hooks.py"


def hooks() -> dict[str, object]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if name.startswith("ingest_") and callable(fn) and hasattr(fn, marker)
    }


HOOKS = sorted(hooks())


def doc_sections() -> dict[str, tuple[list[str], str]]:
    """``### `ingest_x(a, b)``` headings of the docs: hook -> (argument names, section)."""
    text = DOCS.read_text(encoding="utf-8")
    parts = re.split(r"^### ", text, flags=re.MULTILINE)
    out: dict[str, tuple[list[str], str]] = {}
    for part in parts[1:]:
        heading, _, body = part.partition("\n")
        m = re.fullmatch(r"`(ingest_\w+)\(([^)]*)\)`\s*", heading)
        if m:
            body = re.split(r"^## ", body, flags=re.MULTILINE)[0]
            args = [a.strip() for a in m.group(2).split(",") if a.strip()]
            out[m.group(1)] = (args, body)
    return out


def test_the_hookspecs_define_hooks() -> None:
    assert len(HOOKS) >= 9, HOOKS  # guards the discovery above against silently finding none


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_docstring_and_type_annotations(name: str) -> None:
    fn = hooks()[name]
    assert inspect.getdoc(fn), f"{name} has no docstring"
    assert ":return:" in (inspect.getdoc(fn) or ""), (
        f"{name}'s docstring does not say what it returns"
    )
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    for param in sig.parameters.values():
        assert param.annotation is not inspect.Parameter.empty, f"{name}({param.name}) untyped"
    assert sig.return_annotation is not inspect.Signature.empty, f"{name} has no return type"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_with_its_arguments_and_an_example(name: str) -> None:
    sections = doc_sections()
    assert name in sections, f"docs/plugins.md has no '### `{name}(...)`' section"
    args, body = sections[name]
    spec_args = list(inspect.signature(hooks()[name]).parameters)  # type: ignore[arg-type]
    assert args == spec_args, f"docs/plugins.md documents {name}({', '.join(args)})"
    assert "**When:**" in body and "Returns:**" in body, f"{name}: say when and what it returns"
    example = re.search(r"```python\n(.*?)```", body, flags=re.DOTALL)
    assert example and f"def {name}(" in example.group(1), f"{name}: no example implementation"
    ast.parse(example.group(1))  # the example is valid Python


def test_docs_name_no_hook_that_does_not_exist() -> None:
    text = DOCS.read_text(encoding="utf-8")
    stale = set(re.findall(r"\bingest_\w+(?=\()", text)) - set(HOOKS)
    assert not stale, f"docs/plugins.md mentions unknown hooks: {sorted(stale)}"


def test_hook_tests_exist_for_every_hook() -> None:
    """Each hook is implemented by a plugin in tests/test_hooks.py and named (in the test's
    name or docstring) by a test there that runs it through the engine or the CLI."""
    source = HOOK_TESTS.read_text(encoding="utf-8")
    tree = ast.parse(source)
    tests = [
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    ]
    for name in HOOKS:
        # a plugin in the file, or a plugin module the test writes out (entry points)
        assert f"def {name}(" in source, f"tests/test_hooks.py has no plugin implementing {name}"
        short = name.removeprefix("ingest_")
        covering = [
            t.name for t in tests if short in t.name or name in (ast.get_docstring(t) or "")
        ]
        assert covering, f"no test in tests/test_hooks.py is about {name}"


def test_builtin_plugins_are_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for module in DEFAULT_PLUGINS:
        assert f"| `{module}` |" in text, f"docs/plugins.md: built-in {module} not in the table"


def test_pytest_fixtures_are_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    fixtures = [
        name
        for name, obj in vars(pipeline.testing).items()
        if type(obj).__name__ == "FixtureFunctionDefinition"
        or hasattr(obj, "_pytestfixturefunction")
    ]
    assert fixtures, "no fixtures found in pipeline.testing"
    for name in fixtures:
        assert re.search(rf"^`{name}`$", text, flags=re.MULTILINE), (
            f"docs/plugins.md does not document the fixture {name}"
        )
