"""Properties of the configuration loader (``pipeline.settings``).

Whatever a TOML file holds, ``parse_settings``/``load_settings`` give a ``Settings`` or
a ``ConfigError`` whose message is one line per problem, each naming the key; any other
exception (a traceback for the operator) is a bug.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from itglue_common import escape_controls
from pipeline.settings import ConfigError, Settings, load_settings, parse_settings

# every value TOML can hold
TOML_SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=12),
    st.datetimes(),
    st.dates(),
    st.times(),
    st.sampled_from(["", "us", "eu", "../state", "/nonexistent/ca.pem", "1e3", "-1"]),
)
KEYS = st.one_of(st.text(max_size=8), st.sampled_from(["a\nb", "x\x1b[2J", "name", "type"]))
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)


def section(keys: list[str]) -> st.SearchStrategy[Any]:
    """A table with some of ``keys`` (and maybe unknown ones), or any other value."""
    table = st.fixed_dictionaries(
        {}, optional={**{k: TOML_VALUES for k in keys}, "unknown": TOML_VALUES}
    )
    return st.one_of(table, table, TOML_VALUES)


SOURCE = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.sampled_from(["inbox", "inbox", "bad name", ""]), TOML_VALUES),
        "type": st.one_of(st.sampled_from(["filesystem", "imap", "http_feed"]), TOML_VALUES),
        "organization": TOML_VALUES,
        "enabled": TOML_VALUES,
        "path": st.one_of(st.sampled_from(["drop", "/abs/drop", "a\x00b"]), TOML_VALUES),
        "anything": TOML_VALUES,
    },
)
CONFIGS = st.fixed_dictionaries(
    {},
    optional={
        "itglue": section(
            [
                "instance",
                "base_url",
                "region",
                "api_key_env",
                "ca_bundle",
                "rate_share",
                "rate_limit",
                "connect_timeout",
            ]
        ),
        "state": section(["dir"]),
        "pipeline": section(
            ["transforms", "sink", "workers", "max_file_size", "dedupe_scope", "retry_base"]
        ),
        "routing": TOML_VALUES,
        "transforms": TOML_VALUES,
        "sinks": TOML_VALUES,
        "plugins": TOML_VALUES,
        "sources": st.one_of(st.lists(SOURCE, max_size=3), TOML_VALUES),
    },
).flatmap(lambda d: st.dictionaries(KEYS, TOML_VALUES, max_size=2).map(lambda x: {**x, **d}))


def assert_one_line_per_problem(message: str, origin: str) -> None:
    head, *problems = message.split("\n")
    assert head.startswith(origin), message
    assert escape_controls(message) == message.replace("\n", "\\n"), "raw control characters"
    for line in problems:
        # "  <key path>: <what is wrong>", the key path never empty
        assert re.match(r"^  \S.*?: \S", line), line


@given(CONFIGS)
@example({"a\nb": 1})  # a quoted TOML key with a newline: still one line per problem
@example({"sources": [{"name": "x\n2026-01-01 INFO forged", "type": "t"}]})
@example({"itglue": {"base_url": "https://x", "region": "us"}})
def test_any_table_is_settings_or_a_config_error(data: dict[str, Any]) -> None:
    try:
        settings = parse_settings(data, "cfg.toml")
    except ConfigError as e:
        assert_one_line_per_problem(str(e), "cfg.toml")
        return
    assert isinstance(settings, Settings)


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every example (hypothesis does not rerun function fixtures)."""
    return tmp_path_factory.mktemp("config")


TOML_PIECES = st.sampled_from(
    [
        "[itglue]\n",
        "[pipeline]\n",
        "[[sources]]\n",
        "[state]\n",
        "[routing]\n",
        'name = "inbox"\n',
        'type = "filesystem"\n',
        "workers = 0\n",
        "workers = 4\n",
        'region = "mars"\n',
        'dir = "state"\n',
        "x = [[[1]]]\n",
        "y = {a = {b = 1}}\n",
        '"k\\n" = 1\n',
        "a = 1979-05-27T07:32:00Z\n",
        "= 1\n",
        "[a.b\n",
        '"\n',
        "a = " + "[" * 3000 + "]" * 3000 + "\n",
    ]
)
TOML_TEXT = st.lists(st.one_of(TOML_PIECES, st.text(max_size=10)), max_size=12).map("".join)


@given(st.one_of(TOML_TEXT.map(str.encode), st.binary(max_size=200)))
@example(("a = " + "[" * 5000 + "]" * 5000).encode())  # tomllib: RecursionError
@example(("a = " + "{b=" * 5000 + "1" + "}" * 5000).encode())
@example(b"\xff\xfe")
def test_any_file_is_settings_or_a_config_error(config_dir: Path, content: bytes) -> None:
    path = config_dir / "ingest.toml"
    path.write_bytes(content)
    try:
        settings = load_settings(path)
    except ConfigError as e:
        assert_one_line_per_problem(str(e), str(path))
        return
    assert isinstance(settings, Settings)


def test_dates_and_times_are_refused_with_the_key() -> None:
    try:
        parse_settings({"pipeline": {"workers": dt.date(2026, 1, 1)}}, "cfg")
    except ConfigError as e:
        assert "pipeline.workers" in str(e)
    else:
        raise AssertionError("a date is no worker count")
