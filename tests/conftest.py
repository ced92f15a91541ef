"""Project-wide test setup. The reusable fixtures live in ``pipeline.testing`` (pytest11)."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from pipeline.testing import MemoryKeyring

# Property tests (tests/properties): the "ci" profile is the default, a fixed example
# budget with derandomize so every run tries the same inputs (reproducible, bounded: about
# a minute in all); HYPOTHESIS_PROFILE=release searches far wider and remembers what it
# found in .hypothesis/ (README "Before a release"). No deadline: the machine is shared,
# and a slow example is not a failing one.
settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "release",
    max_examples=3000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _hermetic_environment(
    memory_keyring: MemoryKeyring,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """Every test gets an in-memory keyring and private XDG folders; nothing writes to ~."""
    home = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(Path(home) / var.lower()))
    monkeypatch.delenv("ITGLUE_API_KEY", raising=False)
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Captured output travels from an xdist worker to the controller as UTF-8: a log line
    quoting an undecodable file name (a lone surrogate, as the hostile-name tests make)
    would crash the worker. Our own log formatters escape those; pytest's capture does not.
    """
    report = yield
    report.sections = [
        (title, text.encode("utf-8", "backslashreplace").decode("utf-8"))
        for title, text in report.sections
    ]
    return report
