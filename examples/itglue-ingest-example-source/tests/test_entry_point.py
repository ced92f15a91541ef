"""The plugin is found through its installed entry point, with its distribution's name."""

from pipeline.plugins import describe_plugins, get_plugin_manager


def test_plugin_loads_from_its_entry_point() -> None:
    pm = get_plugin_manager()  # built-ins plus the installed entry points
    plugins = {p["name"]: p for p in describe_plugins(pm)}
    ours = plugins["jsonl_tickets"]
    assert ours["distribution"] == "itglue-ingest-example-source 0.1.0"
    assert ours["hooks"] == ["ingest_register_sources"]
