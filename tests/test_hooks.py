"""One real test per hook of ``pipeline/hookspecs.py``: a plugin implementing the hook is
registered, the engine (or the CLI) runs, and the test checks the hook was called, with
the arguments docs/plugins.md documents, and that its return value means what the docs
say. ``tests/test_hook_contract.py`` fails when a hook has no test here."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from pipeline import (
    DeliveryResult,
    DocumentRecord,
    EngineContext,
    Extracted,
    ExtractLimits,
    Heading,
    Html,
    PermanentError,
    RecordDraft,
    RegisterExtractor,
    Rejected,
    Route,
    Section,
    Sink,
    SinkOptions,
    Source,
    SourceOptions,
    StepJournal,
    Target,
    Transform,
    TransformOptions,
    TransientError,
    hookimpl,
)
from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine, RunSummary
from pipeline.settings import Settings, parse_settings

# ---------------------------------------------------------------- small real plugins

COLLECTED: dict[str, list[DocumentRecord]] = {}
_lock = threading.Lock()


class MemoOptions(SourceOptions):
    notes: list[dict[str, str]]


class MemoSource(Source):
    """Emits one record per configured note (the text as a section)."""

    options_model = MemoOptions

    def scan(self) -> None:
        for note in self.options.notes:
            self.context.emit(
                RecordDraft(
                    source_ref=note["name"],
                    name=note["name"],
                    sections=[Section(content=f"<p>{note['text']}</p>")],
                    organization=note.get("organization"),
                )
            )


class UpperOptions(TransformOptions):
    suffix: str = ""


class UpperTransform(Transform):
    """Upper-cases the record name (and appends its configured suffix)."""

    options_model = UpperOptions

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        return record.model_copy(update={"name": record.name.upper() + self.options.suffix})


class CollectOptions(SinkOptions):
    key: str


class CollectSink(Sink):
    """Keeps delivered records in memory; names starting with ``permanent`` are refused,
    ``flaky`` ones fail once with a transient error."""

    options_model = CollectOptions
    attempts: dict[str, int] = {}

    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        with _lock:
            n = self.attempts[record.name] = self.attempts.get(record.name, 0) + 1
        if record.name.lower().startswith("permanent"):
            raise PermanentError("refused by the test sink")
        if record.name.lower().startswith("flaky") and n == 1:
            raise TransientError("busy", retry_after=0.01)
        with _lock:
            COLLECTED.setdefault(self.options.key, []).append(record)
        return DeliveryResult(record.organization_id, "documents", f"doc-{record.source_ref}")


class Registrations:
    """Implements the three registration hooks and remembers how they were called."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        self.calls.append(("sources", {"register": register}))
        register("memo", MemoSource)

    @hookimpl
    def ingest_register_transforms(self, register: Any) -> None:
        self.calls.append(("transforms", {"register": register}))
        register("upper", UpperTransform)

    @hookimpl
    def ingest_register_sinks(self, register: Any) -> None:
        self.calls.append(("sinks", {"register": register}))
        register("collect", CollectSink)


class Outcomes:
    """Implements the outcome hooks."""

    def __init__(self) -> None:
        self.delivered: list[tuple[DocumentRecord, DeliveryResult]] = []
        self.duplicate: list[tuple[DocumentRecord, str]] = []
        self.failed: list[tuple[DocumentRecord, str, bool]] = []

    @hookimpl
    def ingest_record_delivered(self, record: DocumentRecord, result: DeliveryResult) -> None:
        self.delivered.append((record, result))

    @hookimpl
    def ingest_record_duplicate(self, record: DocumentRecord, existing: str) -> None:
        self.duplicate.append((record, existing))

    @hookimpl
    def ingest_record_failed(self, record: DocumentRecord, reason: str, permanent: bool) -> None:
        self.failed.append((record, reason, permanent))


def settings_for(state: Path, notes: list[dict[str, str]], **pipeline: Any) -> Settings:
    return parse_settings(
        {
            "state": {"dir": str(state)},
            "pipeline": {
                "transforms": [],
                "sink": "collect",
                "retry_base": 0.01,
                "retry_max": 0.05,
                "once_timeout": 30,
                **pipeline,
            },
            "sinks": {"collect": {"key": str(state)}},
            "sources": [{"name": "memo", "type": "memo", "notes": notes}],
        }
    )


def run(settings: Settings, *plugins: object, block: tuple[str, ...] = ()) -> RunSummary:
    pm = get_plugin_manager(load_entrypoints=False, block=block, extra=[Registrations(), *plugins])
    with Engine(settings, pm) as engine:
        return engine.run_once()


NOTES = [{"name": "alpha", "text": "one"}, {"name": "beta", "text": "two"}]


# ---------------------------------------------------------------- registration hooks


def test_register_sources_transforms_and_sinks(ingest_state_dir: Path) -> None:
    """ingest_register_sources, ingest_register_transforms and ingest_register_sinks are
    each called once with ``register``; what they register is what the engine runs."""
    reg = Registrations()
    pm = get_plugin_manager(load_entrypoints=False, extra=[reg])
    settings = settings_for(ingest_state_dir, NOTES, transforms=["upper"])
    settings.transforms["upper"] = {"suffix": "!"}
    with Engine(settings, pm) as engine:
        # each registration hook was called once, with a callable ``register``
        assert sorted(kind for kind, _ in reg.calls) == ["sinks", "sources", "transforms"]
        assert all(callable(kw["register"]) for _, kw in reg.calls)
        assert isinstance(engine.sources["memo"], MemoSource)
        summary = engine.run_once()
    assert summary.delivered == 2
    names = sorted(r.name for r in COLLECTED.pop(str(ingest_state_dir)))
    assert names == ["ALPHA!", "BETA!"]  # the registered transform ran with its options


def test_register_sources_twice_is_an_error_naming_both(ingest_state_dir: Path) -> None:
    class Again:
        @hookimpl
        def ingest_register_sources(self, register: Any) -> None:
            register("memo", UpperTransform)

    pm = get_plugin_manager(load_entrypoints=False, extra=[Registrations(), Again()])
    with pytest.raises(ValueError, match="'memo' is registered twice"):
        Engine(settings_for(ingest_state_dir, NOTES), pm)


def extract_memo(path: Path, limits: ExtractLimits) -> Extracted:
    """A test extractor: a heading and the file's text as a paragraph."""
    text = path.read_text(encoding="utf-8")
    return Extracted(blocks=(Heading("Memo"), Html(f"<p>{text}</p>")), text=text)


class MemoExtractors:
    @hookimpl
    def ingest_register_extractors(self, register: RegisterExtractor) -> None:
        register(["text/x-memo", "application/x-memo-*"], extract_memo, name="memo")


def test_register_extractors_fills_the_engines_registry(ingest_state_dir: Path) -> None:
    """ingest_register_extractors: what a plugin registers is what the engine's
    ``context.extractors()`` finds by MIME type (exact types and patterns)."""
    pm = get_plugin_manager(load_entrypoints=False, extra=[Registrations(), MemoExtractors()])
    with Engine(settings_for(ingest_state_dir, NOTES), pm) as engine:
        registry = engine.context.extractors()
        found = registry.lookup("text/x-memo; charset=utf-8")
        assert found is not None and found.name == "memo" and found.extractor is extract_memo
        pattern = registry.lookup("application/x-memo-long")
        assert pattern is not None and pattern.name == "memo"
        assert registry.lookup("application/x-unknown") is None


def test_register_extractors_twice_is_an_error_naming_both(ingest_state_dir: Path) -> None:
    class Again:
        @hookimpl
        def ingest_register_extractors(self, register: RegisterExtractor) -> None:
            register(["text/x-memo"], extract_memo, name="memo-again")

    pm = get_plugin_manager(
        load_entrypoints=False, extra=[Registrations(), MemoExtractors(), Again()]
    )
    with (
        Engine(settings_for(ingest_state_dir, NOTES), pm) as engine,
        pytest.raises(ValueError, match=r"'memo'.*'memo-again'|'memo-again'.*'memo'"),
    ):
        engine.context.extractors()


def test_register_commands_from_an_installed_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distribution with an ``itglue_ingest`` entry point adds a CLI command."""
    (tmp_path / "hooktest_cli_plugin.py").write_text(
        "import click\n"
        "from pipeline import hookimpl\n"
        "SEEN = []\n"
        "@hookimpl\n"
        "def ingest_register_commands(cli):\n"
        "    SEEN.append(cli)\n"
        "    @cli.command(name='hooktest-hello')\n"
        "    @click.argument('who')\n"
        "    def hello(who):\n"
        "        '''Say hello.'''\n"
        "        click.echo(f'hello {who}')\n"
    )
    dist = tmp_path / "hooktest_cli_plugin-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hooktest-cli-plugin\nVersion: 1.2\n"
    )
    (dist / "entry_points.txt").write_text("[itglue_ingest]\nhooktest = hooktest_cli_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from pipeline.cli import build_cli, cli

    try:
        group = build_cli()
        plugin = sys.modules["hooktest_cli_plugin"]
        assert [group] == plugin.SEEN and isinstance(group, click.Group)
        result = CliRunner().invoke(group, ["hooktest-hello", "world"])
        assert result.exit_code == 0, result.output
        assert result.output == "hello world\n"
        listed = CliRunner().invoke(group, ["plugins", "--json"])
        assert listed.exit_code == 0, listed.output
        ours = [p for p in json.loads(listed.output) if p["name"] == "hooktest"]
        assert ours == [
            {
                "name": "hooktest",
                "hooks": ["ingest_register_commands"],
                "distribution": "hooktest-cli-plugin 1.2",
            }
        ]
    finally:
        cli.commands.pop("hooktest-hello", None)
        sys.modules.pop("hooktest_cli_plugin", None)


# ---------------------------------------------------------------- processing hooks


class Router:
    def __init__(self) -> None:
        self.calls: list[tuple[DocumentRecord, EngineContext]] = []

    @hookimpl
    def ingest_route(self, record: DocumentRecord, context: EngineContext) -> Route | None:
        self.calls.append((record, context))
        if record.name == "alpha":
            return Route(
                organization_id="77",
                organization_name="Routed Inc",
                target=Target(kind="attachment", resource_type="configurations", resource_id="5"),
            )
        if record.name == "beta":
            raise Rejected("beta goes nowhere")
        return None  # let the next router (the built-in one) decide


def test_route_first_answer_wins_none_falls_through_rejected_fails(
    ingest_state_dir: Path,
) -> None:
    router = Router()
    notes = [*NOTES, {"name": "gamma", "text": "three"}]
    settings = settings_for(ingest_state_dir, notes, transforms=["route"])
    summary = run(settings, router)
    # called once per record, with the record and the engine's context
    assert sorted(r.name for r, _ in router.calls) == ["alpha", "beta", "gamma"]
    assert all(isinstance(c, EngineContext) for _, c in router.calls)
    [alpha] = COLLECTED.pop(str(ingest_state_dir))
    assert (alpha.organization_id, alpha.organization) == ("77", "Routed Inc")
    assert alpha.target == Target(
        kind="attachment", resource_type="configurations", resource_id="5"
    )
    reasons = {f["source_ref"]: f["reason"] for f in summary.failures}
    assert reasons["beta"] == "beta goes nowhere"
    # None: the built-in router (trylast) answered; gamma names no organization
    assert "gamma" in reasons and "beta goes nowhere" not in reasons["gamma"]


# ---------------------------------------------------------------- outcome hooks


def test_record_delivered(ingest_state_dir: Path) -> None:
    outcomes = Outcomes()
    summary = run(settings_for(ingest_state_dir, NOTES), outcomes)
    assert summary.delivered == 2
    COLLECTED.pop(str(ingest_state_dir))
    got = sorted((r.source_ref, res.resource_id) for r, res in outcomes.delivered)
    assert got == [("alpha", "doc-alpha"), ("beta", "doc-beta")]
    assert all(isinstance(res, DeliveryResult) and r.id for r, res in outcomes.delivered)


def test_record_duplicate(ingest_state_dir: Path) -> None:
    outcomes = Outcomes()
    notes = [{"name": "alpha", "text": "same"}, {"name": "alpha-copy", "text": "same"}]
    summary = run(settings_for(ingest_state_dir, notes, workers=1), outcomes)
    assert (summary.delivered, summary.duplicate) == (1, 1)
    COLLECTED.pop(str(ingest_state_dir))
    [(record, existing)] = outcomes.duplicate
    [(original, _)] = outcomes.delivered
    assert record.source_ref != original.source_ref
    assert existing == f"ledger:{original.id}"


def test_record_failed_transient_then_permanent(ingest_state_dir: Path) -> None:
    outcomes = Outcomes()

    class Broken:  # a listener that raises must not change the record's fate
        @hookimpl
        def ingest_record_failed(
            self, record: DocumentRecord, reason: str, permanent: bool
        ) -> None:
            raise RuntimeError("listener bug")

    notes = [{"name": "flaky", "text": "a"}, {"name": "permanent", "text": "b"}]
    # pluggy calls the last registered first; Broken goes last so ``outcomes`` is reached
    summary = run(settings_for(ingest_state_dir, notes), Broken(), outcomes)
    assert (summary.delivered, summary.failed) == (1, 1)
    COLLECTED.pop(str(ingest_state_dir))
    calls = sorted((r.source_ref, reason, permanent) for r, reason, permanent in outcomes.failed)
    assert calls == [("flaky", "busy", False), ("permanent", "refused by the test sink", True)]


# ---------------------------------------------------------------- credential hooks


def test_access_token_first_non_none_answer_wins(ingest_state_dir: Path) -> None:
    seen: list[tuple[str, str]] = []

    class NoIdea:
        @hookimpl
        def ingest_access_token(self, source: str, account: str) -> str | None:
            seen.append((source, account))
            return None

    class Vault:
        @hookimpl(tryfirst=True)
        def ingest_access_token(self, source: str, account: str) -> str | None:
            seen.append((source, account))
            return "tok-123" if account == "ops@example.com" else None

    pm = get_plugin_manager(load_entrypoints=False, extra=[Registrations(), NoIdea(), Vault()])
    with Engine(settings_for(ingest_state_dir, NOTES), pm) as engine:
        assert engine.hook.access_token("mail", "ops@example.com") == "tok-123"
        assert seen == [("mail", "ops@example.com")]  # firstresult: NoIdea not asked
        assert engine.hook.access_token("mail", "other@example.com") is None
        assert seen[1:] == [("mail", "other@example.com")] * 2


def test_a_plugin_whose_command_hook_raises_does_not_hide_the_others() -> None:
    from pipeline.hooks import HookFacade
    from pipeline.plugins import get_plugin_manager

    class Good:
        @hookimpl
        def ingest_register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("good-command"))

    class Bad:
        @hookimpl
        def ingest_register_commands(self, cli: click.Group) -> None:
            raise RuntimeError("boom")

    for order in ([Good(), Bad()], [Bad(), Good()]):
        group = click.Group()
        pm = get_plugin_manager(load_entrypoints=False, extra=order)
        HookFacade(pm).register_commands(group)
        assert "good-command" in group.commands
