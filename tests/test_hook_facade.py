"""The notification facade calls each implementation on its own, in pluggy's order, and
refuses wrappers on those hooks at plugin load (they cannot wrap "the others" there)."""

from __future__ import annotations

from typing import Any

import click
import pluggy
import pytest

from pipeline import DeliveryResult, DocumentRecord, hookimpl, hookspecs
from pipeline.hooks import NOTIFICATION_HOOKS, HookFacade
from pipeline.plugins import get_plugin_manager

RECORD = DocumentRecord(source="s", source_ref="r", name="n")
ARGS: dict[str, dict[str, Any]] = {
    "ingest_register_commands": {"cli": click.Group()},
    "ingest_record_delivered": {
        "record": RECORD,
        "result": DeliveryResult(organization_id="1", resource_type="documents", resource_id="9"),
    },
    "ingest_record_duplicate": {"record": RECORD, "existing": "ledger:1"},
    "ingest_record_failed": {"record": RECORD, "reason": "why", "permanent": True},
}
FACADE_CALL = {
    "ingest_register_commands": lambda f, a: f.register_commands(**a),
    "ingest_record_delivered": lambda f, a: f.record_delivered(**a),
    "ingest_record_duplicate": lambda f, a: f.record_duplicate(**a),
    "ingest_record_failed": lambda f, a: f.record_failed(**a),
}


def listener(hook: str, label: str, calls: list[str], **opts: bool) -> object:
    """A plugin object whose ``hook`` implementation appends ``label`` to ``calls``."""

    def impl(self: object) -> None:
        calls.append(label)

    return type(f"Listener_{label}", (), {hook: hookimpl(**opts)(impl)})()


def test_every_notification_hook_is_covered() -> None:
    assert set(NOTIFICATION_HOOKS) == set(ARGS) == set(FACADE_CALL)
    for name in NOTIFICATION_HOOKS:
        assert getattr(hookspecs, name)  # a real hook


@pytest.mark.parametrize("hook", NOTIFICATION_HOOKS)
def test_the_facade_calls_in_pluggys_own_order(hook: str) -> None:
    calls: list[str] = []
    plugins = [
        listener(hook, "plain-1", calls),
        listener(hook, "first-1", calls, tryfirst=True),
        listener(hook, "last-1", calls, trylast=True),
        listener(hook, "plain-2", calls),
        listener(hook, "last-2", calls, trylast=True),
        listener(hook, "first-2", calls, tryfirst=True),
        listener(hook, "plain-3", calls),
    ]
    pm = get_plugin_manager(load_entrypoints=False, block=["plugins.imap"], extra=plugins)
    getattr(pm.hook, hook)(**ARGS[hook])
    pluggy_order, calls[:] = list(calls), []
    FACADE_CALL[hook](HookFacade(pm), ARGS[hook])
    assert calls == pluggy_order
    # pluggy's order: tryfirst first, trylast last, otherwise the last registered first
    # (trylast implementations are each put at the far end, so the first of them ends last)
    assert pluggy_order == [
        "first-2",
        "first-1",
        "plain-3",
        "plain-2",
        "plain-1",
        "last-1",
        "last-2",
    ]


def test_a_raising_listener_does_not_stop_the_others_in_that_order() -> None:
    calls: list[str] = []

    class Broken:
        @hookimpl(tryfirst=True)
        def ingest_record_failed(self) -> None:
            calls.append("broken")
            raise RuntimeError("listener bug")

    plugins = [listener("ingest_record_failed", "after", calls, trylast=True), Broken()]
    pm = get_plugin_manager(load_entrypoints=False, extra=plugins)
    HookFacade(pm).record_failed(**ARGS["ingest_record_failed"])
    assert calls == ["broken", "after"]


def wrapper_plugin(hook: str, style: str) -> object:
    def old_style(self: object) -> Any:
        yield

    def new_style(self: object) -> Any:
        return (yield)

    if style == "hookwrapper":
        return type("OldWrapper", (), {hook: hookimpl(hookwrapper=True)(old_style)})()
    return type("NewWrapper", (), {hook: hookimpl(wrapper=True)(new_style)})()


@pytest.mark.parametrize("style", ["hookwrapper", "wrapper"])
@pytest.mark.parametrize("hook", NOTIFICATION_HOOKS)
def test_a_wrapper_on_a_notification_hook_is_refused_at_load(hook: str, style: str) -> None:
    with pytest.raises(pluggy.PluginValidationError, match=f"{hook} is a notification hook"):
        get_plugin_manager(load_entrypoints=False, extra=[wrapper_plugin(hook, style)])


def test_a_wrapper_registered_later_is_refused_and_not_left_registered() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    facade = HookFacade(pm)
    plugin = wrapper_plugin("ingest_record_delivered", "wrapper")
    with pytest.raises(pluggy.PluginValidationError, match="cannot be a hookwrapper/wrapper"):
        facade.register(plugin)
    assert not pm.is_registered(plugin)
    # and a plugin manager built by hand is checked when the facade is made
    pm.register(plugin)
    with pytest.raises(pluggy.PluginValidationError):
        HookFacade(pm)


def test_a_wrapper_on_a_firstresult_hook_is_still_fine() -> None:
    """``ingest_route``/``ingest_access_token`` go through pluggy itself: wrappers work."""
    seen: list[str] = []

    class Wrap:
        @hookimpl(wrapper=True)
        def ingest_access_token(self, source: str, account: str) -> Any:
            seen.append("before")
            token = yield
            return token.upper() if token else token

    class Vault:
        @hookimpl
        def ingest_access_token(self, source: str, account: str) -> str:
            return "tok"

    pm = get_plugin_manager(load_entrypoints=False, extra=[Vault(), Wrap()])
    assert HookFacade(pm).access_token("mail", "a@example.com") == "TOK"
    assert seen == ["before"]
