"""Start test helpers in a child Python that imports ``tests.…`` the way the tests do."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def python_module(module: str, *args: str | os.PathLike[str]) -> list[str]:
    """The command line of ``python -m module args…`` with this interpreter."""
    return [sys.executable, "-m", module, *map(str, args)]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment plus ``extra``, with the repository root first on
    PYTHONPATH: ``tests`` is not installed, so a child finds it only there."""
    env = {**os.environ, **extra}
    inherited = os.environ.get("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), inherited) if p)
    return env
