"""A path setting naming the wrong kind of thing -- ``[state] dir`` that is a file, a CA
bundle that is a folder -- is one clean error naming the key and exit code 2 from
``once``, ``run`` and ``status``, never a traceback (issue 10, defect 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.commands.engine import once, run, status

FILESYSTEM = """
[[sources]]
name = "drop"
type = "filesystem"
path = "{path}"
{extra}
"""
IMAP = """
[[sources]]
name = "mail"
type = "imap"
host = "127.0.0.1"
username = "scanner"
ca_file = "{path}"
"""
HTTP_FEED = """
[[sources]]
name = "feed"
type = "http_feed"
url = "https://127.0.0.1:1/items"
ca_bundle = "{path}"
[sources.fields]
id = "id"
file_url = "url"
"""


def write_config(tmp_path: Path, *, state: str = "state", itglue: str = "", sources: str) -> Path:
    (tmp_path / "drop").mkdir(exist_ok=True)
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "a-folder").mkdir(exist_ok=True)
    cfg = tmp_path / "ingest.toml"
    cfg.write_text(
        f"""
[itglue]
api_key_env = "NO_SUCH_KEY_VARIABLE"
{itglue}

[state]
dir = "{state}"
{sources}
"""
    )
    return cfg


def check_refused(cfg: Path, key: str, problem: str, commands: tuple[str, ...]) -> None:
    for command in commands:
        result = CliRunner().invoke(
            {"once": once, "run": run, "status": status}[command], ["-c", str(cfg)]
        )
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            command,
            result.output,
        )
        assert result.exit_code == 2, (command, result.output)
        assert "Traceback" not in result.output
        lines = [line for line in result.output.splitlines() if key in line]
        assert len(lines) == 1 and problem in lines[0], (command, result.output)


@pytest.mark.parametrize(
    ("state", "problem"),
    [("a-file", "a-file is not a folder"), ("a-file/state", "lies below")],
    ids=["a-file", "below-a-file"],
)
def test_state_dir_that_is_a_file(tmp_path: Path, state: str, problem: str) -> None:
    cfg = write_config(tmp_path, state=state, sources=FILESYSTEM.format(path="drop", extra=""))
    check_refused(cfg, "state.dir", problem, ("once", "run", "status"))


def test_itglue_ca_bundle_that_is_a_folder(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        itglue='ca_bundle = "a-folder"',
        sources=FILESYSTEM.format(path="drop", extra=""),
    )
    check_refused(
        cfg, "itglue.ca_bundle", "a-folder is a folder, not a file", ("once", "run", "status")
    )


@pytest.mark.parametrize(
    ("sources", "key", "problem"),
    [
        (FILESYSTEM.format(path="a-file", extra=""), "sources[0].path", "is not a folder"),
        (
            FILESYSTEM.format(path="drop", extra='processed_dir = "../a-file"'),
            "sources[0]",
            "processed_dir: ",
        ),
        (
            FILESYSTEM.format(path="drop", extra='failed_dir = "../a-file/failed"'),
            "sources[0]",
            "failed_dir: ",
        ),
        (IMAP.format(path="a-folder"), "sources[0].ca_file", "is a folder, not a file"),
        (HTTP_FEED.format(path="a-folder"), "sources[0].ca_bundle", "is a folder, not a file"),
    ],
    ids=["path", "processed_dir", "failed_dir", "imap-ca_file", "http_feed-ca_bundle"],
)
def test_source_path_options_of_the_wrong_kind(
    tmp_path: Path, sources: str, key: str, problem: str
) -> None:
    cfg = write_config(tmp_path, sources=sources)
    # ``status`` reads no source options: it is not refused for them
    check_refused(cfg, key, problem, ("once", "run"))
