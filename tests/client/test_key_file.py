"""``api_key_file``: the key in a file only its owner can read (systemd credentials,
container secrets), and advice that matches a machine without a keyring."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest
from click.testing import CliRunner

from core_client import ConfigurationError, ITGlueClient, MissingAPIKeyError
from core_client.auth import api_key_status, get_api_key, read_key_file, set_api_key
from pipeline.clients import build_client
from pipeline.commands.client import auth, health
from pipeline.settings import ConfigError, load_settings
from tests.secret_canary import CaptureAll, capture_debug_logs, describe

CANARY = "ITG.keyfile-canary-93b1f07c5ad2e6"


def key_file(tmp_path: Path, mode: int, content: str = CANARY + "\n") -> Path:
    path = tmp_path / "api-key"
    path.write_text(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_an_owner_only_file_is_read_without_its_newline(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path, mode)
    assert get_api_key("prod", api_key_file=path).reveal() == CANARY
    assert api_key_status("prod", api_key_file=path)["source"] == f"file:{path}"


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604])
def test_a_file_others_can_read_is_refused_in_one_line(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path, mode)
    with pytest.raises(ConfigurationError) as info:
        get_api_key("prod", api_key_file=path)
    message = str(info.value)
    assert "\n" not in message
    assert f"mode {mode:04o}" in message and f"chmod 600 {path}" in message
    rendered = describe(info.value)  # before the assertion: its own locals hold the canary
    assert CANARY[8:] not in rendered
    status = api_key_status("prod", api_key_file=path)
    assert status["configured"] is False and status["problem"] == message


def test_missing_empty_and_unusable_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(MissingAPIKeyError, match="does not exist"):
        get_api_key("prod", api_key_file=tmp_path / "nope")
    with pytest.raises(MissingAPIKeyError, match="is empty"):
        get_api_key("prod", api_key_file=key_file(tmp_path, 0o600, "\n"))
    with pytest.raises(ConfigurationError, match="not a regular file"):
        get_api_key("prod", api_key_file=tmp_path)
    # a key with a space inside, or bytes that are not text: refused, never echoed
    for content in ("ITG.two secret-words\n", "ITG.\xff\xfesecret-words"):
        path = key_file(tmp_path, 0o600)
        path.write_bytes(content.encode("latin-1"))
        assert "secret-words" not in _refusal(path)


def _refusal(path: Path) -> str:
    """The refusal of ``path`` rendered every way (only this frame's locals: no key here)."""
    with pytest.raises(ConfigurationError) as info:
        get_api_key("prod", api_key_file=path)
    return describe(info.value)


def test_a_key_file_is_used_instead_of_the_keyring_not_with_api_key_env(tmp_path: Path) -> None:
    set_api_key("prod", "ITG.from-the-keyring")
    path = key_file(tmp_path, 0o600)
    assert get_api_key("prod", api_key_file=path).reveal() == CANARY
    with pytest.raises(MissingAPIKeyError):  # configured on purpose: no fallback
        get_api_key("prod", api_key_file=tmp_path / "missing")
    with pytest.raises(ConfigurationError, match="not both"):
        get_api_key("prod", api_key_file=path, api_key_env="SOME_VAR")


def test_systemd_credentials_directory_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file(tmp_path, 0o400)
    configured = "${CREDENTIALS_DIRECTORY}/api-key"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(
        MissingAPIKeyError, match=r"CREDENTIALS_DIRECTORY is not set.*LoadCredential"
    ):
        read_key_file(configured)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_key_file(configured).reveal() == CANARY


def test_settings_resolve_a_relative_file_and_keep_a_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[itglue]\napi_key_file = "secrets/key"\n')
    assert load_settings(config).itglue.api_key_file == str(tmp_path / "secrets" / "key")
    # the variable exists only in the service: a shell command must still load the file
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    config.write_text('[itglue]\napi_key_file = "${CREDENTIALS_DIRECTORY}/k"\n')
    assert load_settings(config).itglue.api_key_file == "${CREDENTIALS_DIRECTORY}/k"
    config.write_text('[itglue]\napi_key_file = "/k"\napi_key_env = "K"\n')
    with pytest.raises(ConfigError, match="either api_key_env or api_key_file"):
        load_settings(config)


def _config(tmp_path: Path, emu: Any, key_path: Path) -> Path:
    config = tmp_path / "itglue-ingest.toml"
    config.write_text(
        '[itglue]\ninstance = "filekey"\n'
        f'base_url = "{emu.base_url}"\nca_bundle = "{emu.ca_file}"\n'
        f'api_key_file = "{key_path}"\n[state]\ndir = "{tmp_path / "state"}"\n'
    )
    return config


def test_the_pipeline_client_and_the_cli_use_the_file(
    tmp_path: Path, itglue_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = key_file(tmp_path, 0o600, itglue_emulator.api_key + "\n")
    config = _config(tmp_path, itglue_emulator, path)
    with capture_debug_logs(CaptureAll()) as logs:
        client: ITGlueClient = build_client(load_settings(config))
        with client:
            assert client.health_check().api_key_valid is True
    assert logs.count and not any(itglue_emulator.api_key in t for t in logs.texts)
    runner = CliRunner()
    result = runner.invoke(auth, ["status", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"] == f"file:{path}" and report["api_key_file_usable"] is True

    path.chmod(0o644)
    result = runner.invoke(auth, ["status", "-c", str(config)])
    assert result.exit_code == 1
    assert "(NOT usable: api_key_file" in result.output and "chmod 600" in result.output
    result = runner.invoke(health, ["-c", str(config)])
    assert result.exit_code == 2 and "readable by its group or others" in result.output
    assert itglue_emulator.api_key not in result.output
    # --api-key-env on the command line replaces the configured file
    monkeypatch.setenv("KEY_FROM_CLI", itglue_emulator.api_key)
    result = runner.invoke(health, ["-c", str(config), "--api-key-env", "KEY_FROM_CLI"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("backend", [keyring.backends.fail.Keyring, keyring.backends.null.Keyring])
def test_without_a_keyring_the_advice_is_the_file_or_the_variable(
    backend: type[Any], tmp_path: Path
) -> None:
    keyring.set_keyring(backend())  # the autouse fixture restores it
    with pytest.raises(MissingAPIKeyError) as info:
        get_api_key("prod")
    message = str(info.value)
    assert "auth set" not in message
    assert "no usable keyring" in message and "api_key_file" in message
    assert "api_key_env" in message
    assert api_key_status("prod")["keyring_available"] is False
    result = CliRunner().invoke(auth, ["status", "--instance", "prod"])
    assert result.exit_code == 1
    assert "configure api_key_env or api_key_file (no keyring on this machine)" in result.output


def test_with_a_keyring_the_advice_starts_with_auth_set() -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        get_api_key("prod")
    assert "itglue-ingest auth set --instance prod" in str(info.value)
    assert "api_key_file" in str(info.value)


def test_the_key_file_check_is_on_the_file_read(tmp_path: Path) -> None:
    """A symlink to an owner-only file is fine; what counts is the file behind it."""
    target = key_file(tmp_path, 0o600)
    link = tmp_path / "link"
    link.symlink_to(target)
    assert os.stat(link).st_mode & 0o077 == 0
    assert get_api_key("prod", api_key_file=link).reveal() == CANARY
    target.chmod(0o640)
    with pytest.raises(ConfigurationError, match="readable by its group"):
        get_api_key("prod", api_key_file=link)


def test_a_systemd_credential_with_its_acl_mode_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd grants the service user read access to a credential with an ACL entry,
    which stat shows as group bits (0440); its folder is closed to others."""
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o750)
    credentials.chmod(0o750)
    path = key_file(credentials, 0o440)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert read_key_file("${CREDENTIALS_DIRECTORY}/api-key").reveal() == CANARY
    # a folder others can enter is no systemd credentials folder
    credentials.chmod(0o755)
    with pytest.raises(ConfigurationError, match="readable by its group or others"):
        read_key_file(path)
    # nor is the same file named outside it
    credentials.chmod(0o750)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(ConfigurationError, match="readable by its group or others"):
        read_key_file(path)
