"""The one loopback rule (itglue_common.net) and the proxy choice that follows from it."""

from __future__ import annotations

import pytest

from itglue_common import is_loopback_host, proxies_for
from plugins.http_feed.values import url_problem
from plugins.imap.options import ImapOptions

LOOPBACK = [
    "127.0.0.1",
    "127.1.2.3",
    "127.255.255.254",
    "::1",
    "[::1]",
    "0:0:0:0:0:0:0:1",
    "::ffff:127.0.0.1",  # IPv4-mapped: reaches 127.0.0.1
    "localhost",
    "LOCALHOST",
    "localhost.",  # fully qualified: the same host
    " localhost ",
]

NOT_LOOPBACK = [
    "",
    ".",
    "127.0.0.1.evil.com",
    "127.0.0.1.",  # not an IP literal: getaddrinfo asks DNS, which may answer anything
    "localhost.evil.com",
    "evil-localhost",
    "localhost..",
    "10.0.0.1",
    "0.0.0.0",  # noqa: S104 (a string under test, nothing binds)
    "::",
    "::2",
    "::ffff:10.0.0.1",
    "128.0.0.1",
    "api.itglue.com",
    "127.1",  # inet_aton shorthand: refused rather than guessed
]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/api",
        "http://localhost.:8080/",
        "https://[::1]:9/x",
        "http://user@LOCALHOST/",
    ],
)
def test_no_proxy_at_all_for_loopback(url: str) -> None:
    # requests drops None entries after merging the environment: "no proxy" for this call
    assert proxies_for(url) == {"http": None, "https": None, "all": None}


@pytest.mark.parametrize(
    "url", ["https://api.itglue.com/", "http://127.0.0.1.evil.com/", "not a url", "http://[::1/"]
)
def test_other_urls_leave_the_proxy_to_the_environment(url: str) -> None:
    assert proxies_for(url) is None


def test_the_mapping_is_a_fresh_copy() -> None:
    first = proxies_for("http://127.0.0.1/")
    assert first is not None
    first["http"] = "http://proxy.example:3128"
    assert proxies_for("http://127.0.0.1/") == {"http": None, "https": None, "all": None}


# -- the callers that used to have their own copy ----------------------------------------


def test_http_feed_allows_plain_http_to_fully_qualified_localhost() -> None:
    # its copy compared the host with "localhost" only, so "localhost." was refused
    assert url_problem("http://localhost.:8080/feed", allow_insecure_loopback=True) is None
    assert url_problem("http://[::ffff:127.0.0.1]:8080/", allow_insecure_loopback=True) is None
    assert url_problem("http://localhost.evil.com/", allow_insecure_loopback=True) is not None


def test_imap_allows_plain_text_to_fully_qualified_localhost() -> None:
    # its copy compared the host with "localhost" only, so "localhost." was refused
    opts = ImapOptions.model_validate(
        {
            "host": "localhost.",
            "security": "plain",
            "allow_insecure_loopback": True,
            "username": "u",
            "folders": ["INBOX"],
        }
    )
    assert opts.host == "localhost."
    with pytest.raises(ValueError, match="loopback"):
        ImapOptions.model_validate(
            {
                "host": "localhost.evil.com",
                "security": "plain",
                "allow_insecure_loopback": True,
                "username": "u",
                "folders": ["INBOX"],
            }
        )
