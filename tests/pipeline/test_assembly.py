"""From a configuration file to engine parts without the engine knowing any plugin: a
plugin's options model may read a top-level table of its own (``config_table``, as the
route transform reads ``[routing]``) and mark path fields (``PathField``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import DocumentRecord, PathField, Transform, TransformOptions, hookimpl
from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import ConfigError, load_settings, parse_settings
from plugins.routing import RouteTransform

BLOCK = ["plugins.imap", "plugins.http_feed"]


class StampOptions(TransformOptions):
    config_table = "stamping"

    prefix: str = ""
    suffix: str = ""
    template: PathField | None = None


class Stamp(Transform):
    options_model = StampOptions

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        return record


class StampPlugin:
    @hookimpl
    def ingest_register_transforms(self, register: Callable[[str, type[Transform]], None]) -> None:
        register("stamp", Stamp)


def engine_for(tmp_path: Path, text: str) -> Engine:
    config = tmp_path / "conf" / "ingest.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text('[state]\ndir = "state"\n' + text, encoding="utf-8")
    pm = get_plugin_manager(load_entrypoints=False, block=BLOCK, extra=[StampPlugin()])
    return Engine(load_settings(config), pm)


def test_a_plugin_reads_its_own_top_level_table_and_its_paths_resolve(tmp_path: Path) -> None:
    text = (
        '[pipeline]\ntransforms = ["stamp"]\n'
        '[transforms.stamp]\nprefix = "overridden"\nsuffix = "!"\n'
        '[stamping]\nprefix = "[scan] "\ntemplate = "tpl/page.html"\n'
    )
    with engine_for(tmp_path, text) as engine:
        options = engine.transforms[0].options
    assert (options.prefix, options.suffix) == ("[scan] ", "!")  # the table wins
    assert options.template == tmp_path / "conf" / "tpl" / "page.html"


def test_an_error_in_a_plugin_table_names_the_table(tmp_path: Path) -> None:
    text = '[pipeline]\ntransforms = ["stamp"]\n[stamping]\nprefix = ["not", "text"]\n'
    with pytest.raises(ConfigError, match=r"^stamping\.prefix: Input should be a valid string"):
        engine_for(tmp_path, text)


def test_a_top_level_table_no_plugin_reads_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"routnig: unknown table.*plugin tables: routing, stamp"):
        engine_for(tmp_path, '[routnig]\nfallback_organization = "Acme"\n')


def test_a_top_level_key_that_is_not_a_table_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="workers: unknown key"):
        parse_settings({"workers": 3})


def test_the_routing_table_configures_the_route_transform(tmp_path: Path) -> None:
    """``[routing]`` over ``[transforms.route]``, exactly as before the engine stopped
    naming the route transform; its errors still say ``routing.<key>``."""
    text = (
        '[pipeline]\ntransforms = ["route"]\n'
        "[transforms.route]\ncache_max_age = 5\n"
        '[routing]\nfallback_organization = "Acme"\n'
    )
    with engine_for(tmp_path, text) as engine:
        route = engine.transforms[0]
        assert isinstance(route, RouteTransform)
        assert route.router.options.fallback_organization == "Acme"
        assert route.router.options.cache_max_age == 5
        assert route.router in engine.pm.get_plugins()  # registered for this engine
    assert route.router not in engine.pm.get_plugins()  # and gone with it
    with pytest.raises(ConfigError, match=r"^routing\.cache_max_age: Input should be greater"):
        engine_for(tmp_path, "[routing]\ncache_max_age = -1\n")


def test_without_a_configuration_file_relative_paths_stay_relative(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "state": {"dir": str(tmp_path / "state")},
            "pipeline": {"transforms": ["stamp"]},
            "stamping": {"template": "page.html"},
        }
    )
    pm = get_plugin_manager(load_entrypoints=False, block=BLOCK, extra=[StampPlugin()])
    with Engine(settings, pm) as engine:
        assert engine.transforms[0].options.template == Path("page.html")
