"""The services an engine gives its transforms and sink (``EngineContext``): limits from
the configuration, secrets, the lazily built client, per-engine plugins."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from pipeline import EngineContext, Limits, PermanentError, hookimpl
from pipeline.hooks import HookFacade
from pipeline.logs import redact
from pipeline.plugins import get_plugin_manager
from pipeline.runner.assembly import engine_context
from pipeline.settings import parse_settings
from pipeline.testing import MemoryKeyring


def context(tmp_path: Path, factory: Any = None, **pipeline: Any) -> EngineContext:
    settings = parse_settings(
        {"state": {"dir": str(tmp_path)}, "pipeline": pipeline, "itglue": {"read_timeout": 42}}
    )
    return engine_context(settings, HookFacade(get_plugin_manager(load_entrypoints=False)), factory)


def test_the_limits_are_the_configurations(tmp_path: Path) -> None:
    ctx = context(tmp_path, max_file_size=123, dedupe_scope="global", retry_max=9)
    assert ctx.limits == Limits(
        max_file_size=123, dedupe_scope="global", retry_max=9.0, request_timeout=42.0
    )
    assert ctx.state_dir == tmp_path
    assert not hasattr(ctx, "settings") and not hasattr(ctx, "hook")  # not the plugin API


def test_a_secret_comes_from_the_variable_then_the_keyring(
    tmp_path: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = context(tmp_path)
    with pytest.raises(PermanentError, match=r"keyring set itglue-ingest plugin:ocr_token"):
        ctx.secret("ocr_token", env="OCR_TOKEN")
    memory_keyring.set_password("itglue-ingest", "plugin:ocr_token", "from-the-keyring-1")
    assert ctx.secret("ocr_token", env="OCR_TOKEN") == "from-the-keyring-1"
    monkeypatch.setenv("OCR_TOKEN", "from-the-variable-2")
    assert ctx.secret("ocr_token", env="OCR_TOKEN") == "from-the-variable-2"
    assert redact("a from-the-keyring-1 b from-the-variable-2") == "a *** b ***"


def test_without_a_client_factory_there_is_no_client(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no IT Glue client"):
        context(tmp_path).itglue()


def test_the_client_is_built_once_however_many_workers_ask(tmp_path: Path) -> None:
    class Client:
        closed = 0

        def close(self) -> None:
            Client.closed += 1

    made: list[Client] = []
    gate = threading.Barrier(8)

    def factory() -> Client:
        made.append(Client())
        return made[-1]

    ctx = context(tmp_path, factory)

    def ask() -> None:
        gate.wait()
        ctx.itglue()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and ctx.itglue() is made[0]
    ctx._close()
    assert Client.closed == 1


def test_an_added_plugin_lives_as_long_as_its_engine(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    seen: list[str] = []

    class Listener:
        @hookimpl
        def ingest_record_failed(self, reason: str) -> None:
            seen.append(reason)

    plugin = Listener()
    ctx.add_plugin(plugin)
    hook = ctx._hook
    assert hook.pm.is_registered(plugin)
    ctx._close()
    assert not hook.pm.is_registered(plugin)
