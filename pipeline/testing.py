"""pytest fixtures for itglue-ingest and for plugin authors (registered via ``pytest11``).

Fixtures:

``memory_keyring``
    An in-memory keyring backend for the test (nothing touches the real keyring).
``itglue_emulator``
    A running IT Glue emulator on 127.0.0.1 over HTTPS with its own test CA; has
    ``base_url``, ``api_key``, ``ca_file`` and inspection helpers (``state()``,
    ``attachment_content(id)``, ``set_faults(...)``, ``seed(...)``, ``reset()``).
``ingest_state_dir``
    A fresh state directory (ledger, cache, spool).
``ingest_plugin_manager``
    A plugin manager with the built-ins (no entry points: tests stay hermetic).
``ingest_settings``
    A :class:`pipeline.settings.Settings` pointing at the emulator and the state dir,
    with no sources; add yours with ``ingest_settings.sources.append(...)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import pluggy
import pytest

from .settings import Settings, parse_settings


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
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def itglue_emulator() -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="test-key", tls=True) as emu:
        yield emu


@pytest.fixture
def ingest_state_dir(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def ingest_plugin_manager() -> pluggy.PluginManager:
    from .plugins import get_plugin_manager

    return get_plugin_manager(load_entrypoints=False)


@pytest.fixture
def ingest_settings(
    itglue_emulator: Any, ingest_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("ITGLUE_TEST_API_KEY", itglue_emulator.api_key)
    return parse_settings(
        {
            "itglue": {
                "instance": "test",
                "base_url": itglue_emulator.base_url,
                "api_key_env": "ITGLUE_TEST_API_KEY",
                "ca_bundle": str(itglue_emulator.ca_file),
            },
            "state": {"dir": str(ingest_state_dir)},
        }
    )
