"""Where the key comes from, and how a missing key is reported."""

from __future__ import annotations

import keyring
import keyring.backends.fail
import pytest

from core_client import ConfigurationError, ITGlueClient, MissingAPIKeyError
from core_client.auth import (
    api_key_status,
    delete_api_key,
    get_api_key,
    set_api_key,
)
from pipeline.testing import MemoryKeyring

# the keyring service users store the key under (`keyring set itglue-ingest <instance>`):
# spelled out, so that renaming the application shows up here
SERVICE = "itglue-ingest"


def test_explicit_key_wins(memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    memory_keyring.set_password(SERVICE, "prod", "from-keyring")
    monkeypatch.setenv("MY_KEY", "from-env")
    assert get_api_key("prod", api_key="explicit", api_key_env="MY_KEY").reveal() == "explicit"
    assert get_api_key("prod", api_key_env="MY_KEY").reveal() == "from-env"
    assert get_api_key("prod").reveal() == "from-keyring"


def test_keyring_per_instance(memory_keyring: MemoryKeyring) -> None:
    set_api_key("sandbox", "  ITG.sand-1234  ")
    assert memory_keyring.store[(SERVICE, "sandbox")] == "ITG.sand-1234"
    assert get_api_key("sandbox").reveal() == "ITG.sand-1234"
    with pytest.raises(MissingAPIKeyError):
        get_api_key("production")
    assert api_key_status("sandbox") == {
        "instance": "sandbox",
        "configured": True,
        "source": "keyring",
        "keyring_available": True,
        "problem": None,
    }
    assert delete_api_key("sandbox") is True
    assert delete_api_key("sandbox") is False
    assert api_key_status("sandbox")["configured"] is False


def test_missing_key_says_how_to_set_it(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        get_api_key("prod")
    msg = str(info.value)
    assert "itglue-ingest auth set --instance prod" in msg
    assert "ITGLUE_API_KEY" in msg
    with pytest.raises(MissingAPIKeyError) as info:
        get_api_key("prod", api_key_env="CI_ITGLUE_KEY")
    assert "CI_ITGLUE_KEY is not set" in str(info.value)
    assert "itglue-ingest auth set --instance prod" in str(info.value)


def test_env_var_does_not_fall_back_to_keyring(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password(SERVICE, "prod", "from-keyring")
    with pytest.raises(MissingAPIKeyError):
        get_api_key("prod", api_key_env="UNSET_VARIABLE_X")


def test_no_keyring_falls_back_to_env(monkeypatch: pytest.MonkeyPatch) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())  # the autouse fixture restores it
    with pytest.raises(MissingAPIKeyError, match="no system keyring is available"):
        get_api_key("prod")
    monkeypatch.setenv("ITGLUE_API_KEY", "env-key-123")
    assert get_api_key("prod").reveal() == "env-key-123"
    status = api_key_status("prod")
    assert status["keyring_available"] is False and status["source"] == "env:ITGLUE_API_KEY"
    with pytest.raises(ConfigurationError, match="no system keyring"):
        set_api_key("prod", "abcd-1234")


def test_bad_key_values_are_refused_without_echo(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(ConfigurationError) as info:
        get_api_key("x", api_key="ITG.se\ncret-777")
    assert "cret-777" not in str(info.value) and "whitespace" in str(info.value)
    with pytest.raises(MissingAPIKeyError):
        get_api_key("x", api_key="   ")


def test_client_reads_keyring(memory_keyring: MemoryKeyring, tmp_path: object) -> None:
    memory_keyring.set_password(SERVICE, "prod", "ITG.abc-123")
    with ITGlueClient.from_instance("prod", state_dir=str(tmp_path)) as c:
        assert repr(c) == "ITGlueClient(instance='prod', base_url='https://api.itglue.com')"
    with pytest.raises(MissingAPIKeyError):
        ITGlueClient.from_instance("other", state_dir=str(tmp_path))
