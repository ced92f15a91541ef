"""Pure logic of the http_feed source (in-process): dotted paths, timestamps,
the HTTPS rule, and what the updated-at checkpoint may advance to."""

from __future__ import annotations

import re

import pytest

from pipeline import text_to_html
from plugins.http_feed.checkpoint import Watermark
from plugins.http_feed.options import HttpFeedOptions
from plugins.http_feed.values import (
    MISSING,
    lookup,
    parse_timestamp,
    safe_file_name,
    url_problem,
)


def test_lookup_dotted_paths() -> None:
    doc = {"a": {"b": [{"c": 1}, {"c": 2}]}, "x.y": 3}
    assert lookup(doc, "") is doc
    assert lookup(doc, "a.b.1.c") == 2
    assert lookup(doc, "a.b.-1.c") == 2
    assert lookup(doc, "a.b.5.c") is MISSING
    assert lookup(doc, "a.missing") is MISSING
    assert lookup(doc, "a.b.c") is MISSING  # a list needs an index
    assert lookup([1, 2], "0") == 1


def test_parse_timestamp() -> None:
    assert parse_timestamp("2026-01-01T00:00:00Z") == parse_timestamp("2026-01-01T01:00:00+01:00")
    assert parse_timestamp("2026-01-01T00:00:00") == parse_timestamp("2026-01-01T00:00:00Z")
    assert parse_timestamp(1700000000) == 1700000000.0
    assert parse_timestamp("1700000000.5") == 1700000000.5
    assert parse_timestamp(True) is None
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp(None) is None


def test_url_problem() -> None:
    assert url_problem("https://feed.example.com/x", False) is None
    assert url_problem("http://127.0.0.1:8080/x", True) is None
    assert url_problem("http://localhost/x", True) is None
    assert url_problem("http://[::1]/x", True) is None
    assert "allow_insecure_loopback" in (url_problem("http://127.0.0.1/x", False) or "")
    assert url_problem("http://10.0.0.1/x", True) == "refusing http:// to 10.0.0.1: HTTPS only"
    assert "scheme 'ftp'" in (url_problem("ftp://example.com/x", True) or "")
    assert "credentials" in (url_problem("https://u:p@example.com/x", False) or "")
    assert "not an absolute URL" in (url_problem("/relative", False) or "")


def test_watermark_advances_to_the_highest_done_but_not_past_a_deferred_item() -> None:
    m = Watermark(saved=None)
    m.done(1.0, "t1")
    m.deferred(2.0, "t2")
    m.done(3.0, "t3")
    assert m.candidate(complete=True) == "t2"
    m2 = Watermark(saved=None)
    m2.done(1.0, "t1")
    m2.done(3.0, "t3")
    assert m2.candidate(complete=False) == "t3"  # ascending so far: safe mid-feed
    assert m2.candidate(complete=True) is None  # already saved, nothing newer


def test_watermark_waits_for_the_end_of_an_unsorted_feed() -> None:
    m = Watermark(saved=0.5)
    m.done(3.0, "t3")
    m.done(1.0, "t1")  # not ascending: later pages may hold older items
    assert m.candidate(complete=False) is None
    assert m.candidate(complete=True) == "t3"
    old = Watermark(saved=5.0)
    old.done(3.0, "t3")
    assert old.candidate(complete=True) is None  # never moves backwards


def test_file_names_and_text() -> None:
    assert safe_file_name("../../etc/passwd", "x") == "passwd"
    assert safe_file_name("a\\b\\report\x00.pdf", "x") == "report.pdf"
    assert safe_file_name("..", "fallback") == "fallback"
    assert text_to_html("a <b>\nc\n\nd") == "<p>a &lt;b&gt;<br>c</p><p>d</p>"


def test_options_validation_names_the_problem() -> None:
    base = {"url": "https://feed.example.com/api", "fields": {"file_url": "url"}}
    HttpFeedOptions.model_validate(base)
    with pytest.raises(ValueError, match=re.escape("map at least one of fields.file_url")):
        HttpFeedOptions.model_validate({**base, "fields": {"id": "id"}})
    with pytest.raises(
        ValueError, match=re.escape('checkpoint "updated_at" needs fields.updated_at')
    ):
        HttpFeedOptions.model_validate({**base, "checkpoint": "updated_at"})
    with pytest.raises(ValueError, match=re.escape('checkpoint "cursor" needs pagination.style')):
        HttpFeedOptions.model_validate(
            {**base, "checkpoint": "cursor", "pagination": {"style": "page"}}
        )
    with pytest.raises(ValueError, match="since_param needs"):
        HttpFeedOptions.model_validate({**base, "since_param": "since"})
    with pytest.raises(ValueError, match=re.escape('auth.type "header" needs auth.header')):
        HttpFeedOptions.model_validate({**base, "auth": {"type": "header"}})
    with pytest.raises(ValueError, match="next_path"):
        HttpFeedOptions.model_validate({**base, "pagination": {"style": "next_link"}})
    opts = HttpFeedOptions.model_validate(
        {**base, "fields": {"file_url": "url", "updated_at": "modified"}}
    )
    assert opts.checkpoint_mode == "updated_at"


# ----------------------------------------------------------------- nesting depth


def test_parse_page_cuts_exactly_what_is_too_deep() -> None:
    from plugins.http_feed.parsing import MAX_DEPTH, TOO_DEEP, contains_too_deep, parse_page

    def arrays(n: int) -> str:
        return "[" * n + "]" * n

    doc, cut = parse_page(arrays(MAX_DEPTH).encode())
    assert not cut and not contains_too_deep(doc)
    doc, cut = parse_page(arrays(MAX_DEPTH + 1).encode())
    assert cut and contains_too_deep(doc)
    # levels MAX_DEPTH + 1 and deeper become one stand-in; siblings stay as they are
    text = '{"a": [' + "[" * 200 + '"x"' + "]" * 200 + ', {"b": 1}], "c": "[[[["}'
    doc, cut = parse_page(text.encode())
    inner = doc["a"][0]  # level 3
    for _ in range(MAX_DEPTH - 3):  # down to level MAX_DEPTH
        inner = inner[0]
    assert len(inner) == 1 and inner[0] is TOO_DEEP
    assert doc["a"][1] == {"b": 1} and doc["c"] == "[[[["


def test_parse_page_counts_no_brackets_inside_strings() -> None:
    from plugins.http_feed.parsing import MAX_DEPTH, parse_page

    hostile_text = "[" * 5000 + '\\"' + "{" * 5000  # brackets and an escaped quote
    body = '[{"id": 1, "note": "' + hostile_text + '"}]' + " " * 10
    doc, cut = parse_page(body.encode())
    assert not cut and doc[0]["note"] == hostile_text.replace('\\"', '"')
    body = "[" + ",".join(["[]"] * (MAX_DEPTH * 3)) + "]"  # many brackets, shallow
    assert parse_page(body.encode())[1] is False


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b"[" * 100_000 + b"}" * 100_000, b"]" * 5 + b"[" * 5000, b"<html>"],
)
def test_parse_page_rejects_what_is_not_json_without_recursing(body: bytes) -> None:
    from plugins.http_feed.parsing import parse_page

    with pytest.raises(ValueError):
        parse_page(body)


def test_parse_page_reads_utf16_and_a_bom() -> None:
    from plugins.http_feed.parsing import parse_page

    assert parse_page('[{"a": "é"}]'.encode("utf-16"))[0] == [{"a": "é"}]
    assert parse_page(b"\xef\xbb\xbf[1]")[0] == [1]


# ----------------------------------------------------------------- where the feed may send us


@pytest.mark.parametrize(
    ("ip", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "unique-local"),
        ("fd12:3456::1", "unique-local"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address to classify, not to bind)
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "non-public"),  # shared (carrier-grade NAT)
        ("240.0.0.1", "private"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_kinds(ip: str, kind: str | None) -> None:
    from plugins.http_feed.guard import address_kind

    assert address_kind(ip) == kind


def test_host_policy_hosts() -> None:
    from plugins.http_feed.guard import HostPolicy

    policy = HostPolicy(
        "https://feed.example.com/api",
        ["files.example.com", "cdn.example.net:8443", "*.blob.example.org", "[2001:db8::1]"],
        allow_loopback=False,
    )
    ok = [
        "https://feed.example.com/x",
        "https://FEED.example.com:443/x",
        "https://files.example.com/a.pdf",
        "https://cdn.example.net:8443/a.pdf",
        "https://eu.blob.example.org/a.pdf",
        "https://[2001:db8::1]/a.pdf",
    ]
    refused = [
        "https://feed.example.com:8443/x",  # another port of the feed's host
        "http://feed.example.com:443/x",  # another scheme
        "https://files.example.com:8443/a.pdf",  # no port listed: the default only
        "https://cdn.example.net/a.pdf",
        "https://blob.example.org/a.pdf",  # *.domain: subdomains only
        "https://evilblob.example.org/a.pdf",
        "https://127.0.0.1/a.pdf",
        "https://169.254.169.254/latest/meta-data",
    ]
    assert [u for u in ok if policy.host_problem(u)] == []
    assert [u for u in refused if not policy.host_problem(u)] == []
    assert policy.host_problem("https://10.0.0.1:8080/x") == (
        "10.0.0.1:8080 is not the feed's host; list it in download_hosts to allow it"
    )


def test_host_policy_addresses() -> None:
    from plugins.http_feed.guard import HostPolicy

    policy = HostPolicy("https://10.0.0.5/api", ["files.corp", "*.example.com"], False)
    # named exactly (the feed, an exact entry): its addresses are trusted
    assert policy.address_problem("https", "10.0.0.5", 443, "10.0.0.5") is None
    assert policy.address_problem("https", "files.corp", 443, "192.168.1.9") is None
    # a wildcard names no address
    assert policy.address_problem("https", "a.example.com", 443, "93.184.216.34") is None
    problem = policy.address_problem("https", "a.example.com", 443, "169.254.169.254")
    assert problem == (
        "a.example.com resolves to a link-local address (169.254.169.254); refused unless "
        "download_hosts names the host exactly"
    )
    assert "allow_insecure_loopback" in (
        policy.address_problem("https", "a.example.com", 443, "127.0.0.1") or ""
    )
    loopback_ok = HostPolicy("https://10.0.0.5/api", ["*"], allow_loopback=True)
    assert loopback_ok.address_problem("https", "x.test", 443, "::1") is None
    assert loopback_ok.address_problem("https", "x.test", 443, "10.1.1.1") is not None


@pytest.mark.parametrize(
    "entry", ["", "exa mple.com", "http://x.com", "x.com:0", "x.com:99999", "::1", "[zz]", "*x.com"]
)
def test_download_hosts_entries_are_checked(entry: str) -> None:
    with pytest.raises(ValueError, match="download_hosts"):
        HttpFeedOptions.model_validate(
            {
                "name": "f",
                "type": "http_feed",
                "url": "https://feed.example.com",
                "fields": {"body_text": "t"},
                "download_hosts": [entry],
            }
        )
