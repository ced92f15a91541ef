"""``[itglue.instances.NAME]`` in the configuration: what is accepted, and what
``validate`` says about an instance name no table has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.commands.validate import validate
from pipeline.settings import ConfigError, parse_settings
from pipeline.testing import MemoryKeyring
from tests.cli.toml_text import write

PROD_ENV, SANDBOX_ENV = "VALIDATE_PROD_KEY", "VALIDATE_SANDBOX_KEY"


@pytest.fixture(autouse=True)
def _keys(memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(PROD_ENV, "a-production-key")
    monkeypatch.setenv(SANDBOX_ENV, "a-sandbox-key")
    monkeypatch.delenv("ITGLUE_API_KEY", raising=False)
    yield


def config(tmp_path: Path, **over: Any) -> dict[str, Any]:
    (tmp_path / "drop").mkdir(exist_ok=True)
    return {
        "itglue": {
            "instances": {
                "prod": {"base_url": "https://127.0.0.1:9", "api_key_env": PROD_ENV},
                "sandbox": {"region": "eu", "api_key_env": SANDBOX_ENV, "rate_limit": 600},
            },
        },
        "state": {"dir": str(tmp_path / "state")},
        "sources": [{"name": "drop", "type": "filesystem", "path": str(tmp_path / "drop")}],
        **over,
    }


def run(path: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(validate, ["-c", str(path)])
    return result.exit_code, [line.strip() for line in result.output.splitlines()]


def test_the_first_instance_is_the_default_unless_one_is_named(tmp_path: Path) -> None:
    settings = parse_settings(config(tmp_path))
    assert list(settings.itglue.named) == ["prod", "sandbox"]
    assert settings.itglue.default_name == "prod"
    assert settings.database_path == tmp_path / "state" / "prod.db"  # the ledger's
    assert settings.itglue.named["sandbox"].rate_limit == 600
    data = config(tmp_path)
    data["itglue"]["default_instance"] = "sandbox"
    assert parse_settings(data).itglue.default_name == "sandbox"


def test_the_single_itglue_table_is_one_instance_named_by_instance(tmp_path: Path) -> None:
    settings = parse_settings({"itglue": {"instance": "production", "region": "eu"}})
    assert list(settings.itglue.named) == ["production"]
    assert settings.itglue.named["production"].region == "eu"
    assert settings.itglue.default_name == "production"


@pytest.mark.parametrize(
    ("itglue", "message"),
    [
        (
            {"default_instance": "sandbx"},
            "unknown IT Glue instance 'sandbx' (instances: prod, sandbox); did you mean 'sandbox'?",
        ),
        (
            {"rate_limit": 100},
            "rate_limit: not beside [itglue.instances.NAME] tables",
        ),
    ],
)
def test_itglue_keys_beside_instance_tables_are_refused(
    tmp_path: Path, itglue: dict[str, Any], message: str
) -> None:
    data = config(tmp_path)
    data["itglue"].update(itglue)
    with pytest.raises(ConfigError, match="itglue: ") as err:
        parse_settings(data)
    assert message in str(err.value)


def test_an_instance_table_name_must_be_usable_as_a_file_name(tmp_path: Path) -> None:
    data = config(tmp_path)
    data["itglue"]["instances"]["../prod"] = {"region": "us"}
    with pytest.raises(ConfigError, match=r"itglue\.instances"):
        parse_settings(data)


def test_validate_names_an_unknown_instance_of_a_rule_and_of_a_source(tmp_path: Path) -> None:
    data = config(
        tmp_path,
        routing={"rules": [{"match": {"name": "x"}, "instance": "prd"}]},
    )
    data["sources"][0]["instance"] = "sandboxx"
    code, lines = run(write(tmp_path / "c.toml", data))
    assert code != 0
    assert (
        "routing.rules.0.instance: unknown IT Glue instance 'prd' (instances: prod, sandbox);"
        " did you mean 'prod'?"
    ) in lines
    assert (
        "sources[0].instance: unknown IT Glue instance 'sandboxx' (instances: prod, sandbox);"
        " did you mean 'sandbox'?"
    ) in lines


def test_validate_checks_the_key_of_every_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SANDBOX_ENV)
    code, lines = run(write(tmp_path / "c.toml", config(tmp_path)))
    assert code != 0
    problems = [line for line in lines if line.startswith("itglue")]
    assert len(problems) == 1
    assert problems[0].startswith("itglue.instances.sandbox: ")
    assert SANDBOX_ENV in problems[0]


def test_a_sound_two_instance_configuration_validates(tmp_path: Path) -> None:
    code, lines = run(write(tmp_path / "c.toml", config(tmp_path)))
    assert code == 0, lines


def test_instance_selects_what_auth_and_cache_commands_work_on(tmp_path: Path) -> None:
    import json

    from pipeline.commands.client import auth_status, cache_stats

    path = write(tmp_path / "c.toml", config(tmp_path))
    for args, name, env in (
        ([], "prod", PROD_ENV),
        (["--instance", "sandbox"], "sandbox", SANDBOX_ENV),
    ):
        out = CliRunner().invoke(auth_status, ["-c", str(path), "--json", *args])
        report = json.loads(out.output)
        assert (report["instance"], report["api_key_env"], report["configured"]) == (
            name,
            env,
            True,
        )
    out = CliRunner().invoke(cache_stats, ["-c", str(path), "--instance", "sandbox", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["database_path"] == str(tmp_path / "state" / "sandbox.db")
    out = CliRunner().invoke(cache_stats, ["-c", str(path), "--instance", "sandbx"])
    assert out.exit_code == 2
    assert (
        "unknown IT Glue instance 'sandbx' (instances: prod, sandbox); did you mean" in out.output
    )


def test_an_instance_without_a_key_setting_reads_its_own_keyring_entry(tmp_path: Path) -> None:
    from pipeline.commands.client import auth_set

    data = config(tmp_path)
    del data["itglue"]["instances"]["sandbox"]["api_key_env"]  # the keyring, user "sandbox"
    path = write(tmp_path / "c.toml", data)
    code, lines = run(path)
    assert code != 0
    assert any(line.startswith("itglue.instances.sandbox: ") for line in lines), lines

    out = CliRunner().invoke(
        auth_set, ["-c", str(path), "--instance", "sandbox", "--stdin"], input="a-key\n"
    )
    assert out.exit_code == 0, out.output
    assert "instance 'sandbox'" in out.output
    code, lines = run(path)
    assert code == 0, lines
