"""Pure logic of the http_feed source (in-process): dotted paths, timestamps,
the HTTPS rule, and what the updated-at checkpoint may advance to."""

from __future__ import annotations

import re

import pytest

from plugins.http_feed.checkpoint import Watermark
from plugins.http_feed.options import HttpFeedOptions
from plugins.http_feed.values import (
    MISSING,
    lookup,
    parse_timestamp,
    safe_file_name,
    text_to_html,
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
