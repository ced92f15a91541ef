"""``itglue-ingest auth|cache|health`` through click's runner (auth: the memory keyring;
cache and health: the emulator over HTTPS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keyring
import pytest
from click.testing import CliRunner
from keyring.backends.fail import Keyring as FailKeyring

from pipeline.commands.client import auth
from pipeline.testing import MemoryKeyring
from tests.conftest import DatabaseFactory

SERVICE = "itglue-ingest"
KEY = "ITG.canary-4f1e9b2c7d"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_auth_set_prompts_without_echo_and_stores(
    runner: CliRunner, memory_keyring: MemoryKeyring
) -> None:
    result = runner.invoke(auth, ["set", "--instance", "prod"], input=f"{KEY}\n{KEY}\n")
    assert result.exit_code == 0, result.output
    assert memory_keyring.store[(SERVICE, "prod")] == KEY
    assert KEY not in result.output
    assert "stored in the keyring for instance 'prod'" in result.stdout


def test_auth_set_asks_again_when_the_confirmation_differs(
    runner: CliRunner, memory_keyring: MemoryKeyring
) -> None:
    result = runner.invoke(auth, ["set", "--instance", "p"], input=f"one\ntwo\n{KEY}\n{KEY}\n")
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    assert memory_keyring.store[(SERVICE, "p")] == KEY


def test_auth_set_from_stdin_and_instance_from_config(
    runner: CliRunner, memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[itglue]\ninstance = "sandbox"\n')
    result = runner.invoke(auth, ["set", "-c", str(config), "--stdin"], input=f"  {KEY}  \n")
    assert result.exit_code == 0, result.output
    assert memory_keyring.store[(SERVICE, "sandbox")] == KEY


def test_auth_set_refuses_a_key_with_spaces(
    runner: CliRunner, memory_keyring: MemoryKeyring
) -> None:
    result = runner.invoke(auth, ["set", "--stdin"], input="two words\n")
    assert result.exit_code == 1
    assert "whitespace" in result.output and "two words" not in result.output
    assert memory_keyring.store == {}


def test_auth_status_and_delete(
    runner: CliRunner, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory_keyring.store[(SERVICE, "prod")] = KEY
    result = runner.invoke(auth, ["status", "--instance", "prod"])
    assert result.exit_code == 0, result.output
    assert "key stored" in result.output and "the client uses: keyring" in result.output
    assert KEY not in result.output

    monkeypatch.setenv("MY_ITGLUE_KEY", KEY)
    result = runner.invoke(
        auth, ["status", "--instance", "prod", "--api-key-env", "MY_ITGLUE_KEY", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["keyring_key_stored"] is True
    assert report["api_key_env_set"] is True
    assert report["source"] == "env:MY_ITGLUE_KEY"
    assert KEY not in result.output

    result = runner.invoke(auth, ["delete", "--instance", "prod"])
    assert result.exit_code == 0 and "deleted" in result.output
    assert (SERVICE, "prod") not in memory_keyring.store
    result = runner.invoke(auth, ["delete", "--instance", "prod"])
    assert result.exit_code == 0 and "No API key stored" in result.output

    result = runner.invoke(auth, ["status", "--instance", "prod"])
    assert result.exit_code == 1
    assert "no key found" in result.output and "auth set --instance prod" in result.output


def test_auth_status_reports_an_unset_variable(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UNSET_ITGLUE_KEY", raising=False)
    config = tmp_path / "c.toml"
    config.write_text('[itglue]\ninstance = "ci"\napi_key_env = "UNSET_ITGLUE_KEY"\n')
    result = runner.invoke(auth, ["status", "-c", str(config), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["instance"] == "ci" and report["api_key_env_set"] is False
    assert report["configured"] is False and "UNSET_ITGLUE_KEY" in report["problem"]


def test_auth_without_a_keyring_backend_says_what_to_do(
    runner: CliRunner, memory_keyring: MemoryKeyring
) -> None:
    keyring.set_keyring(FailKeyring())  # memory_keyring restores the previous one after
    result = runner.invoke(auth, ["set", "--instance", "srv"], input=f"{KEY}\n{KEY}\n")
    assert result.exit_code == 1
    assert "no system keyring" in result.output and "api_key_env" in result.output
    assert KEY not in result.output
    result = runner.invoke(auth, ["status", "--instance", "srv"])
    assert result.exit_code == 1
    assert "keyring:         unavailable" in result.output
    assert "configure api_key_env or api_key_file" in result.output
    result = runner.invoke(auth, ["delete", "--instance", "srv"])
    assert result.exit_code == 0


def test_a_bad_config_file_is_a_clean_error(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[itglue]\ninstanse = "typo"\n')
    result = runner.invoke(auth, ["status", "-c", str(config)])
    assert result.exit_code == 2
    assert "itglue.instanse" in result.output and "Traceback" not in result.output
    result = runner.invoke(auth, ["status", "-c", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "cannot read configuration" in result.output


# -- cache stats / vacuum (no API needed) ----------------------------------------------


def _write_config(tmp_path: Path, **itglue: str) -> Path:
    lines = ["[itglue]"] + [f'{k} = "{v}"' for k, v in itglue.items()]
    lines += ["[state]", f'dir = "{tmp_path / "state"}"']
    config = tmp_path / "itglue-ingest.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def test_cache_stats_and_vacuum_on_a_filled_cache(
    runner: CliRunner, state_config: Path, make_database: DatabaseFactory
) -> None:
    from core_client.cache import MetadataCache
    from pipeline.commands.client import cache

    config = state_config
    with MetadataCache(make_database("cache")) as c:
        where = c.db.describe()
        c.refresh_organizations(
            {"id": str(i), "attributes": {"name": f"Org {i}", "notes": "n" * 400}}
            for i in range(2000)
        )
        c.refresh_organizations([{"id": "1", "attributes": {"name": "Only"}}])
        c.record_document("5", sha256="ab" * 32, size=3, organization_id="1", name="x.pdf")
        c.find_organization_by_name("only")

    result = runner.invoke(cache, ["stats", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["organization_count"] == 1 and stats["document_count"] == 1
    assert stats["hits"] == 1 and stats["cache_hit_rate"] == 1.0
    assert stats["last_refresh"]["organizations"] is not None
    assert stats["database_path"] == where
    size_before = stats["size_bytes"]

    result = runner.invoke(cache, ["stats", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "organizations:" in result.output and "hit ratio 100.0%" in result.output

    result = runner.invoke(cache, ["vacuum", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "vacuumed" in result.output
    postgresql = make_database("inspect").dialect == "postgresql"
    # PostgreSQL keeps the freed space for reuse, and says how to give it back
    assert ("VACUUM FULL" in result.output) == postgresql
    result = runner.invoke(cache, ["stats", "-c", str(config), "--json"])
    size_after = json.loads(result.stdout)["size_bytes"]
    assert size_after < size_before
    if not postgresql:
        assert size_after < 2000 * 400  # the deleted rows' pages were given back


def test_cache_stats_without_a_config_file(runner: CliRunner, tmp_path: Path) -> None:
    from pipeline.commands.client import cache

    state = tmp_path / "elsewhere"
    result = runner.invoke(
        cache, ["stats", "--instance", "solo", "--state-dir", str(state), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["database_path"] == str(state / "solo.db")
    assert (state / "solo.db").stat().st_mode & 0o077 == 0


# -- against the emulator --------------------------------------------------------------


@pytest.fixture
def emu_config(itglue_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ITGLUE_CLI_TEST_KEY", itglue_emulator.api_key)
    return _write_config(
        tmp_path,
        instance="emu",
        base_url=itglue_emulator.base_url,
        ca_bundle=str(itglue_emulator.ca_file),
        api_key_env="ITGLUE_CLI_TEST_KEY",
    )


def test_cache_refresh_streams_every_kind_then_stats_shows_them(
    runner: CliRunner, emu_config: Path, itglue_emulator: Any
) -> None:
    from pipeline.commands.client import cache

    itglue_emulator.seed({"organizations": 2500, "configurations": 30, "contacts": 20})
    result = runner.invoke(cache, ["refresh", "-c", str(emu_config)])
    assert result.exit_code == 0, result.output
    assert "organizations: 2500 records" in result.stdout
    assert "configurations: 30 records" in result.stdout
    assert "contacts: 20 records" in result.stdout
    assert "documents: none cached yet" in result.stdout  # nothing uploaded yet

    result = runner.invoke(cache, ["stats", "-c", str(emu_config), "--json"])
    stats = json.loads(result.stdout)
    assert (stats["organization_count"], stats["configuration_count"]) == (2500, 30)
    assert stats["contact_count"] == 20
    assert stats["last_refresh"]["organizations"] and not stats["last_refresh"]["documents"]

    # fresh kinds are skipped with --max-age; --kind limits the refresh
    result = runner.invoke(
        cache, ["refresh", "-c", str(emu_config), "--kind", "organizations", "--max-age", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "organizations: fresh" in result.stdout and "contacts" not in result.stdout


def test_cache_refresh_of_documents(
    runner: CliRunner, emu_config: Path, itglue_emulator: Any, tmp_path: Path
) -> None:
    from core_client.cache import MetadataCache
    from pipeline.commands.client import cache

    itglue_emulator.seed({"organizations": 4, "documents": 10})
    args = ["refresh", "-c", str(emu_config)]
    assert runner.invoke(cache, [*args, "--kind", "organizations"]).exit_code == 0
    result = runner.invoke(cache, [*args, "--kind", "documents", "--all-organizations"])
    assert result.exit_code == 0, result.output
    assert "documents: 10 records from 4 organizations" in result.stdout
    db = tmp_path / "state" / "emu.db"
    with MetadataCache(db) as c:
        org_ids = c.ids("organizations")
        first_doc = c.ids("documents", organization_id=org_ids[0])[0]
        c.record_document(first_doc, sha256="cd" * 32, size=7)
        c.record_document("77", sha256="ef" * 32, size=1, organization_id=org_ids[0])
        assert c.document_organizations() == org_ids

    # the default refreshes documents per organization holding cached documents;
    # "77" (not in IT Glue any more) goes, the recorded hash of first_doc stays
    result = runner.invoke(cache, [*args, "--kind", "documents"])
    assert result.exit_code == 0, result.output
    assert "from 4 organizations with cached documents" in result.stdout
    with MetadataCache(db) as c:
        assert c.get_cached_document("77") is None
        assert [d.id for d in c.find_documents_by_hash("cd" * 32)] == [first_doc]
        assert c.get_statistics()["document_count"] == 10
    result = runner.invoke(cache, [*args, "--kind", "documents", "--max-age", "1"])
    assert "documents: fresh" in result.stdout


def test_cache_refresh_shows_rich_progress_on_a_terminal(
    runner: CliRunner, emu_config: Path, itglue_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.commands import client as commands

    monkeypatch.setattr(commands, "is_tty", lambda: True)
    itglue_emulator.seed({"organizations": 1200})
    result = runner.invoke(
        commands.cache, ["refresh", "-c", str(emu_config), "--kind", "organizations"]
    )
    assert result.exit_code == 0, result.output
    assert "organizations: 1200 records" in result.stdout
    assert "records" in result.stderr  # the progress line (rich, on stderr)


def test_cache_refresh_failure_keeps_the_cache_and_exits_1(
    runner: CliRunner, emu_config: Path, itglue_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.commands.client import cache

    itglue_emulator.seed({"organizations": 3})
    assert runner.invoke(cache, ["refresh", "-c", str(emu_config)]).exit_code == 0
    monkeypatch.setenv("ITGLUE_CLI_TEST_KEY", "ITG.wrong-key")
    result = runner.invoke(cache, ["refresh", "-c", str(emu_config), "--kind", "organizations"])
    assert result.exit_code == 1
    assert "refresh failed, cached data kept" in result.stderr
    assert "ITG.wrong-key" not in result.output
    stats = json.loads(runner.invoke(cache, ["stats", "-c", str(emu_config), "--json"]).stdout)
    assert stats["organization_count"] == 3


def test_health_json_reports_api_breaker_limiter_and_cache(
    runner: CliRunner, emu_config: Path, itglue_emulator: Any
) -> None:
    from pipeline.commands.client import health

    result = runner.invoke(health, ["-c", str(emu_config), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "healthy" and report["api_key_valid"] is True
    assert report["response_time_ms"] >= 0
    assert report["circuit_breaker"]["state"] == "closed"
    assert "rate_limiter" in report and report["cache"]["organization_count"] == 0
    assert itglue_emulator.api_key not in result.output
    assert report["daemon"] == {"state": "never_ran"}  # the running daemon, if any

    result = runner.invoke(health, ["-c", str(emu_config)])
    assert result.exit_code == 0 and "status:          healthy" in result.stdout
    assert "daemon: not running (it never ran on this state folder)" in result.stdout


def test_health_is_unhealthy_with_a_bad_key_or_a_down_api(
    runner: CliRunner, emu_config: Path, itglue_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.commands.client import health

    monkeypatch.setenv("ITGLUE_CLI_TEST_KEY", "ITG.wrong-key")
    result = runner.invoke(health, ["-c", str(emu_config), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "unhealthy" and report["api_key_valid"] is False
    assert "ITG.wrong-key" not in result.output


def test_health_without_a_key_is_a_configuration_error(
    runner: CliRunner, itglue_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.commands.client import health

    monkeypatch.delenv("ITGLUE_CLI_TEST_KEY", raising=False)
    args = [
        "--instance", "nokey", "--base-url", itglue_emulator.base_url,
        "--ca-bundle", str(itglue_emulator.ca_file), "--api-key-env", "ITGLUE_CLI_TEST_KEY",
        "--state-dir", str(tmp_path / "s"),
    ]  # fmt: skip
    result = runner.invoke(health, args)
    assert result.exit_code == 2
    assert "ITGLUE_CLI_TEST_KEY is not set" in result.output and "Traceback" not in result.output
    result = runner.invoke(health, [*args, "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["status"] == "unhealthy"

    # the same options, with the key: healthy without any config file
    monkeypatch.setenv("ITGLUE_CLI_TEST_KEY", itglue_emulator.api_key)
    assert runner.invoke(health, args).exit_code == 0


def test_the_installed_command_runs_health_and_cache_stats(
    emu_config: Path, itglue_emulator: Any
) -> None:
    """Through the real entry point (all command modules loaded, logging set up)."""
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("itglue-ingest")
    env = {**os.environ}
    health = subprocess.run(
        [str(exe), "--log-level", "DEBUG", "health", "-c", str(emu_config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout)["status"] == "healthy"
    assert itglue_emulator.api_key not in health.stdout + health.stderr
    stats = subprocess.run(
        [str(exe), "cache", "stats", "-c", str(emu_config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert stats.returncode == 0, stats.stderr
    assert "organizations:" in stats.stdout
