"""Builders for unit tests of a transform or a sink: blobs, records, settings on the
emulator and engine contexts, the same ones the project's own tests use."""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from ..context import EngineContext
from ..hooks import HookFacade
from ..records import Blob, DocumentRecord, Section
from ..settings import Settings, parse_settings
from ..sinks import Sink
from ..transforms import Transform

if TYPE_CHECKING:
    from core_client.client import ITGlueClient
    from itglue_emulator import Emulator

API_KEY_ENV = "ITGLUE_TEST_API_KEY"  # the fixtures put the emulator's key in this variable

ClientFactory = Callable[[Settings], "ITGlueClient"]


def make_blob(
    path: Path,
    file_name: str | None = None,
    *,
    claimed_mime: str | None = None,
    mime_type: str | None = None,
) -> Blob:
    """A :class:`~pipeline.Blob` of the file at ``path`` (size and sha256 computed), as
    the engine would have spooled it."""
    data = Path(path).read_bytes()
    return Blob(
        file_name=file_name or Path(path).name,
        path=Path(path),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        claimed_mime=claimed_mime,
        mime_type=mime_type,
    )


def make_record(
    *files: Path | Blob,
    name: str = "A record",
    source: str = "test",
    source_ref: str | None = None,
    sections: tuple[Section | str, ...] | list[Section | str] = (),
    **fields: Any,
) -> DocumentRecord:
    """A :class:`~pipeline.DocumentRecord` as a transform or sink receives it: ``files``
    are paths (made into blobs) or blobs, ``sections`` HTML strings or sections; any
    other field (``organization``, ``metadata``, ``target``...) by keyword."""
    return DocumentRecord(
        source=source,
        source_ref=source_ref if source_ref is not None else name,
        name=name,
        files=[f if isinstance(f, Blob) else make_blob(f) for f in files],
        sections=[s if isinstance(s, Section) else Section(content=s) for s in sections],
        **fields,
    )


def emulator_settings(emulator: Emulator, state_dir: Path, **sections: Any) -> Settings:
    """Settings pointing at ``emulator`` (key in ``$ITGLUE_TEST_API_KEY``) and ``state_dir``,
    changed by the sections given as in :func:`with_sections`."""
    settings = parse_settings(
        {
            "itglue": {
                "instance": "test",
                "base_url": emulator.base_url,
                "api_key_env": API_KEY_ENV,
                "ca_bundle": str(emulator.ca_file),
            },
            "state": {"dir": str(state_dir)},
        }
    )
    return with_sections(settings, **sections) if sections else settings


def with_sections(settings: Settings, **sections: Any) -> Settings:
    """A copy of ``settings`` with top-level sections replaced (tables are merged one level:
    ``pipeline={"workers": 1}`` keeps the other ``[pipeline]`` keys)."""
    data = settings.model_dump()
    for key, value in sections.items():
        old = data.get(key)
        data[key] = (
            {**old, **value} if isinstance(old, dict) and isinstance(value, Mapping) else value
        )
    return parse_settings(data)


# What each context was made from (the context does not show its settings to plugins):
# make_transform/make_sink build plugins from the same settings and plugin manager.
_made_from: weakref.WeakKeyDictionary[EngineContext, tuple[Settings, HookFacade]] = (
    weakref.WeakKeyDictionary()
)


def make_engine_context(
    settings: Settings,
    pm: pluggy.PluginManager | None = None,
    *,
    client_factory: ClientFactory | None = None,
) -> EngineContext:
    """The :class:`~pipeline.EngineContext` the engine would give a transform or sink for
    ``settings``. The client is built on first use by ``client_factory(settings)``
    (default: :func:`pipeline.clients.build_client`); use the ``engine_context``
    fixture, which closes it (or :func:`close_engine_context`)."""
    from ..clients import build_client
    from ..plugins import get_plugin_manager
    from ..runner.assembly import engine_context

    build = client_factory or build_client
    hook = HookFacade(pm or get_plugin_manager(load_entrypoints=False))
    context = engine_context(settings, hook, lambda: build(settings))
    _made_from[context] = (settings, hook)
    return context


def make_transform(name: str, context: EngineContext) -> Transform:
    """The transform ``name`` as the engine builds it from the settings ``context`` was
    made with (its options table, e.g. ``[routing]`` for ``route``), with ``context``."""
    from ..runner.assembly import Assembly

    settings, hook = _made_from[context]
    return Assembly(settings, hook, check=False).transform(name, context, "transform")


def make_sink(name: str, context: EngineContext) -> Sink:
    """The sink ``name`` as the engine builds it from the settings ``context`` was made
    with (its ``[sinks.<name>]`` table), with ``context``."""
    from ..runner.assembly import Assembly

    settings, hook = _made_from[context]
    return Assembly(settings, hook, check=False).sink(context, name)


def close_engine_context(context: EngineContext) -> None:
    """What the engine does when it closes: its client closed, its routers unregistered."""
    context._close()


class EngineContexts:
    """What the ``engine_context`` fixture returns: call it (with sections to change, e.g.
    ``engine_context({"rules": [...]})`` for routing or ``pipeline={...}``) for a new
    context on ``settings``; :meth:`close` closes the clients they built."""

    def __init__(self, settings: Settings, client_factory: ClientFactory | None = None) -> None:
        self.settings = settings
        self.client_factory = client_factory
        self.contexts: list[EngineContext] = []

    def __call__(
        self,
        routing: Mapping[str, Any] | None = None,
        pm: pluggy.PluginManager | None = None,
        **sections: Any,
    ) -> EngineContext:
        if routing is not None:
            sections["routing"] = routing
        settings = with_sections(self.settings, **sections) if sections else self.settings
        context = make_engine_context(settings, pm, client_factory=self.client_factory)
        self.contexts.append(context)
        return context

    def close(self) -> None:
        for context in self.contexts:
            close_engine_context(context)
