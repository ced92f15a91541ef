"""Bad input and bad servers: the item or the poll fails with a clear reason, the source
keeps going, and nothing is checkpointed past an item that was not safely spooled."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.settings import ConfigError
from tests.http_feed.http_feed_helpers import engine, make_settings, run_once, stored
from tests.http_feed.http_feed_server import FeedServer, add_doc

Options = Callable[..., dict[str, Any]]


def reasons(summary: Any) -> dict[str, str]:
    return {f["source_ref"]: f["reason"] for f in summary.failures}


# ----------------------------------------------------------------- poll failures


@pytest.mark.parametrize("style", ["next_link", "cursor"])
def test_non_json_page_fails_the_poll_and_the_next_poll_resumes(
    style: str, feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    for i in range(1, 6):
        add_doc(feed, i)
    settings = make_settings(ingest_state_dir, sink_db, source_options(style))
    # page 1 is fine, page 2 is an HTML error page with status 200
    feed.state.fail_next(
        "/feed",
        200,
        body=b"<html>Maintenance</html>",
        headers={"Content-Type": "text/html"},
        skip=1,
    )
    summary, poll = run_once(settings)
    assert poll.error is not None
    assert "is not JSON (text/html; starts with '<html>Maintenance</html>')" in poll.error
    assert poll.pages == 1 and summary.delivered == 2
    (name,) = summary.source_errors  # `once` reports the failed poll (exit status 3)
    assert "is not JSON" in summary.source_errors[name]

    summary, poll = run_once(settings)
    assert poll.error is None
    assert summary.delivered == 3
    assert summary.source_errors == {}
    assert sorted(d["ref"] for d in stored(sink_db)) == [f"doc-{i}" for i in range(1, 6)]
    assert feed.state.downloads() == 5


@pytest.mark.parametrize("style", ["next_link", "link_header", "page", "offset", "cursor"])
def test_pagination_that_loops_fails_the_poll(
    style: str, feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    for i in range(1, 6):
        add_doc(feed, i)
    feed.state.loop = True
    settings = make_settings(ingest_state_dir, sink_db, source_options(style))
    summary, poll = run_once(settings)
    assert poll.error is not None and "pagination loops" in poll.error
    assert poll.pages <= 2
    assert summary.delivered == 2  # the first page landed
    assert summary.failed == 0


def test_items_path_missing_or_wrong_type(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    add_doc(feed, 1)
    settings = make_settings(ingest_state_dir, sink_db, source_options("page", items_path="docs"))
    _, poll = run_once(settings)
    assert poll.error == "no items at 'docs' in the answer"
    settings = make_settings(
        ingest_state_dir, sink_db, source_options("next_link", items_path="links")
    )
    _, poll = run_once(settings)
    assert poll.error == "items at 'links' are an object, expected a list"


def test_unauthorized_feed_names_the_auth_settings(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    add_doc(feed, 1)
    feed.state.require_header = ("Authorization", "Bearer right")
    settings = make_settings(ingest_state_dir, sink_db, source_options("page"))
    _, poll = run_once(settings)
    assert poll.error == (
        f"feed page {feed.url('/feed/page')} answered 401 Unauthorized (check the auth settings)"
    )


def test_feed_5xx_is_retried_honouring_retry_after(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    add_doc(feed, 1)
    feed.state.fail_next("/feed", 503, headers={"Retry-After": "0"})
    feed.state.fail_next("/feed", 429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    settings = make_settings(ingest_state_dir, sink_db, source_options("page"))
    summary, poll = run_once(settings)
    assert poll.error is None and summary.delivered == 1
    assert feed.state.count("/feed") == 3


def test_feed_5xx_beyond_the_retries_fails_the_poll(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    add_doc(feed, 1)
    feed.state.fail_next("/feed", 502, times=10)
    settings = make_settings(ingest_state_dir, sink_db, source_options("page"))
    _, poll = run_once(settings)
    assert (
        poll.error
        == f"feed page {feed.url('/feed/page')} answered 502 Bad Gateway after 3 attempts"
    )


# ----------------------------------------------------------------- item failures


def test_missing_and_mistyped_fields_fail_the_item_only(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    add_doc(feed, 1)
    no_id = add_doc(feed, 2)
    feed.state.items.pop("doc-2")
    no_id.pop("id")
    feed.state.items["x"] = no_id
    feed.state.seq["x"] = 99
    bad_name = add_doc(feed, 3)
    bad_name["attributes"]["title"] = {"en": "Report 3"}
    bad_date = add_doc(feed, 4, updated="2026-01-01T00:00:04Z")
    bad_date["updated_at"] = "last tuesday"
    bad_url = add_doc(feed, 5)
    bad_url["links"]["file"] = 12345
    add_doc(feed, 6)
    feed.state.items["not-an-object"] = ["just", "a", "list"]  # type: ignore[assignment]
    feed.state.seq["not-an-object"] = 100
    settings = make_settings(
        ingest_state_dir, sink_db, source_options("next_link", since_param=None)
    )
    summary, poll = run_once(settings)
    assert poll.error is None
    assert summary.delivered == 2
    r = reasons(summary)
    assert len(r) == 5
    invalid = {k: v for k, v in r.items() if k.startswith("invalid-item:")}
    assert sorted(invalid.values()) == [
        "field id ('id') is missing",
        "item is a list, expected an object",
    ]
    assert r["doc-3"] == "field name ('attributes.title') is an object, expected a string"
    assert (
        r["doc-4"]
        == "field updated_at ('updated_at') is not a date-time or a number: 'last tuesday'"
    )
    assert r["doc-5"] == "field file_url ('links.file') is a number, expected a string"
    assert sorted(d["ref"] for d in stored(sink_db)) == ["doc-1", "doc-6"]
    # the failed items are known: a re-poll does not fail them again
    summary, poll = run_once(settings)
    assert (summary.delivered, summary.failed) == (0, 0)


def test_download_404_fails_the_item_and_the_source_goes_on(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    for i in range(1, 4):
        add_doc(feed, i)
    del feed.state.files["doc-2.pdf"]
    settings = make_settings(ingest_state_dir, sink_db, source_options("next_link"))
    summary, poll = run_once(settings)
    assert poll.error is None and poll.complete
    assert summary.delivered == 2
    assert reasons(summary) == {
        "doc-2": f"download {feed.url('/files/doc-2.pdf')} answered 404 Not Found"
    }
    # a new version of the item (fixed upstream) is tried again
    add_doc(feed, 2, updated="2026-03-01T00:00:00Z")
    summary, _ = run_once(settings)
    assert summary.delivered == 1


def test_download_503_beyond_retries_holds_the_checkpoint_back(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    for i in range(1, 6):
        add_doc(feed, i)
    feed.state.fail_next("/files/doc-2.pdf", 503, times=3)  # 1 try + 2 retries
    settings = make_settings(ingest_state_dir, sink_db, source_options("page"))
    summary, poll = run_once(settings)
    assert poll.error is None and poll.deferred == 1
    assert summary.delivered == 4 and summary.failed == 0
    # the next poll asks from doc-2's timestamp (not past it) and delivers it
    n = len(feed.state.requests)
    summary, poll = run_once(settings)
    first = next(r for r in feed.state.requests[n:] if r.path.startswith("/feed"))
    assert first.query["since"] == "2026-01-01T00:00:02Z"
    assert summary.delivered == 1
    assert sorted(d["ref"] for d in stored(sink_db)) == [f"doc-{i}" for i in range(1, 6)]
    assert feed.state.downloads("doc-3.pdf") == 1


def test_cursor_feed_with_a_deferred_item_resumes_at_its_page(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    for i in range(1, 6):
        add_doc(feed, i)
    feed.state.fail_next("/files/doc-3.pdf", 500, times=3)
    settings = make_settings(ingest_state_dir, sink_db, source_options("cursor"))
    summary, poll = run_once(settings)
    assert poll.deferred == 1 and poll.pages == 2  # stopped after the page of doc-3
    assert summary.delivered == 3
    summary, poll = run_once(settings)
    assert summary.delivered == 2
    assert sorted(d["ref"] for d in stored(sink_db)) == [f"doc-{i}" for i in range(1, 6)]
    assert feed.state.downloads("doc-4.pdf") == 1 and feed.state.downloads("doc-1.pdf") == 1


def test_download_retried_on_429_then_lands(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    add_doc(feed, 1)
    feed.state.fail_next("/files/doc-1.pdf", 429, times=2, headers={"Retry-After": "0"})
    settings = make_settings(ingest_state_dir, sink_db, source_options("page"))
    summary, _ = run_once(settings)
    assert summary.delivered == 1
    assert feed.state.downloads("doc-1.pdf") == 3


def test_connection_dropped_mid_download_is_retried_next_poll(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    for i in range(1, 4):
        add_doc(feed, i, data=bytes([i]) + bytes(range(256)) * 400)
    feed.state.cut_downloads["doc-2.pdf"] = 5000
    settings = make_settings(ingest_state_dir, sink_db, source_options("page"))
    summary, poll = run_once(settings)
    assert poll.deferred == 1 and summary.delivered == 2 and summary.failed == 0
    del feed.state.cut_downloads["doc-2.pdf"]
    summary, poll = run_once(settings)
    assert summary.delivered == 1
    doc2 = next(d for d in stored(sink_db) if d["ref"] == "doc-2")
    assert doc2["files"][0][2] == bytes([2]) + bytes(range(256)) * 400


def test_size_limits(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    add_doc(feed, 1, data=b"x" * 500)
    add_doc(feed, 2, data=b"y" * 5000)  # Content-Length says too large: never read
    add_doc(feed, 3, data=b"z" * 5000)  # no Content-Length: the spool stops at the limit
    feed.state.no_length.add("doc-3.pdf")
    settings = make_settings(ingest_state_dir, sink_db, source_options("page"))
    settings.pipeline.max_file_size = 1000
    summary, _ = run_once(settings)
    assert summary.delivered == 1
    r = reasons(summary)
    assert r["doc-2"] == (
        f"download {feed.url('/files/doc-2.pdf')} is 5000 bytes (Content-Length), "
        "over the limit of 1000"
    )
    assert "too large" in r["doc-3"]


def test_inline_base64_and_bodies(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    payload = b"\x89PNG\r\n\x1a\n" + bytes(100)
    feed.state.put(
        {
            "id": 1,
            "title": "Inline",
            "content": base64.b64encode(payload).decode(),
            "fname": "pic.png",
            "type": "image/png",
            "notes": "line one\nline <two>",
        }
    )
    feed.state.put({"id": 2, "title": "Page", "html": "<h2>Runbook</h2><p>Step 1</p>"})
    feed.state.put({"id": 3, "title": "Broken", "content": "***not base64***"})
    feed.state.put({"id": 4, "title": "Empty"})
    settings = make_settings(
        ingest_state_dir,
        sink_db,
        {
            "name": "feed",
            "type": "http_feed",
            "url": feed.url("/feed/page"),
            "ca_bundle": str(feed.ca_file),
            "items_path": "items",
            "pagination": {"style": "page", "size_param": "per_page", "page_size": 10},
            "fields": {
                "id": "id",
                "name": "title",
                "file_base64": "content",
                "file_name": "fname",
                "mime": "type",
                "body_text": "notes",
                "body_html": "html",
            },
        },
    )
    summary, poll = run_once(settings)
    assert poll.error is None
    docs = {d["ref"]: d for d in stored(sink_db)}
    assert docs["1"]["files"] == [("pic.png", "image/png", payload)]
    assert docs["1"]["sections"] == ["<p>line one<br>line &lt;two&gt;</p>"]
    assert docs["2"]["files"] == [] and docs["2"]["sections"] == ["<h2>Runbook</h2><p>Step 1</p>"]
    r = reasons(summary)
    assert r["3"] == "field file_base64 ('content') is not valid base64"
    assert r["4"] == ("item has no content (none of 'content', 'notes', 'html')")
    # no updated-at: the version is a hash of the item; an unchanged item is not new
    summary, _ = run_once(settings)
    assert (summary.delivered, summary.failed) == (0, 0)
    feed.state.put({"id": 2, "title": "Page", "html": "<h2>Runbook</h2><p>Step 2</p>"})
    summary, _ = run_once(settings)
    assert summary.delivered == 1


# ----------------------------------------------------------------- auth and HTTPS


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        ({"type": "bearer", "env": "FEED_TOKEN"}, "Authorization", "Bearer s3cret-token"),
        (
            {"type": "header", "header": "X-API-Key", "env": "FEED_TOKEN"},
            "X-API-Key",
            "s3cret-token",
        ),
        (
            {"type": "basic", "username": "svc", "env": "FEED_TOKEN"},
            "Authorization",
            "Basic " + base64.b64encode(b"svc:s3cret-token").decode(),
        ),
    ],
)
def test_auth_from_the_environment(
    auth: dict[str, Any],
    header: str,
    value: str,
    feed: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEED_TOKEN", "s3cret-token")
    add_doc(feed, 1)
    feed.state.require_header = (header, value)
    settings = make_settings(ingest_state_dir, sink_db, source_options("page", auth=auth))
    summary, poll = run_once(settings)
    assert poll.error is None and summary.delivered == 1


def test_auth_from_the_keyring_and_only_to_the_feed_origin(
    feed: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
    memory_keyring: Any,
) -> None:
    memory_keyring.set_password("itglue-ingest", "source:feed:api", "from-keyring")
    add_doc(feed, 1)
    item = add_doc(feed, 2)
    # the same server under another name is another origin: no credentials sent there
    other = feed.base_url.replace("127.0.0.1", "localhost")
    item["links"]["file"] = other + "/files/doc-2.pdf"
    feed.state.require_header = ("Authorization", "Bearer from-keyring")
    opts = source_options(
        "page",
        auth={"type": "bearer", "secret": "api"},
        download_hosts=[other.removeprefix("https://")],
    )
    settings = make_settings(ingest_state_dir, sink_db, opts)
    summary, _ = run_once(settings)
    assert summary.delivered == 2
    downloads = {r.path: r.headers for r in feed.state.requests if r.path.startswith("/files")}
    assert downloads["/files/doc-1.pdf"].get("Authorization") == "Bearer from-keyring"
    assert "Authorization" not in downloads["/files/doc-2.pdf"]


def test_missing_secret_fails_the_poll_clearly(
    feed: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_doc(feed, 1)
    settings = make_settings(
        ingest_state_dir,
        sink_db,
        source_options("page", auth={"type": "bearer", "env": "NOT_SET_FEED_TOKEN"}),
    )
    _, poll = run_once(settings)
    assert poll.error is not None
    assert "secret 'token' is not set; set the environment variable NOT_SET_FEED_TOKEN" in (
        poll.error
    )
    assert feed.state.count("/feed") == 0


def test_secret_is_not_in_the_config_and_never_logged(
    feed: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(ConfigError, match="token"):
        engine(
            make_settings(
                ingest_state_dir,
                sink_db,
                source_options("page", auth={"type": "bearer", "token": "in-clear"}),
            )
        )
    monkeypatch.setenv("FEED_TOKEN", "very-secret-value")
    add_doc(feed, 1)
    feed.state.fail_next("/feed", 401)
    settings = make_settings(
        ingest_state_dir,
        sink_db,
        source_options("page", auth={"type": "bearer", "env": "FEED_TOKEN"}),
    )
    with engine(settings) as eng:
        eng.run_once()
        assert "very-secret-value" not in repr(eng.sources["feed"])
    assert "very-secret-value" not in caplog.text


def test_https_rules(
    feed: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
    tmp_path: Path,
) -> None:
    def config(**over: Any) -> Any:
        return make_settings(ingest_state_dir, sink_db, source_options("page", **over))

    with pytest.raises(ConfigError, match=r"refusing http:// to 127\.0\.0\.1: HTTPS only"):
        engine(config(url=feed.url("/feed/page").replace("https", "http")))
    with pytest.raises(ConfigError, match=r"refusing http:// to example\.com: HTTPS only"):
        engine(config(url="http://example.com/feed", allow_insecure_loopback=True))
    with pytest.raises(ConfigError, match="credentials in the URL are refused"):
        engine(config(url=feed.url("/feed/page").replace("//", "//u:p@")))
    with pytest.raises(ConfigError, match="ca_bundle: no such file"):
        engine(config(ca_bundle=str(tmp_path / "nope.pem")))
    # without the feed's CA the TLS handshake is refused
    add_doc(feed, 1)
    opts = source_options("page")
    del opts["ca_bundle"]
    _, poll = run_once(make_settings(ingest_state_dir, sink_db, opts))
    assert poll.error == f"feed page {feed.url('/feed/page')}: SSLError (TLS verification failed)"


def test_plain_http_on_loopback_with_opt_in(
    tmp_path: Path, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    from tests.http_feed.http_feed_server import run_feed_server

    with run_feed_server(tmp_path, tls=False) as plain:
        add_doc(plain, 1)
        opts = source_options("page", url=plain.url("/feed/page"), allow_insecure_loopback=True)
        del opts["ca_bundle"]
        summary, poll = run_once(make_settings(ingest_state_dir, sink_db, opts))
        assert poll.error is None and summary.delivered == 1
        # a download link that leaves loopback over http:// is refused, not fetched
        item = add_doc(plain, 2)
        item["links"]["file"] = "http://192.0.2.1/files/doc-2.pdf"
        summary, _ = run_once(make_settings(ingest_state_dir, sink_db, opts))
        assert reasons(summary) == {"doc-2": "download: refusing http:// to 192.0.2.1: HTTPS only"}


def test_redirected_download_is_followed(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    item = add_doc(feed, 1)
    item["links"]["file"] = "/redirect/files/doc-1.pdf"
    summary, _ = run_once(make_settings(ingest_state_dir, sink_db, source_options("page")))
    assert summary.delivered == 1
    assert stored(sink_db)[0]["files"][0][2] == feed.state.files["doc-1.pdf"][0]


def test_download_timeout_defers_the_item(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    for i in range(1, 4):
        add_doc(feed, i)
    stall = threading.Event()
    feed.state.hold["/files/doc-2.pdf"] = stall  # answers nothing until released
    opts = source_options("page", read_timeout=0.3, max_retries=1)
    try:
        summary, poll = run_once(make_settings(ingest_state_dir, sink_db, opts))
    finally:
        del feed.state.hold["/files/doc-2.pdf"]
        stall.set()
    assert poll.deferred == 1 and summary.delivered == 2 and summary.failed == 0
    assert feed.state.downloads("doc-2.pdf") == 2  # one try, one retry
    summary, _ = run_once(make_settings(ingest_state_dir, sink_db, opts))
    assert summary.delivered == 1


def test_oversized_page_fails_the_poll(
    feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    add_doc(feed, 1)
    opts = source_options("page", max_page_bytes=100)
    _, poll = run_once(make_settings(ingest_state_dir, sink_db, opts))
    assert poll.error == f"feed page {feed.url('/feed/page')} is larger than max_page_bytes (100)"


@pytest.mark.parametrize("style", ["cursor", "next_link"])
def test_max_pages_per_poll_then_the_next_poll_goes_on(
    style: str, feed: FeedServer, source_options: Options, ingest_state_dir: Path, sink_db: Path
) -> None:
    for i in range(1, 6):
        add_doc(feed, i)
    settings = make_settings(ingest_state_dir, sink_db, source_options(style, max_pages=1))
    delivered = []
    while sum(delivered) < 5 and len(delivered) < 6:
        summary, poll = run_once(settings)
        assert poll.error is None and poll.pages == 1
        delivered.append(summary.delivered)
    # cursor: each poll resumes at the next page; updated-at: at the last item seen
    # (the since-filter is inclusive, so one item of each page comes back as known)
    assert delivered == ([2, 2, 1] if style == "cursor" else [2, 1, 1, 1])
    assert feed.state.downloads() == 5
