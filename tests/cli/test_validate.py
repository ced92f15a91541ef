"""``itglue-ingest validate``: 20 broken configurations, every problem of each listed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.commands.engine import once
from pipeline.commands.validate import validate
from pipeline.exit_codes import ExitCode
from pipeline.settings import load_settings
from pipeline.testing import MemoryKeyring
from tests.cli.toml_text import write

KEY_ENV = "VALIDATE_TEST_API_KEY"
Config = dict[str, Any]


@pytest.fixture(autouse=True)
def _no_secrets_anywhere(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    monkeypatch.setenv(KEY_ENV, "an-api-key-of-the-right-shape")
    monkeypatch.delenv("ITGLUE_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield


def base(tmp_path: Path) -> Config:
    (tmp_path / "drop").mkdir(exist_ok=True)
    return {
        "itglue": {"instance": "v", "base_url": "https://127.0.0.1:9", "api_key_env": KEY_ENV},
        "state": {"dir": str(tmp_path / "state")},
        "pipeline": {},
        "sources": [{"name": "drop", "type": "filesystem", "path": str(tmp_path / "drop")}],
    }


def feed(**over: Any) -> Config:
    return {
        "name": "feed",
        "type": "http_feed",
        "url": "https://127.0.0.1:9/feed",
        "fields": {"id": "id", "file_url": "links.file"},
        **over,
    }


def run(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(validate, ["-c", str(path), *args])
    return result.exit_code, result.output


def test_a_sound_configuration_is_ok(tmp_path: Path) -> None:
    code, out = run(write(tmp_path / "ok.toml", base(tmp_path)))
    assert (code, out.split(": ", 1)[1].strip()) == (
        0,
        "ok (offline; --online also asks the servers)",
    )
    assert not (tmp_path / "state").exists()  # validate makes nothing


def _set(path: str, value: Any) -> Callable[[Config, Path], None]:
    def change(c: Config, tmp: Path) -> None:
        *parents, last = path.split(".")
        node = c
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        node[last] = value

    return change


def _both(*changes: Callable[[Config, Path], None]) -> Callable[[Config, Path], None]:
    def change(c: Config, tmp: Path) -> None:
        for ch in changes:
            ch(c, tmp)

    return change


def _file(name: str, mode: int = 0o600, folder: bool = False) -> Callable[[Config, Path], None]:
    """Make ``tmp/name`` (a file with ``mode``, or a folder)."""

    def change(c: Config, tmp: Path) -> None:
        p = tmp / name
        if folder:
            p.mkdir()
        else:
            p.write_text("something")
            p.chmod(mode)

    return change


def _sources(*tables: Config) -> Callable[[Config, Path], None]:
    def change(c: Config, tmp: Path) -> None:
        c["sources"] = [*c["sources"], *tables]

    return change


# (id, the change to the sound configuration, a fragment of each expected problem line)
BROKEN: list[tuple[str, Callable[[Config, Path], None], list[str]]] = [
    (
        "two schema errors",
        _both(_set("pipeline.workers", 0), _set("itglue.rate_share", 2)),
        [
            "pipeline.workers: Input should be greater than or equal to 1",
            "itglue.rate_share: Input should be less than or equal to 1",
        ],
    ),
    ("a misspelt plugin table", _set("routingg", {"x": 1}), ["routingg: unknown table"]),
    (
        "an unknown blocked plugin",
        _set("plugins", {"block": ["plugins.imap", "plugins.imapp"]}),
        ["plugins.block[1]: no plugin is called 'plugins.imapp'"],
    ),
    (
        "a module that cannot be imported and an unknown [plugins] key",
        _set("plugins", {"modules": ["no_such_module_x"], "colour": ["blue"]}),
        [
            "plugins.modules[0]: cannot import 'no_such_module_x'",
            "plugins.colour: unknown key (use block or modules)",
        ],
    ),
    (
        "an unknown source type",
        _set("sources.0.type", "imapp"),
        ["sources[0].type: unknown source type 'imapp'"],
    ),
    (
        "an unknown transform and sink",
        _both(_set("pipeline.transforms", ["mime", "routee"]), _set("pipeline.sink", "itglu")),
        [
            "pipeline.transforms[1]: unknown transform 'routee'",
            "pipeline.sink: unknown sink 'itglu'",
        ],
    ),
    (
        "a drop folder that is not there",
        _set("sources.0.path", "/mnt/not-mounted/scans"),
        ["sources[0].path: /mnt/not-mounted/scans: no such folder"],
    ),
    (
        "a drop folder that is a file",
        _both(_file("afile"), _set("sources.0.path", "afile")),
        ["sources[0].path: */afile is not a folder"],
    ),
    (
        "a CA bundle that is not there",
        _set("itglue.ca_bundle", "ca.pem"),
        ["itglue.ca_bundle: */ca.pem: no such file"],
    ),
    (
        "a CA bundle that is a folder",
        _both(_file("cadir", folder=True), _set("itglue.ca_bundle", "cadir")),
        ["itglue.ca_bundle: */cadir is a folder, not a file"],
    ),
    (
        "the key's variable is not set",
        _set("itglue.api_key_env", "NOT_SET_ANYWHERE"),
        ["itglue: no IT Glue API key for instance 'v': the environment variable NOT_SET_ANYWHERE"],
    ),
    (
        "a key file that is missing",
        _both(_set("itglue.api_key_env", None), _set("itglue.api_key_file", "no-key")),
        ["itglue: api_key_file */no-key"],
    ),
    (
        "a key file others can read",
        _both(
            _file("key", 0o644),
            _set("itglue.api_key_env", None),
            _set("itglue.api_key_file", "key"),
        ),
        ["itglue: api_key_file */key is readable by its group or others (mode 0644)"],
    ),
    (
        "a state folder that is a file",
        _both(_file("st"), _set("state.dir", "st")),
        ["state.dir: */st is not a folder"],
    ),
    (
        "two sources of one name",
        _sources({"name": "drop", "type": "filesystem", "path": "drop"}),
        ["sources: source name 'drop' is used twice"],
    ),
    (
        "a feed token and a mailbox password that are not set",
        _sources(
            feed(auth={"type": "bearer", "env": "FEED_TOKEN_UNSET"}),
            {"name": "mail", "type": "imap", "host": "127.0.0.1", "username": "scans"},
        ),
        [
            "sources[1]: source 'feed': secret 'token' is not set",
            "sources[2]: source 'mail': secret 'password' is not set",
        ],
    ),
    (
        "a feed without fields and no page allowed",
        _sources({"name": "feed", "type": "http_feed", "url": "https://x", "max_pages": 0}),
        [
            "sources[1].fields: Field required",
            "sources[1].max_pages: Input should be greater than or equal to 1",
        ],
    ),
    (
        "base_url and region",
        _set("itglue.region", "eu"),
        ["itglue: give either base_url or region"],
    ),
    (
        "a bad source name and a missing path",
        _sources({"name": "bad name!", "type": "filesystem"}),
        ["sources[1].name: String should match pattern", "sources[1].path: Field required"],
    ),
    (
        "a routing key no router knows, and a drop folder under ~ that is not there",
        _both(_set("routing", {"colour": "blue"}), _set("sources.0.path", "~/scans")),
        ["routing.colour: Extra inputs are not permitted", "/home/scans: no such folder"],
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), [(c, e) for _, c, e in BROKEN], ids=[i for i, _, _ in BROKEN]
)
def test_every_problem_is_listed(
    tmp_path: Path, change: Callable[[Config, Path], None], expected: list[str]
) -> None:
    config = base(tmp_path)
    change(config, tmp_path)
    code, out = run(write(tmp_path / "broken.toml", config))
    assert code == ExitCode.USAGE, out
    lines = out.splitlines()[1:]
    for problem in expected:
        assert any(_matches(problem, line) for line in lines), (problem, out)
    assert len(lines) == len(expected), out  # nothing else, each problem once


def _matches(problem: str, line: str) -> bool:
    """Whether the parts of ``problem`` (split at ``*``) appear in ``line`` in order."""
    at = 0
    for part in problem.split("*"):
        at = line.find(part, at)
        if at < 0:
            return False
        at += len(part)
    return True


def test_twenty_configurations() -> None:
    assert len(BROKEN) == 20


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[itglue\n")
    code, out = run(path)
    assert code == ExitCode.USAGE and "not valid TOML" in out


def test_many_problems_of_one_file_at_once(tmp_path: Path) -> None:
    config = base(tmp_path)
    chosen = [BROKEN[i] for i in (0, 1, 3, 6, 10, 13, 15)]
    for _, change, _ in chosen:
        change(config, tmp_path)
    code, out = run(write(tmp_path / "broken.toml", config))
    assert code == ExitCode.USAGE
    expected = [f for _, _, e in chosen for f in e]
    lines = out.splitlines()[1:]
    for problem in expected:
        assert any(_matches(problem, line) for line in lines), (problem, out)
    assert len(lines) == len(expected), out


def test_tilde_is_expanded_in_paths(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    config = base(tmp_path)
    config["itglue"]["ca_bundle"] = "~/ca.pem"
    config["state"]["dir"] = "~/state"
    settings = load_settings(write(tmp_path / "c.toml", config))
    assert settings.itglue.ca_bundle == tmp_path / "home" / "ca.pem"
    assert settings.state.dir == tmp_path / "home" / "state"


def test_the_engine_refuses_an_unknown_blocked_plugin(tmp_path: Path) -> None:
    """It used to be accepted silently (the plugin meant to be blocked kept running)."""
    config = base(tmp_path)
    config["plugins"] = {"block": ["plugins.imapp"]}
    result = CliRunner().invoke(once, ["-c", str(write(tmp_path / "c.toml", config))])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "plugins.block[0]: no plugin is called 'plugins.imapp'" in result.output


@pytest.fixture
def emulator() -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="the-right-key", tls=True) as emu:
        yield emu


def test_online_asks_itglue_and_the_sources_servers(
    tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = base(tmp_path)
    config["itglue"].update(base_url=emulator.base_url, ca_bundle=emulator.ca_file)
    config["sources"].append(feed(url="https://127.0.0.1:1/feed"))  # nothing listens there
    path = write(tmp_path / "c.toml", config)
    monkeypatch.setenv(KEY_ENV, "a-wrong-key")
    code, out = run(path)
    assert code == ExitCode.OK, out  # offline, nothing to say
    code, out = run(path, "--online")
    assert code == ExitCode.USAGE, out
    assert "itglue: " in out and "401" in out
    assert "sources[1]: cannot connect to 127.0.0.1:1" in out
    config["sources"].pop()
    monkeypatch.setenv(KEY_ENV, emulator.api_key)
    code, out = run(write(tmp_path / "c.toml", config), "--online")
    assert code == ExitCode.OK, out
