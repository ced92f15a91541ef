"""What itglue-ingest gives plugin authors for their tests (a ``pytest11`` plugin).

Fixtures (no import needed): ``run_once`` (run the real engine once against the emulator
and get back what landed), ``engine_context`` (the context a transform or sink gets),
``itglue_emulator``, ``ingest_settings``, ``ingest_state_dir``, ``ingest_plugin_manager``,
``memory_keyring``. Builders: :func:`make_record`, :func:`make_blob`,
:func:`emulator_settings`, :func:`make_engine_context` and the plugins of its settings
(:func:`make_transform`, :func:`make_sink`). See docs/plugins.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import keyring
import keyring.backend
import pluggy
import pytest

from ..settings import Settings
from .builders import (
    API_KEY_ENV,
    EngineContexts,
    close_engine_context,
    emulator_settings,
    make_blob,
    make_engine_context,
    make_record,
    make_sink,
    make_transform,
    with_sections,
)
from .landed import Landed, LandedAttachment, LandedDocument, RunOnce, landed_since

if TYPE_CHECKING:
    from itglue_emulator import Emulator

__all__ = [
    "API_KEY_ENV",
    "EngineContexts",
    "Landed",
    "LandedAttachment",
    "LandedDocument",
    "MemoryKeyring",
    "RunOnce",
    "close_engine_context",
    "emulator_settings",
    "engine_context",
    "ingest_plugin_manager",
    "ingest_settings",
    "ingest_state_dir",
    "itglue_emulator",
    "landed_since",
    "make_blob",
    "make_engine_context",
    "make_record",
    "make_sink",
    "make_transform",
    "memory_keyring",
    "run_once",
    "with_sections",
]


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that lives in a dict (tests only)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.store[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """An in-memory keyring for the test; the real one is never touched."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def itglue_emulator() -> Iterator[Emulator]:
    """A running IT Glue emulator on 127.0.0.1 over HTTPS with its own test CA."""
    from itglue_emulator import run_emulator

    with run_emulator(api_key="test-key", tls=True) as emu:
        yield emu


@pytest.fixture
def ingest_state_dir(tmp_path: Path) -> Path:
    """A fresh, private state directory (ledger, cache, spool)."""
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def ingest_plugin_manager() -> pluggy.PluginManager:
    """The built-in plugins, no entry points (tests stay hermetic)."""
    from ..plugins import get_plugin_manager

    return get_plugin_manager(load_entrypoints=False)


@pytest.fixture
def ingest_settings(
    itglue_emulator: Emulator, ingest_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Settings pointing at the emulator and the state dir, with no sources."""
    monkeypatch.setenv(API_KEY_ENV, itglue_emulator.api_key)
    return emulator_settings(itglue_emulator, ingest_state_dir)


@pytest.fixture
def run_once(itglue_emulator: Emulator, ingest_settings: Settings) -> RunOnce:
    """``run_once(source_table, organizations=[...])``: run the engine once on
    ``ingest_settings`` plus the table and return what landed (:class:`Landed`)."""
    return RunOnce(itglue_emulator, ingest_settings)


@pytest.fixture
def engine_context(ingest_settings: Settings) -> Iterator[EngineContexts]:
    """``engine_context(routing=None, pm=None, **sections)``: an engine context on
    ``ingest_settings`` for unit-testing a transform or sink; clients closed afterwards."""
    contexts = EngineContexts(ingest_settings)
    try:
        yield contexts
    finally:
        contexts.close()
