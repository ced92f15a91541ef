"""The configuration loader: clear messages that name the key, relative paths, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import ConfigError, load_settings, parse_settings


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_are_usable() -> None:
    s = parse_settings({})
    assert s.itglue.instance == "default"
    assert s.pipeline.transforms == ["mime", "extract", "route", "title"]
    assert s.database_path.name == "default.db"


def test_relative_paths_are_taken_from_the_file_folder(tmp_path: Path) -> None:
    """The core's paths at load time; a source's (``PathField`` options such as the
    filesystem source's ``path``) when the engine validates its options."""
    p = write(
        tmp_path,
        '[state]\ndir = "st"\n[itglue]\nca_bundle = "ca.pem"\n'
        '[pipeline]\ntransforms = []\nsink = "itglue"\n'
        '[[sources]]\nname = "scans"\ntype = "filesystem"\npath = "drop"\n',
    )
    s = load_settings(p)
    assert s.state.dir == tmp_path / "st"
    assert s.itglue.ca_bundle == tmp_path / "ca.pem"
    assert s.config_dir == tmp_path
    with Engine(s, get_plugin_manager(load_entrypoints=False)) as engine:
        assert engine.sources["scans"].options.path == tmp_path / "drop"


def test_unknown_key_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, '[itglue]\ninstanse = "x"\n'))
    assert "itglue.instanse" in str(e.value)
    assert "Extra inputs are not permitted" in str(e.value)


def test_wrong_type_in_a_source_names_the_index(tmp_path: Path) -> None:
    text = '[[sources]]\nname = "a"\ntype = "filesystem"\n[[sources]]\nname = "b c"\ntype = "x"\n'
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, text))
    assert "sources[1].name" in str(e.value)


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    text = '[[sources]]\nname = "a"\ntype = "x"\n[[sources]]\nname = "a"\ntype = "y"\n'
    with pytest.raises(ConfigError, match="source name 'a' is used twice"):
        load_settings(write(tmp_path, text))


def test_base_url_and_region_are_exclusive() -> None:
    with pytest.raises(ConfigError, match="either base_url or region"):
        parse_settings({"itglue": {"base_url": "https://x", "region": "eu"}})


def test_not_toml_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[itglue\n"))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_settings(tmp_path / "nope.toml")
