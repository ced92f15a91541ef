"""``[state] backend``: the settings, the password's sources, opening either backend."""

from __future__ import annotations

import os
from pathlib import Path

import keyring
import pytest

from core_client.database import SQLiteDatabase
from core_client.postgres import PostgresDatabase
from pipeline.errors import PermanentError
from pipeline.settings import ConfigError, parse_settings
from pipeline.state_database import KEYRING_USER, open_state_database, state_password
from pipeline.testing.postgres import PostgresServer


def settings(tmp_path: Path, **state: object):  # type: ignore[no-untyped-def]
    return parse_settings({"state": {"dir": str(tmp_path / "state"), **state}}, "t.toml", tmp_path)


def test_sqlite_is_the_default(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.state.backend == "sqlite" and s.state.collector
    db = open_state_database(s, "ledger")
    try:
        assert isinstance(db, SQLiteDatabase) and db.path == s.database_path
    finally:
        db.close()


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"backend": "postgresql"}, "needs dsn"),
        ({"backend": "postgresql", "dsn": "postgresql://u:pw@db/x"}, "must not hold the password"),
        ({"backend": "postgresql", "dsn": "host=db password=pw"}, "must not hold the password"),
        ({"backend": "postgresql", "dsn": "host=db ="}, "not a valid libpq"),
        ({"password_env": "A", "password_file": "f"}, "either password_env or password_file"),
        ({"collector": "two words"}, "collector"),
    ],
)
def test_bad_state_tables_are_refused_clearly(
    tmp_path: Path, state: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        settings(tmp_path, **state)
    assert "pw" not in str(caught.value).replace("password", "")


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = {"backend": "postgresql", "dsn": "host=db dbname=itglue user=ingest"}
    assert state_password(settings(tmp_path, **dsn)) is None  # libpq may use .pgpass
    keyring.set_password("itglue-ingest", KEYRING_USER, "from-keyring")
    assert state_password(settings(tmp_path, **dsn)) == "from-keyring"
    monkeypatch.setenv("PG_PW", "from-env")
    assert state_password(settings(tmp_path, **dsn, password_env="PG_PW")) == "from-env"
    with pytest.raises(PermanentError, match="PG_UNSET is not set"):
        state_password(settings(tmp_path, **dsn, password_env="PG_UNSET"))
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    os.chmod(secret, 0o644)
    with pytest.raises(Exception, match="readable by its group or others"):
        state_password(settings(tmp_path, **dsn, password_file=str(secret)))
    os.chmod(secret, 0o600)
    assert state_password(settings(tmp_path, **dsn, password_file="pw")) == "from-file"


def test_postgresql_backend_opens_the_configured_database(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    dsn = postgres_server.create_database()
    s = settings(tmp_path, backend="postgresql", dsn=dsn, collector="site-a")
    db = open_state_database(s, "ledger")
    try:
        assert isinstance(db, PostgresDatabase)
        assert db.query("SELECT current_database()") == [(dsn.rsplit("=", 1)[1],)]
    finally:
        db.close()


def test_postgresql_backend_keeps_the_rate_budget_in_the_database(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two collectors (own state dirs) built from ``[state] backend = "postgresql"`` draw
    from one budget: the row of their instance, not a file of each machine."""
    from pipeline.clients import build_client

    monkeypatch.setenv("TEST_ITGLUE_KEY", "ITG.state-settings-test-key")
    dsn = postgres_server.create_database()
    clients = []
    for site in ("site-a", "site-b"):
        s = parse_settings(
            {
                "itglue": {"api_key_env": "TEST_ITGLUE_KEY", "rate_limit": 10},
                "state": {"dir": str(tmp_path / site), "backend": "postgresql", "dsn": dsn},
            },
            "t.toml",
            tmp_path,
        )
        clients.append(build_client(s))
    try:
        a, b = (c.rate_limiter for c in clients)
        a.acquire()
        assert b.get_stats()["requests_in_window"] == 1
        assert "dbname=" in str(b.get_stats()["shared_state"])
        assert not list(tmp_path.glob("site-*/*.ratelimit"))
    finally:
        for c in clients:
            c.close()
