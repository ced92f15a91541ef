"""Project-wide test setup. The reusable fixtures live in ``pipeline.testing`` (pytest11)."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from core_client.database import Database, SQLiteDatabase
from core_client.postgres import PostgresDatabase
from pipeline.testing import MemoryKeyring
from pipeline.testing.postgres import PostgresServer

DatabaseFactory = Callable[[str], Database]

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


# ---------------------------------------------------------------------- state backends
# Suites that must hold on both state backends take ``state_backend`` (parametrized:
# "sqlite", "postgresql") and open their databases with ``make_database``. The
# PostgreSQL cluster starts once per test process, only when a test asks for it.


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL cluster (pipeline/testing/postgres.py) for this process."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def state_backend(request: pytest.FixtureRequest) -> str:
    """The state backend a parametrized suite runs against."""
    return str(request.param)


@pytest.fixture
def state_location(state_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where this test's state lives: a SQLite file path, or the DSN of a fresh database."""
    if state_backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.create_database()
    return str(tmp_path / "state" / "instance.db")


@pytest.fixture
def state_table(state_backend: str, state_location: str) -> dict[str, str]:
    """The ``[state]`` table of a configuration on this test's state backend (the
    SQLite file in the ``state`` folder next to the configuration, or the database)."""
    if state_backend == "postgresql":
        return {"dir": "state", "backend": "postgresql", "dsn": state_location}
    return {"dir": "state"}


@pytest.fixture
def make_database(state_backend: str, state_location: str) -> Iterator[DatabaseFactory]:
    """``make_database(component)``: a :class:`~core_client.database.Database` on this
    test's state (every call the same data, as two processes or collectors would see it);
    all are closed after the test."""
    opened: list[Database] = []

    def make(component: str) -> Database:
        db: Database
        if state_backend == "postgresql":
            db = PostgresDatabase(state_location, component=component)
        else:
            db = SQLiteDatabase(Path(state_location))
        opened.append(db)
        return db

    yield make
    for db in opened:
        db.close()


@pytest.fixture
def state_config(state_backend: str, state_location: str, tmp_path: Path) -> Path:
    """A configuration file whose ``[state]`` is this test's state (what the CLI's
    commands open): the SQLite file ``<dir>/<instance>.db``, or the PostgreSQL DSN."""
    config = tmp_path / "c.toml"
    if state_backend == "postgresql":
        state = f'backend = "postgresql"\ndsn = "{state_location}"\ndir = "{tmp_path / "state"}"\n'
        instance = "test"
    else:  # the file is <dir>/<instance>.db
        location = Path(state_location)
        state, instance = f'dir = "{location.parent}"\n', location.stem
    config.write_text(f'[itglue]\ninstance = "{instance}"\n[state]\n{state}')
    return config


def everything_stored(db: Database) -> str:
    """Every row of every table of the state database, as text."""
    if db.dialect == "sqlite":
        tables = [r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type='table'")]
    else:
        tables = [
            r[0]
            for r in db.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ]
    return "\n".join(str(db.query(f'SELECT * FROM "{t}"')) for t in tables)  # noqa: S608
