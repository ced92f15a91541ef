"""The state database interface on both backends: migrations, transactions, placeholders."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from core_client.database import Database, SQLiteDatabase
from core_client.postgres import OperationalError, PostgresDatabase, safe_dsn
from tests.conftest import DatabaseFactory

COUNTER = {
    "sqlite": ["CREATE TABLE counter (name TEXT PRIMARY KEY, n INTEGER NOT NULL)"],
    "postgresql": ["CREATE TABLE counter (name TEXT PRIMARY KEY, n BIGINT NOT NULL)"],
}
ITEMS = {
    "sqlite": ["CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT UNIQUE)"],
    "postgresql": ["CREATE TABLE items (id BIGSERIAL PRIMARY KEY, v TEXT UNIQUE)"],
}


def test_migrations_apply_once_and_in_order(make_database: DatabaseFactory) -> None:
    db = make_database("test")
    steps = {
        dialect: [*scripts, "INSERT INTO counter (name, n) VALUES ('migrated', 1)"]
        for dialect, scripts in COUNTER.items()
    }
    db.migrate("counter", steps)
    db.migrate("counter", steps)  # again: nothing to do
    make_database("test").migrate("counter", steps)  # another process: nothing either
    assert db.query("SELECT name, n FROM counter") == [("migrated", 1)]
    assert db.query("SELECT version FROM schema_version WHERE component='counter'") == [(2,)]


def test_concurrent_openers_migrate_exactly_once(make_database: DatabaseFactory) -> None:
    steps = {
        d: [*s, "INSERT INTO counter (name, n) VALUES ('once', 1)"] for d, s in COUNTER.items()
    }
    dbs = [make_database("test") for _ in range(4)]
    errors: list[BaseException] = []

    def run(db: Database) -> None:
        try:
            db.migrate("counter", steps)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert dbs[0].query("SELECT count(*) FROM counter") == [(1,)]


def test_writers_are_serialised_across_connections(make_database: DatabaseFactory) -> None:
    """Read-then-write inside a transaction never loses an update, whoever else writes:
    what the ledger's "is this content delivered? then claim it" relies on."""
    make_database("test").migrate("counter", COUNTER)
    writers = [make_database("test") for _ in range(3)]
    with writers[0].transaction() as c:
        c.execute("INSERT INTO counter (name, n) VALUES ('hits', 0)")

    def bump(db: Database) -> None:
        for _ in range(40):
            with db.transaction() as c:
                (n,) = c.execute("SELECT n FROM counter WHERE name=?", ("hits",)).fetchone()
                c.execute("UPDATE counter SET n=? WHERE name=?", (n + 1, "hits"))

    threads = [threading.Thread(target=bump, args=(db,)) for db in writers for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writers[0].query("SELECT n FROM counter") == [(240,)]


def test_a_failed_transaction_leaves_nothing(make_database: DatabaseFactory) -> None:
    db = make_database("test")
    db.migrate("items", ITEMS)
    with pytest.raises(RuntimeError), db.transaction() as c:
        c.execute("INSERT INTO items (v) VALUES (?)", ("lost",))
        raise RuntimeError("boom")
    assert db.query("SELECT count(*) FROM items") == [(0,)]
    with db.transaction() as c:  # the database is usable afterwards
        c.execute("INSERT INTO items (v) VALUES (?)", ("kept",))
    assert db.query("SELECT v FROM items") == [("kept",)]


def test_a_failed_commit_is_rolled_back_and_frees_the_writer(
    make_database: DatabaseFactory, state_backend: str
) -> None:
    """A COMMIT that fails (here a deferred foreign key) raises its own error, leaves
    nothing, and leaves the database usable by this thread and by others."""
    key = "INTEGER" if state_backend == "sqlite" else "BIGINT"
    db = make_database("test")
    db.migrate(
        "links",
        [
            f"CREATE TABLE targets (id {key} PRIMARY KEY)",
            f"CREATE TABLE links (target {key} REFERENCES targets (id)"
            " DEFERRABLE INITIALLY DEFERRED)",
        ],
    )
    with pytest.raises(Exception, match=r"(?i)foreign key"), db.transaction() as c:
        c.execute("INSERT INTO links (target) VALUES (?)", (1,))  # fails at COMMIT only
    assert db.query("SELECT count(*) FROM links") == [(0,)]
    done = threading.Event()

    def write() -> None:
        with db.transaction() as c:
            c.execute("INSERT INTO targets (id) VALUES (?)", (1,))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(timeout=30)
    assert done.is_set()  # another thread could write: nothing was left held
    with db.transaction() as c:
        c.execute("INSERT INTO links (target) VALUES (?)", (1,))
    assert db.query("SELECT target FROM links") == [(1,)]


def test_a_begin_that_fails_frees_the_writer(tmp_path: Path) -> None:
    """A SQLite ``BEGIN IMMEDIATE`` that times out (another process writes) raises, and
    the connection is free for the next transaction of any thread."""
    blocker = SQLiteDatabase(tmp_path / "s.db")
    db = SQLiteDatabase(tmp_path / "s.db", timeout=0.1)
    try:
        db.migrate("items", ITEMS["sqlite"])
        with (
            blocker.transaction(),
            pytest.raises(sqlite3.OperationalError, match="locked"),
            db.transaction(),
        ):
            pass
        done = threading.Event()

        def write() -> None:
            with db.transaction() as c:
                c.execute("INSERT INTO items (v) VALUES (?)", ("after",))
            done.set()

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=30)
        assert done.is_set()
        assert db.query("SELECT v FROM items") == [("after",)]
    finally:
        blocker.close()
        db.close()


def test_nested_transactions_join_the_outer_one(make_database: DatabaseFactory) -> None:
    db = make_database("test")
    db.migrate("items", ITEMS)
    with pytest.raises(RuntimeError), db.transaction() as outer:
        outer.execute("INSERT INTO items (v) VALUES (?)", ("outer",))
        with db.transaction() as inner:
            inner.execute("INSERT INTO items (v) VALUES (?)", ("inner",))
        # a read inside the transaction sees its own uncommitted writes
        assert db.query("SELECT count(*) FROM items") == [(2,)]
        raise RuntimeError("roll both back")
    assert db.query("SELECT count(*) FROM items") == [(0,)]


def test_portable_sql(make_database: DatabaseFactory) -> None:
    """The subset the callers write once: ``?``, ON CONFLICT, RETURNING, a literal
    ``%``, IS NOT DISTINCT FROM, executemany."""
    db = make_database("test")
    db.migrate("items", ITEMS)
    with db.transaction() as c:
        first = c.execute(
            "INSERT INTO items (v) VALUES (?) ON CONFLICT (v) DO NOTHING RETURNING id", ("50%",)
        ).fetchone()
        again = c.execute(
            "INSERT INTO items (v) VALUES (?) ON CONFLICT (v) DO NOTHING RETURNING id", ("50%",)
        ).fetchone()
        c.executemany("INSERT INTO items (v) VALUES (?)", [("a",), ("b",)])
    assert first is not None and again is None
    assert db.query("SELECT v FROM items WHERE v LIKE '%\\%' ESCAPE '\\'") == [("50%",)]
    assert db.query("SELECT v FROM items WHERE v LIKE ? || '%' ORDER BY v", ("5",)) == [("50%",)]
    assert db.query("SELECT count(*) FROM items WHERE v IS NOT DISTINCT FROM ?", ("a",)) == [(1,)]
    cur_rows = db.query("SELECT v FROM items WHERE id IN (?, ?) ORDER BY id", (first[0], 999))
    assert cur_rows == [("50%",)]


def test_the_password_never_shows(postgres_server: object) -> None:
    dsn = "host=/nonexistent-socket-dir port=5432 user=ingest password=hunter2 dbname=state"
    assert "hunter2" not in safe_dsn(dsn)
    with pytest.raises(OperationalError) as caught:
        PostgresDatabase(dsn, component="ledger", password="hunter3", connect_timeout=0.5)
    text = str(caught.value) + repr(caught.value)
    assert "unreachable" in text
    assert "hunter2" not in text and "hunter3" not in text
