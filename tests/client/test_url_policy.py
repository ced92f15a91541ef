"""HTTPS-only URL policy, loopback opt-in, and the constructor's endpoint choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from core_client import ConfigurationError, InsecureURLError, ITGlueClient
from core_client.transport import check_url
from itglue_common import is_loopback_host


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "localhost."],
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1.evil.com",
        "localhost.evil.com",
        "10.0.0.1",
        "0.0.0.0",  # noqa: S104 (a string under test, nothing binds)
        "api.itglue.com",
        "::2",
        "128.0.0.1",
    ],
)
def test_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)


def test_https_is_accepted_and_normalised() -> None:
    assert check_url("https://api.eu.itglue.com/") == "https://api.eu.itglue.com"
    assert check_url("HTTPS://h.example:8443/api/") == "https://h.example:8443/api"


def test_http_remote_refused_even_with_opt_in() -> None:
    with pytest.raises(InsecureURLError, match="unencrypted"):
        check_url("http://api.itglue.com", allow_insecure_loopback=True)


def test_http_loopback_needs_opt_in() -> None:
    with pytest.raises(InsecureURLError, match="allow_insecure_loopback=True"):
        check_url("http://127.0.0.1:8080")
    assert check_url("http://127.0.0.1:8080", allow_insecure_loopback=True) == (
        "http://127.0.0.1:8080"
    )
    assert check_url("http://[::1]:9", allow_insecure_loopback=True) == "http://[::1]:9"
    with pytest.raises(InsecureURLError):
        check_url("http://127.0.0.1.evil.com", allow_insecure_loopback=True)


@pytest.mark.parametrize(
    "url",
    ["ftp://x", "api.itglue.com", "https://", "https://u:p@h", "https://h/?q=1"],
)
def test_malformed_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        check_url(url)


def test_client_refuses_http(tmp_path: Path) -> None:
    with pytest.raises(InsecureURLError):
        ITGlueClient.from_instance(
            base_url="http://10.1.2.3", api_key="k-123456", state_dir=tmp_path
        )
    with pytest.raises(InsecureURLError):
        ITGlueClient.from_instance(
            base_url="http://127.0.0.1:1", api_key="k-123456", state_dir=tmp_path
        )


def test_client_regions(tmp_path: Path) -> None:
    for region, url in [
        ("us", "https://api.itglue.com"),
        ("eu", "https://api.eu.itglue.com"),
        ("au", "https://api.au.itglue.com"),
        (None, "https://api.itglue.com"),
    ]:
        with ITGlueClient.from_instance(
            "x", region=region, api_key="k-123456", state_dir=tmp_path
        ) as c:
            assert c.base_url == url
    with pytest.raises(ConfigurationError, match="unknown region"):
        ITGlueClient.from_instance(region="mars", api_key="k-123456", state_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="not both"):
        ITGlueClient.from_instance(
            region="eu", base_url="https://x", api_key="k-123456", state_dir=tmp_path
        )
    with pytest.raises(ConfigurationError, match="CA bundle"):
        ITGlueClient.from_instance(
            api_key="k-123456", state_dir=tmp_path, ca_bundle=tmp_path / "none.pem"
        )


def test_default_state_dir_is_platformdirs(tmp_path: Path) -> None:
    # tests/conftest.py points XDG_STATE_HOME at a private folder
    with ITGlueClient.from_instance("inst", api_key="k-123456") as c:
        assert c.state_dir.name == "itglue-ingest"
        assert (c.state_dir / "inst.ratelimit").exists()
