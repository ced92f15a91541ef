"""Fixtures of the IMAP tests: one private Dovecot per session, one user per test.

A fresh user is a fresh, empty mailbox, so tests never see each other's mail and no
folder has to be reset. ``mailbox`` APPENDs real messages over IMAPS and reads flags and
folders back; ``make_engine`` builds the real :class:`pipeline.runner.Engine` with the
IMAP source pointing at that user and the recording sink (or the IT Glue sink).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import parse_settings
from tests.imap.dovecot import Dovecot
from tests.imap.imap_helpers import BUILTINS_BUT_IMAP, RecordingPlugin, deliveries, imap_client

PASSWORD_ENV = "IMAP_TEST_PASSWORD"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if not shutil.which("dovecot") and not Path("/usr/sbin/dovecot").exists():
        pytest.fail("dovecot is not installed: run scripts/bootstrap.sh --test")
    with Dovecot() as server:
        yield server


class Mailbox:
    """One test user's mailbox, driven over real IMAP."""

    def __init__(self, server: Dovecot) -> None:
        self.server = server
        self.user, self.password = server.add_user()

    def client(self) -> Any:
        return imap_client(self.server, self.user, self.password)

    def append(self, raw: bytes, folder: str = "INBOX", flags: tuple[bytes, ...] = ()) -> int:
        with self.client() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            resp = c.append(folder, raw, flags=flags)
        # b"[APPENDUID <uidvalidity> <uid>] Append completed."
        return int(resp.split(b"]")[0].split()[-1])

    def create(self, folder: str) -> None:
        with self.client() as c:
            c.create_folder(folder)

    def messages(self, folder: str = "INBOX") -> dict[int, dict[str, Any]]:
        """UID -> {"flags": set of str, "subject": str} of every message in ``folder``."""
        with self.client() as c:
            if not c.folder_exists(folder):
                return {}
            c.select_folder(folder, readonly=True)
            uids = c.search(["ALL"])
            if not uids:
                return {}
            got = c.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        out = {}
        for uid, data in got.items():
            subject = data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode(errors="replace")
            out[int(uid)] = {
                "flags": {f.decode() for f in data[b"FLAGS"]} - {"\\Recent"},
                "subject": subject.partition(":")[2].strip(),
            }
        return out

    def flags_by_subject(self, folder: str = "INBOX") -> dict[str, set[str]]:
        return {m["subject"]: m["flags"] for m in self.messages(folder).values()}


@pytest.fixture
def mailbox(dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> Mailbox:
    box = Mailbox(dovecot)
    monkeypatch.setenv(PASSWORD_ENV, box.password)
    return box


def source_table(server: Dovecot, box: Mailbox, **options: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": "mail",
        "type": "imap",
        "host": server.host,
        "port": server.ssl_port,
        "security": "ssl",
        "ca_file": server.ca_file,
        "username": box.user,
        "password_env": PASSWORD_ENV,
        "reconnect_max": 2.0,
    }
    table.update(options)
    return table


@pytest.fixture
def sink_file(tmp_path: Path) -> Path:
    return tmp_path / "deliveries.jsonl"


@pytest.fixture
def settings_data(
    dovecot: Dovecot, mailbox: Mailbox, tmp_path: Path, sink_file: Path
) -> Callable[..., dict[str, Any]]:
    """The configuration (as a dict) of an engine with the IMAP source and recording sink."""

    def make(
        sink: dict[str, Any] | None = None,
        pipeline: dict[str, Any] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        return {
            "itglue": {"instance": "imaptest"},
            "state": {"dir": str(tmp_path / "state")},
            "pipeline": {
                "transforms": ["org_as_id"],
                "sink": "recording",
                "workers": 2,
                "retry_base": 0.05,
                "retry_max": 0.5,
                "once_timeout": 60,
                "shutdown_timeout": 5,
                **(pipeline or {}),
            },
            "sinks": {"recording": {"path": str(sink_file), **(sink or {})}},
            "sources": [source_table(dovecot, mailbox, **options)],
        }

    return make


@pytest.fixture
def make_engine(settings_data: Callable[..., dict[str, Any]]) -> Iterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def make(
        sink: dict[str, Any] | None = None,
        extra: tuple[object, ...] = (),
        pipeline: dict[str, Any] | None = None,
        **options: Any,
    ) -> Engine:
        for previous in engines:  # one engine per state dir at a time (the engine locks it)
            previous.close()
        settings = parse_settings(settings_data(sink, pipeline, **options))
        pm = get_plugin_manager(
            load_entrypoints=False, block=BUILTINS_BUT_IMAP, extra=[RecordingPlugin(), *extra]
        )
        engine = Engine(settings, pm)
        engines.append(engine)
        return engine

    yield make
    for e in engines:
        e.close()


@pytest.fixture
def delivered(sink_file: Path) -> Callable[[], list[dict[str, Any]]]:
    return lambda: deliveries(sink_file)
