"""Plain ``http://`` to a loopback emulator never goes through an environment proxy.

The HTTPS rule allows ``http://`` only to a loopback host (with an explicit opt-in)
because such a request never leaves the machine. ``requests`` honours ``$HTTP_PROXY`` /
``$ALL_PROXY`` even for ``127.0.0.1`` unless ``$NO_PROXY`` lists it, so on a machine
with a proxy configured the request -- API key in clear -- would go to the proxy, off
the host. A recording "proxy" on loopback shows whether anything reached it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core_client import ITGlueClient
from itglue_emulator import run_emulator
from tests.loopback_proxy import recording_proxy, set_proxy_env

CANARY = "ITG.canary-proxy-5e3c1a9f7d2b4e6a"


def test_plain_loopback_requests_bypass_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recording_proxy() as (proxy, received), run_emulator(api_key=CANARY, tls=False) as emu:
        set_proxy_env(monkeypatch, proxy)
        client = ITGlueClient.from_instance(
            "proxy",
            base_url=emu.base_url,
            api_key=CANARY,
            allow_insecure_loopback=True,
            state_dir=tmp_path / "state",
            max_retries=0,
        )
        try:
            org = client.create_organization("Proxy Test")
            assert client.get_organization(org.id).name == "Proxy Test"
        finally:
            client.close()
    assert received == []
