"""``python -m pipeline`` is the same command line as the ``itglue-ingest`` script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,  # not the checkout: the installed package must be the one found
    )


def test_python_m_pipeline_runs_the_cli(tmp_path: Path) -> None:
    version = _run("--version", cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert "0.1.0" in version.stdout
    helped = _run("--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    for command in ("run", "once", "status", "retry", "demo", "auth", "emulator"):
        assert f"  {command} " in helped.stdout, command


def test_python_m_pipeline_reports_usage_errors_like_the_script(tmp_path: Path) -> None:
    missing = _run("status", "-c", str(tmp_path / "nowhere.toml"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "nowhere.toml" in missing.stderr
