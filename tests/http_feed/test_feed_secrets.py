"""The feed's secret (bearer token, basic password, API-key header) never leaves the source.

Like ``tests/client/test_canary_key.py`` for the API key: canary secrets go through real
polls (every auth type, a download redirected to another origin, 401, 5xx after retries,
a page that is not JSON, a TLS failure, a refused connection), and every log record of
every logger at DEBUG, stdout/stderr, reprs, every exception (traceback with local
variables), the ``status --json`` output and every byte of the state directory (ledger,
WAL, spool) are searched for them. A query parameter of the configured URL (a signed
URL) is held to the same standard for everything the source writes or raises; only
urllib3's own DEBUG lines show it, which ``setup_logging`` keeps at INFO.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.commands.engine import status
from pipeline.logs import redact
from plugins.http_feed.transport import FeedProblem
from tests import secret_canary
from tests.http_feed.http_feed_helpers import engine, make_settings
from tests.http_feed.http_feed_server import FeedServer, add_doc, run_feed_server
from tests.loopback_proxy import recording_proxy, set_proxy_env
from tests.secret_canary import capture_debug_logs, describe

TOKEN = "feed-canary-3d9f1b7e5a2c4e6f8a0b"
BASIC = "basic-canary-6e2c8a4f0b1d3e5a"
HEADER = "hdr-canary-9a7c5e3b1f0d2c4e6b"
SIGNATURE = "sig-canary-1f3e5d7c9b0a2e4d"
ENV = "FEED_SECRET_CANARY"

Options = Callable[..., dict[str, Any]]


class CaptureAll(secret_canary.CaptureAll):
    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("urllib3") and SIGNATURE in record.getMessage():
            # urllib3 logs request paths at DEBUG (the signed query string included);
            # setup_logging keeps urllib3 at INFO, so drop only that secret's mention
            self.texts.append(record.getMessage().replace(SIGNATURE, "<sig>"))
            return
        super().emit(record)


def _fragments() -> list[str]:
    out: list[str] = []
    for s in (TOKEN, BASIC, HEADER, SIGNATURE):
        out.append(s)
        out += [s[i : i + 10] for i in range(len(s) - 9)]
    # the encoded forms that travel in headers
    out.append(base64.b64encode(f"svc:{BASIC}".encode()).decode())
    return out


def _leaks(data: str | bytes) -> list[str]:
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "backslashreplace")
    return [f for f in _fragments() if f.encode() in raw]


def _failure(call: Callable[[], object]) -> FeedProblem:
    """The FeedProblem ``call`` raises (caught here, so that its traceback's frames are
    the source's, not the test's, whose locals hold the canaries)."""
    try:
        call()
    except FeedProblem as e:
        return e
    raise AssertionError("no FeedProblem raised")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def debug_logs() -> Iterator[CaptureAll]:
    with capture_debug_logs(CaptureAll()) as handler:
        yield handler


def test_feed_secrets_never_appear(
    feed: FeedServer,
    source_options: Options,
    tmp_path: Path,
    sink_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    debug_logs: CaptureAll,
) -> None:
    state = tmp_path / "state"
    texts: list[str] = []
    objects: list[str] = []
    page, doc4 = feed.url("/feed/page"), feed.url("/files/doc-4.pdf")
    errors: list[BaseException] = []
    other_origin = feed.base_url.replace("127.0.0.1", "localhost")
    other_host = other_origin.removeprefix("https://")  # allowed for downloads
    for i in range(1, 5):
        add_doc(feed, i)
    # doc-2's download is redirected to another origin (the same server as localhost)
    feed.state.fail_next(
        "/files/doc-2.pdf", 302, headers={"Location": other_origin + "/files/doc-2.pdf"}, times=3
    )
    # doc-3's download fails for good, doc-4's keeps answering 503 (deferred)
    feed.state.fail_next("/files/doc-3.pdf", 404, body=b"gone", times=3)
    feed.state.fail_next("/files/doc-4.pdf", 503, times=1000)
    auths = [
        ({"type": "bearer", "env": ENV}, TOKEN, ("Authorization", f"Bearer {TOKEN}")),
        (
            {"type": "basic", "username": "svc", "env": ENV},
            BASIC,
            ("Authorization", "Basic " + base64.b64encode(f"svc:{BASIC}".encode()).decode()),
        ),
        ({"type": "header", "header": "X-API-Key", "env": ENV}, HEADER, ("X-API-Key", HEADER)),
    ]
    polls = []
    for n, (auth, secret, required) in enumerate(auths):
        monkeypatch.setenv(ENV, secret)
        feed.state.require_header = required
        url = feed.url("/feed/page") + f"?sig={SIGNATURE}"
        opts = source_options(
            "page", name=f"feed{n}", url=url, auth=auth, download_hosts=[other_host]
        )
        settings = make_settings(state, sink_db, opts)
        with engine(settings) as eng:
            summary = eng.run_once()
            src = eng.sources[f"feed{n}"]
            polls.append(src.last_poll)
            # the objects hold the configured URL (signature included) by design
            objects += [repr(src), str(src), repr(vars(src)), repr(vars(src.http))]
            texts += [repr(src), str(src), repr(src.last_poll)]
            texts.append(json.dumps(summary.to_dict(), default=str))
            # errors, raised where the source raises them
            http = src.http
            monkeypatch.setenv(ENV, "wrong-" + secret)
            http.reset_auth()
            errors.append(_failure(partial(http.fetch_json, page, {"sig": SIGNATURE})))  # 401
            errors.append(_failure(partial(http.open_download, doc4, 10**6)))  # 503s
            monkeypatch.setenv(ENV, secret)
            http.reset_auth()
            feed.state.fail_next(
                "/feed/page",
                200,
                body=b"<html>not json</html>",
                headers={"Content-Type": "text/html"},
            )
            errors.append(_failure(partial(http.fetch_json, page, {"sig": SIGNATURE})))
        assert summary.delivered + summary.duplicate >= 2, summary
    # a wrong secret fails the poll with a reason naming the auth settings
    monkeypatch.setenv(ENV, "wrong-" + TOKEN)
    feed.state.require_header = ("Authorization", f"Bearer {TOKEN}")
    opts = source_options(
        "page", name="feedx", url=feed.url("/feed/page") + f"?sig={SIGNATURE}", auth=auths[0][0]
    )
    with engine(make_settings(state, sink_db, opts)) as eng:
        eng.run_once()
        polls.append(eng.sources["feedx"].last_poll)
    # TLS failure (no CA) and a refused connection, with the right secret
    monkeypatch.setenv(ENV, TOKEN)
    for over in (
        {"ca_bundle": None},
        {"url": f"https://127.0.0.1:{_closed_port()}/feed/page?sig={SIGNATURE}", "max_retries": 0},
    ):
        opts = source_options("page", name="feedy", auth=auths[0][0], **over)
        if over.get("ca_bundle", "") is None:
            del opts["ca_bundle"]
        with engine(make_settings(state, sink_db, opts)) as eng:
            http = eng.sources["feedy"].http
            errors.append(_failure(partial(http.fetch_json, opts["url"], {"sig": SIGNATURE})))

    # the header value that carries the basic password (encoded) is redacted like it
    basic = base64.b64encode(f"svc:{BASIC}".encode()).decode()
    assert redact(f"Authorization: Basic {basic}") == "Authorization: Basic ***"

    # what the tests above exercised really happened
    assert len(errors) == 11, errors
    reasons = " | ".join(str(e) for e in errors)
    assert "401" in reasons and "503" in reasons and "not JSON" in reasons
    assert "TLS verification failed" in reasons and "ConnectionError" in reasons
    assert "check the auth settings" in (polls[3].error or "")
    to_other = [r for r in feed.state.requests if r.path == "/files/doc-2.pdf"]
    assert len(to_other) == 6  # 3 polls x (the redirect + the other origin)
    hosts = [r.headers.get("Host", "") for r in to_other]
    assert sum(h.startswith("localhost") for h in hosts) == 3
    for r in to_other:
        if r.headers.get("Host", "").startswith("localhost"):
            assert not {"Authorization", "X-API-Key"} & set(r.headers), r.headers
    texts += [describe(e, with_locals=False) for e in errors]
    # the URL and its parameters are local variables of the request code, by design
    objects += [describe(e) for e in errors]

    # the status command (ledger metadata and failure reasons)
    cfg = tmp_path / "status.toml"
    cfg.write_text(f'[state]\ndir = "{state}"\n')
    result = CliRunner().invoke(status, ["--json", "--config", str(cfg)])
    assert result.exit_code == 3, result.output  # failed records: status says so
    report = json.loads(result.output)
    assert report["failed"] and any("doc-3" in json.dumps(f) for f in report["failed"])
    texts.append(result.output)

    out, err = capfd.readouterr()
    found = {
        "logs": _leaks("\n".join(debug_logs.texts)),
        "stdout": _leaks(out),
        "stderr": _leaks(err),
        "exceptions/status": _leaks("\n".join(texts)),
        "objects/locals": [f for f in _leaks("\n".join(objects)) if f not in SIGNATURE],
    }
    files = sorted(p for p in state.rglob("*") if p.is_file())
    assert any(p.suffix == ".db" for p in files), files
    for p in files:
        found[f"file {p.relative_to(state)}"] = _leaks(p.read_bytes())
    assert {k: v for k, v in found.items() if v} == {}


def test_a_secret_with_a_line_break_or_control_character(
    feed: FeedServer,
    source_options: Options,
    tmp_path: Path,
    sink_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A trailing newline (``echo`` into a keyring or a file) is trimmed; a control
    character inside is a clear error at once, not retried, and not in the message
    (``requests`` would raise ``InvalidHeader`` quoting the whole header value)."""
    add_doc(feed, 1)
    feed.state.require_header = ("Authorization", f"Bearer {TOKEN}")
    opts = source_options("page", auth={"type": "bearer", "env": ENV})
    settings = make_settings(tmp_path / "state", sink_db, opts)
    monkeypatch.setenv(ENV, f" {TOKEN}\n")
    with engine(settings) as eng:
        summary = eng.run_once()
        assert eng.sources["feed"].last_poll.error is None
    assert summary.delivered == 1
    monkeypatch.setenv(ENV, f"{TOKEN[:8]}\x01{TOKEN[8:]}")
    before = feed.state.count("/feed")
    with engine(settings) as eng:
        eng.run_once()
        error = eng.sources["feed"].last_poll.error or ""
    assert "control character" in error and "'token'" in error, error
    assert feed.state.count("/feed") == before  # nothing sent, nothing retried
    assert not _leaks(error)


def test_plain_loopback_feed_bypasses_an_environment_proxy(
    source_options: Options, tmp_path: Path, sink_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``http://`` is allowed for loopback only because it never leaves the machine; with
    ``$HTTP_PROXY`` set (and no ``$NO_PROXY``) requests would send it, secret in clear,
    to the proxy."""
    monkeypatch.setenv(ENV, TOKEN)
    with recording_proxy() as (proxy, received), run_feed_server(tmp_path, tls=False) as plain:
        set_proxy_env(monkeypatch, proxy)
        add_doc(plain, 1)
        plain.state.require_header = ("Authorization", f"Bearer {TOKEN}")
        opts = source_options(
            "page",
            url=plain.url("/feed/page"),
            allow_insecure_loopback=True,
            auth={"type": "bearer", "env": ENV},
        )
        del opts["ca_bundle"]
        with engine(make_settings(tmp_path / "state", sink_db, opts)) as eng:
            summary = eng.run_once()
            error = eng.sources["feed"].last_poll.error
    assert received == []
    assert error is None and summary.delivered == 1
