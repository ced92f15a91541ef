"""Where the feed may send the source: downloads, redirects and next links go only to the
feed's own host (scheme, host and port of ``url``) or to ``download_hosts``; and a host
that resolves to a loopback, private or link-local address is refused unless explicitly
allowed. A second loopback server (another port, the same CA) stands for an internal
service a hostile feed names. A refusal fails the item alone, before any connection."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plugins.http_feed.guard import AddressRefused, HostPolicy, guarded_session
from tests.http_feed.http_feed_helpers import make_settings, run_once, stored
from tests.http_feed.http_feed_server import FeedServer, add_doc, run_feed_server

Options = Callable[..., dict[str, Any]]
TOKEN = "dl-canary-7c1e9a3b5d2f4e60"
SECRET = b"%PDF internal secret"


@pytest.fixture
def internal(tmp_path: Path, feed: FeedServer) -> Iterator[FeedServer]:
    """An internal HTTPS service on another loopback port, trusted by the same CA."""
    with run_feed_server(tmp_path, ca=feed.ca) as server:
        server.state.add_file("secret.pdf", SECRET)
        yield server


def port_of(server: FeedServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def with_auth(monkeypatch: pytest.MonkeyPatch, feed: FeedServer, **over: Any) -> dict[str, Any]:
    monkeypatch.setenv("DL_TOKEN", TOKEN)
    feed.state.require_header = ("Authorization", f"Bearer {TOKEN}")
    return {"auth": {"type": "bearer", "env": "DL_TOKEN"}, **over}


def reasons(summary: Any) -> dict[str, str]:
    return {f["source_ref"]: f["reason"] for f in summary.failures}


def test_a_download_from_another_port_is_refused_and_fails_the_item_alone(
    feed: FeedServer,
    internal: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for i in range(1, 4):
        add_doc(feed, i)
    secret_url = internal.url("/files/secret.pdf")
    feed.state.items["doc-2"]["links"]["file"] = secret_url + "?sig=abc"
    opts = source_options("page", **with_auth(monkeypatch, feed))
    summary, poll = run_once(make_settings(ingest_state_dir, sink_db, opts))
    assert poll.error is None and poll.complete
    assert summary.delivered == 2
    assert reasons(summary) == {
        "doc-2": f"download {secret_url}: 127.0.0.1:{port_of(internal)} is not the feed's "
        "host; list it in download_hosts to allow it"
    }
    assert internal.state.connections == 0
    assert TOKEN not in caplog.text and "sig=abc" not in caplog.text
    summary, poll = run_once(make_settings(ingest_state_dir, sink_db, opts))
    assert (summary.delivered, summary.failed) == (0, 0)  # known: not tried again


def test_download_hosts_allows_another_host_without_the_feeds_credentials(
    feed: FeedServer,
    internal: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_doc(feed, 1)
    feed.state.items["doc-1"]["links"]["file"] = internal.url("/files/secret.pdf")
    hosts = [f"127.0.0.1:{port_of(internal)}"]
    opts = source_options("page", download_hosts=hosts, **with_auth(monkeypatch, feed))
    summary, _ = run_once(make_settings(ingest_state_dir, sink_db, opts))
    assert summary.delivered == 1
    assert stored(sink_db)[0]["files"][0][2] == SECRET
    (request,) = internal.state.requests
    assert "Authorization" not in request.headers


@pytest.mark.parametrize("allowed", [False, True])
def test_a_redirect_to_another_host_is_refused(
    allowed: bool,
    feed: FeedServer,
    internal: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
) -> None:
    add_doc(feed, 1)
    secret_url = internal.url("/files/secret.pdf")
    feed.state.fail_next("/files/doc-1.pdf", 302, headers={"Location": secret_url})
    hosts = [f"127.0.0.1:{port_of(internal)}"] if allowed else []
    opts = source_options("page", download_hosts=hosts)
    summary, _ = run_once(make_settings(ingest_state_dir, sink_db, opts))
    if allowed:
        assert summary.delivered == 1 and stored(sink_db)[0]["files"][0][2] == SECRET
        return
    assert reasons(summary) == {
        "doc-1": f"download {secret_url}: 127.0.0.1:{port_of(internal)} is not the feed's "
        "host; list it in download_hosts to allow it"
    }
    assert internal.state.connections == 0


def test_a_next_link_to_another_host_fails_the_poll(
    feed: FeedServer,
    internal: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
) -> None:
    add_doc(feed, 1)
    next_url = internal.url("/feed/next_link?page=1")
    body = b'{"data": [], "links": {"next": "' + next_url.encode() + b'"}}'
    feed.state.fail_next("/feed", 200, body=body)
    _, poll = run_once(make_settings(ingest_state_dir, sink_db, source_options("next_link")))
    assert poll.error == (
        f"feed page {internal.url('/feed/next_link')}: 127.0.0.1:{port_of(internal)} is not "
        "the feed's host; list it in download_hosts to allow it"
    )
    assert internal.state.connections == 0


def test_a_host_allowed_by_a_wildcard_must_not_resolve_to_loopback(
    feed: FeedServer,
    internal: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
) -> None:
    """``*`` names no address: whatever ``localhost`` resolves to is checked (loopback is
    refused unless ``allow_insecure_loopback``); an exact entry names its host."""
    add_doc(feed, 1)
    url = internal.url("/files/secret.pdf").replace("127.0.0.1", "localhost")
    feed.state.items["doc-1"]["links"]["file"] = url
    opts = source_options("page", download_hosts=[f"*:{port_of(internal)}"])
    summary, _ = run_once(make_settings(ingest_state_dir, sink_db, opts))
    (reason,) = reasons(summary).values()
    assert reason.startswith(f"download {url}: localhost resolves to a loopback address")
    assert "allow_insecure_loopback" in reason
    assert internal.state.connections == 0
    add_doc(feed, 2)
    feed.state.items["doc-2"]["links"]["file"] = url
    opts["allow_insecure_loopback"] = True
    summary, _ = run_once(make_settings(ingest_state_dir, sink_db, opts))
    assert summary.delivered == 1


def test_the_connection_itself_is_checked(internal: FeedServer) -> None:
    """Against DNS rebinding: the address checked is the one connected to, so a name
    that resolved to a public address a moment ago and to loopback now is refused when
    connecting, whatever was checked before the request."""
    policy = HostPolicy(
        feed_url="https://feed.example.com/api", download_hosts=["*"], allow_loopback=False
    )
    url = internal.url("/files/secret.pdf").replace("127.0.0.1", "localhost")
    with guarded_session(policy) as session, pytest.raises(AddressRefused) as caught:
        session.get(url, verify=str(internal.ca_file), timeout=5)
    assert "loopback" in str(caught.value)
    assert internal.state.connections == 0
    # the same session reaches an allowed address (the check is no blanket refusal)
    allowed = HostPolicy(feed_url=internal.base_url, download_hosts=[], allow_loopback=False)
    with guarded_session(allowed) as session:
        assert session.get(internal.url("/files/secret.pdf"), verify=str(internal.ca_file))
    assert internal.state.connections == 1


def test_basic_credentials_stay_out_of_refusal_reasons(
    feed: FeedServer,
    internal: FeedServer,
    source_options: Options,
    ingest_state_dir: Path,
    sink_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DL_TOKEN", TOKEN)
    basic = base64.b64encode(f"svc:{TOKEN}".encode()).decode()
    feed.state.require_header = ("Authorization", f"Basic {basic}")
    add_doc(feed, 1)
    # a redirect from the feed's host to the internal one, credentials in its query
    feed.state.fail_next(
        "/files/doc-1.pdf",
        307,
        headers={"Location": internal.url(f"/files/secret.pdf?token={TOKEN}&b={basic}")},
    )
    opts = source_options("page", auth={"type": "basic", "username": "svc", "env": "DL_TOKEN"})
    summary, _ = run_once(make_settings(ingest_state_dir, sink_db, opts))
    (reason,) = reasons(summary).values()
    assert TOKEN not in reason and basic not in reason
    assert "not the feed's host" in reason
    assert "?" not in reason
