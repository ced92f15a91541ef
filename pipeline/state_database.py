"""Opening the state database the configuration names: SQLite or PostgreSQL.

Every part of the shared state (ledger, step journal, checkpoints, metadata cache, rate
budget, heartbeats) opens its :class:`~core_client.database.Database` here, so one
``[state]`` table decides for all of them.
"""

from __future__ import annotations

import sqlite3
import sys

import keyring

from core_client.auth import read_private_file
from core_client.database import Database, SQLiteDatabase
from itglue_common import APP_NAME

from .errors import PermanentError
from .logs import register_secret
from .settings import Settings

KEYRING_USER = "state-postgresql"


def database_errors() -> tuple[type[Exception], ...]:
    """What a state database raises when it fails: sqlite3's errors, and psycopg's once
    psycopg is loaded (none of its errors can exist before)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error,) if psycopg is None else (sqlite3.Error, psycopg.Error)


def state_password(settings: Settings) -> str | None:
    """The PostgreSQL password: ``password_env``, ``password_file``, else the keyring
    entry ``itglue-ingest`` / ``state-postgresql``, else none (libpq may still use
    ``.pgpass``, peer or certificate authentication). Registered with the log redaction
    filter before it is handed out.

    :raises PermanentError: ``password_env`` names an unset variable.
    """
    state = settings.state
    value: str | None
    if state.password_env:
        import os

        value = os.environ.get(state.password_env)
        if not value:
            raise PermanentError(
                f"[state] password_env: the environment variable {state.password_env} is not set"
            )
    elif state.password_file:
        value = read_private_file(state.password_file, "[state] password_file").reveal().strip()
    else:
        try:
            value = keyring.get_password(APP_NAME, KEYRING_USER)
        except Exception:  # no usable keyring backend: no password, as libpq allows
            value = None
    if value:
        register_secret(value)
    return value or None


def open_state_database(settings: Settings, component: str) -> Database:
    """The state database for ``component`` (``"ledger"``, ``"cache"``, ...): the
    instance's SQLite file, or the configured PostgreSQL database (writers of one
    component are serialised across collectors; see :mod:`core_client.postgres`)."""
    if settings.state.backend == "postgresql":
        from core_client.postgres import PostgresDatabase  # psycopg: only when used

        assert settings.state.dsn is not None  # the settings' validator requires it
        return PostgresDatabase(
            settings.state.dsn, component=component, password=state_password(settings)
        )
    return SQLiteDatabase(settings.database_path)


def open_cache_database(settings: Settings, instance: str | None = None) -> Database:
    """The metadata cache database of ``instance`` (default: the command's
    ``--instance``, else the default instance): on SQLite ``<state.dir>/<name>.db`` (the
    default instance's is the ledger's file), on PostgreSQL the configured database, the
    default instance's cache beside the ledger and every other instance's in a schema of
    its own, ``cache_<name>`` (the cache's tables have the same names in every instance)."""
    name = instance or settings.selected_instance
    if settings.state.backend != "postgresql":
        return SQLiteDatabase(settings.state.dir / f"{name}.db")
    if name == settings.itglue.default_name:
        return open_state_database(settings, "cache")
    from core_client.postgres import PostgresDatabase

    assert settings.state.dsn is not None  # the settings' validator requires it
    schema = f"cache_{name}"
    db = PostgresDatabase(
        in_schema(settings.state.dsn, schema),
        component=f"cache:{name}",
        password=state_password(settings),
    )
    try:
        with db.transaction() as conn:  # one creator at a time: the component's lock
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except BaseException:
        db.close()
        raise
    return db


def in_schema(dsn: str, schema: str) -> str:
    """``dsn`` with ``schema`` as the connections' search path (added to its options)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    options = conninfo_to_dict(dsn).get("options") or ""
    return make_conninfo(dsn, options=f'{options} -csearch_path="{schema}"'.strip())


def state_exists(settings: Settings) -> bool:
    """Whether there is state to read (a PostgreSQL database is taken to exist: opening
    it says otherwise)."""
    return settings.state.backend == "postgresql" or settings.database_path.exists()


def describe_state(settings: Settings) -> str:
    """Where the state lives, for humans: the SQLite file, or the DSN without password."""
    if settings.state.backend == "postgresql":
        from core_client.postgres import safe_dsn

        assert settings.state.dsn is not None
        return safe_dsn(settings.state.dsn)
    return str(settings.database_path)


def heartbeat_name(settings: Settings) -> str:
    """Whose heartbeat a daemon writes and ``status`` reads first: the collector's name
    in a shared (PostgreSQL) state; '' in a SQLite state, which is one collector's."""
    return settings.state.collector if settings.state.backend == "postgresql" else ""
