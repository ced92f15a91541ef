"""Helpers for the built-in transform and sink tests (imported by name: a module called
``conftest`` would clash with the other test folders')."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import pluggy

from pipeline import Blob, DocumentRecord, EngineContext
from pipeline.hooks import HookFacade
from pipeline.plugins import get_plugin_manager
from pipeline.settings import Settings, parse_settings

DATA = Path(__file__).parent / "data"


def blob_for(path: Path, file_name: str | None = None, claimed: str | None = None) -> Blob:
    data = path.read_bytes()
    return Blob(
        file_name=file_name or path.name,
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        claimed_mime=claimed,
    )


def record_with(*blobs: Blob, name: str = "A record", **kw: object) -> DocumentRecord:
    return DocumentRecord(source="test", source_ref=name, name=name, files=list(blobs), **kw)


def settings_for(emu: Any, state_dir: Path, routing: dict[str, Any], **extra: Any) -> Settings:
    return parse_settings(
        {
            "itglue": {
                "instance": "test",
                "base_url": emu.base_url,
                "api_key_env": "ITGLUE_TEST_API_KEY",
                "ca_bundle": str(emu.ca_file),
            },
            "state": {"dir": str(state_dir)},
            "routing": routing,
            **extra,
        }
    )


class Contexts:
    """Builds engine contexts on the emulator and closes their clients afterwards."""

    def __init__(self, emu: Any, state_dir: Path) -> None:
        self.emu = emu
        self.state_dir = state_dir
        self.clients: list[Any] = []

    def __call__(
        self,
        routing: dict[str, Any] | None = None,
        pm: pluggy.PluginManager | None = None,
        **extra: Any,
    ) -> EngineContext:
        from core_client.client import ITGlueClient

        settings = settings_for(self.emu, self.state_dir, routing or {}, **extra)

        def factory() -> ITGlueClient:
            it = settings.itglue
            client = ITGlueClient(
                it.instance,
                base_url=it.base_url,
                api_key_env=it.api_key_env,
                ca_bundle=it.ca_bundle,
                state_dir=settings.state.dir,
                max_retries=1,
                backoff_base=0.01,
            )
            self.clients.append(client)
            return client

        return EngineContext(
            settings=settings,
            state_dir=self.state_dir,
            hook=HookFacade(pm or get_plugin_manager(load_entrypoints=False)),
            log=logging.getLogger("test"),
            _client_factory=factory,
        )

    def close(self) -> None:
        for c in self.clients:
            c.close()
