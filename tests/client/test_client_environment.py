"""The client takes proxies and the CA bundle from the environment as ``requests`` would.

The session does not read the environment per request (``trust_env`` off, see
``core_client.session``); these show that what ``requests`` would have taken from it still
applies: ``$HTTPS_PROXY`` for a remote host unless ``$NO_PROXY`` lists it, and
``$REQUESTS_CA_BUNDLE`` when no CA bundle is configured. A recording "proxy" on loopback
shows what reached it; the remote host is under ``.invalid``, which never resolves.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core_client import ITGlueClient
from core_client.exceptions import TransportError
from itglue_emulator import run_emulator
from tests.loopback_proxy import recording_proxy, set_proxy_env

REMOTE = "https://api.itglue.invalid"


def _client(tmp_path: Path, base_url: str, **kwargs: object) -> ITGlueClient:
    return ITGlueClient.from_instance(
        "environment",
        base_url=base_url,
        api_key="ITG.environment-test-key",
        state_dir=tmp_path / "state",
        max_retries=0,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_remote_host_goes_through_the_environment_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recording_proxy() as (proxy, received):
        set_proxy_env(monkeypatch, proxy)
        client = _client(tmp_path, REMOTE)
        try:
            for _ in range(2):  # the second request takes the proxy the first one found
                with pytest.raises(TransportError):
                    client.get_organization(1)
        finally:
            client.close()
    assert len(received) == 2
    assert all(r.startswith(b"CONNECT api.itglue.invalid:443 ") for r in received)
    assert not any(b"environment-test-key" in r for r in received)  # inside the tunnel


def test_no_proxy_exempts_a_remote_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with recording_proxy() as (proxy, received):
        set_proxy_env(monkeypatch, proxy)
        monkeypatch.setenv("NO_PROXY", ".itglue.invalid")
        client = _client(tmp_path, REMOTE)
        try:
            with pytest.raises(TransportError):  # straight to the host, which does not resolve
                client.get_organization(1)
        finally:
            client.close()
    assert received == []


def test_the_ca_bundle_of_the_environment_when_none_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_emulator(api_key="ITG.environment-test-key") as emu:
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        client = _client(tmp_path, emu.base_url)
        try:  # the emulator's own CA is nowhere in the system's store
            with pytest.raises(TransportError, match="SSLError"):
                client.create_organization("Untrusted")
        finally:
            client.close()
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emu.ca_file))
        client = _client(tmp_path, emu.base_url)
        try:
            assert client.create_organization("Trusted By Environment").id
        finally:
            client.close()
