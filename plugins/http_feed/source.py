"""The ``http_feed`` source: one poll walks the feed and emits its items.

Exactly-once, from the source's side:

* An item's identity is ``(id, version)``: the version is the updated-at value when the
  feed maps one, else a hash of the item. The ledger is asked first (``context.known``),
  so an unchanged item costs no download on later polls; new content is a new version.
* The checkpoint (the highest updated-at, or the cursor / next link of the next page)
  is saved only after ``emit`` returned for every item before it. An item that could not
  be spooled for a temporary reason (429/5xx after retries, a dropped connection, a
  download past ``download_timeout``) holds the checkpoint back, so the next poll sees
  it again. Items that can never succeed (missing or mistyped fields, nested too deeply,
  a 404 download, a download host that is not allowed, too large) are recorded as
  failed with the reason (``context.fail``) and do not hold anything back.
* A poll that cannot go on (not JSON, a page that answers 4xx, pagination that loops,
  an unreachable feed) fails with a clear reason in the log; what was spooled before
  stays checkpointed and the next poll starts from there.

What one item becomes: :mod:`.items`; how it reaches the spool (downloads streamed):
:mod:`.intake`.
"""

from __future__ import annotations

import base64
from typing import Any

from pipeline import (
    PermanentError,
    PipelineError,
    ScanIncomplete,
    Source,
    SourceContext,
    TransientError,
    register_secret,
)

from .checkpoint import Watermark
from .intake import ItemIntake
from .options import HttpFeedOptions
from .pagination import Page, first_page, next_page
from .report import PollReport
from .transport import FeedClient, FeedProblem, Stopping
from .values import MISSING, canonical_hash, display_url, lookup, parse_timestamp, type_name


class HttpFeedSource(Source):
    """Polls a paginated JSON feed; see the module docstring."""

    options_model = HttpFeedOptions

    def __init__(self, name: str, options: Any, context: SourceContext) -> None:
        if not isinstance(options, HttpFeedOptions):
            options = HttpFeedOptions.model_validate(options)
        super().__init__(name, options, context)
        self.opts: HttpFeedOptions = options
        self.poll_interval = options.poll_interval
        self.http = FeedClient(options, context.stopping, self._build_auth)
        self.intake = ItemIntake(name, options, context, self.http)
        self.last_poll: PollReport | None = None

    def __repr__(self) -> str:
        return f"<HttpFeedSource {self.name!r} {display_url(self.opts.url)}>"

    # ----- lifecycle ---------------------------------------------------------

    def scan(self) -> None:
        """One poll of the feed; a failed poll is logged and raised (``once`` reports it),
        and so are items left for the next poll (``once`` exits 4: work left)."""
        error = self._poll_logged()
        if error:
            raise TransientError(f"poll failed: {error}")
        report = self.last_poll
        if report is not None and report.deferred:
            raise ScanIncomplete(
                f"{report.deferred} item(s) could not be taken now; the next poll tries again"
            )
        if report is not None and not report.complete and not self.context.stopping.is_set():
            raise ScanIncomplete(
                f"stopped after max_pages={self.opts.max_pages}; the next poll goes on"
            )

    def _poll_logged(self) -> str | None:
        """One poll; failures are logged with their reason and returned, never raised."""
        report = PollReport()
        self.last_poll = report
        try:
            self._poll(report)
        except Stopping:
            report.error = "stopped"
        except FeedProblem as e:
            report.error = e.reason
        except PipelineError as e:  # a missing secret
            report.error = e.reason
        except Exception as e:  # a bug must not end the daemon's watch loop
            report.error = f"unexpected {type(e).__name__}: {e}"
            self.context.log.exception("source %s: poll crashed", self.name)
        log = self.context.log
        if report.error and report.error != "stopped":
            log.error(
                "source %s: poll failed: %s (pages=%d, emitted=%d)",
                self.name,
                report.error,
                report.pages,
                report.emitted,
            )
        log.info(
            "source %s: poll: pages=%d items=%d emitted=%d known=%d failed=%d deferred=%d",
            self.name,
            report.pages,
            report.items,
            report.emitted,
            report.known,
            report.failed,
            report.deferred,
        )
        if report.error != "stopped":
            self.context.report_scan(report.error)
        return report.error if report.error != "stopped" else None

    def watch(self) -> None:
        """Poll every ``poll_interval`` seconds until the engine stops. The engine scans
        once when the daemon starts, so the first wait comes before the first poll."""
        while not self.context.stopping.wait(self.poll_interval):
            self._poll_logged()

    def close(self) -> None:
        self.http.close()

    # ----- credentials -----------------------------------------------------

    def _build_auth(self) -> dict[str, str]:
        auth = self.opts.auth
        if auth.type == "none":
            return {}
        # a trailing newline (echo into a file or keyring) is never part of a header value
        secret = self.context.secret(auth.secret, env=auth.env).strip()
        register_secret(secret)
        # requests would raise InvalidHeader (or UnicodeEncodeError) quoting the value,
        # and the error would be retried as if the network had failed
        printable = all(" " <= ch <= "~" for ch in secret)
        if not secret or not (printable or (auth.type == "basic" and secret.isprintable())):
            raise PermanentError(
                f"source {self.name!r}: secret {auth.secret!r} is empty, or has control"
                " characters (or, for a header, characters other than printable ASCII);"
                " set it again"
            )
        if auth.type == "bearer":
            return {"Authorization": f"Bearer {secret}"}
        if auth.type == "basic":
            token = base64.b64encode(f"{auth.username}:{secret}".encode()).decode()
            register_secret(token)  # the encoded form carries the password just as well
            return {"Authorization": f"Basic {token}"}
        assert auth.header is not None
        return {auth.header: secret}

    # ----- the poll ----------------------------------------------------------

    def _poll(self, report: PollReport) -> None:
        self.http.reset_auth()  # asked again each poll: a rotated secret is picked up
        mode = self.opts.checkpoint_mode
        since = self.context.get_checkpoint("updated_at") if mode == "updated_at" else None
        mark = Watermark(saved=parse_timestamp(since) if since is not None else None)
        saved = self.context.get_checkpoint("cursor") if mode == "cursor" else None
        page: Page | None = first_page(self.opts, since, saved)
        seen_requests: set[str] = set()
        seen_bodies: set[str] = set()
        try:
            while page is not None:
                if self.context.stopping.is_set():
                    raise Stopping
                if report.pages >= self.opts.max_pages:
                    self.context.log.info(
                        "source %s: stopped after max_pages=%d; the next poll goes on",
                        self.name,
                        self.opts.max_pages,
                    )
                    return
                key = page.key()
                if key in seen_requests:
                    raise FeedProblem(
                        f"pagination loops: {display_url(page.url)} with the same parameters "
                        "was already fetched in this poll",
                        transient=False,
                    )
                seen_requests.add(key)
                resp, doc, too_deep = self.http.fetch_json(page.url, page.params)
                report.pages += 1
                items = lookup(doc, self.opts.items_path)
                where = repr(self.opts.items_path) if self.opts.items_path else "the body"
                if items is MISSING:
                    raise FeedProblem(f"no items at {where} in the answer", transient=False)
                if not isinstance(items, list):
                    raise FeedProblem(
                        f"items at {where} are {type_name(items)}, expected a list",
                        transient=False,
                    )
                if items:
                    digest = canonical_hash(items)
                    if digest in seen_bodies:
                        raise FeedProblem(
                            f"pagination loops: page {report.pages} repeats the items of an "
                            "earlier page",
                            transient=False,
                        )
                    seen_bodies.add(digest)
                nxt = next_page(self.opts.pagination, page, resp, doc, items)
                page_deferred = False
                for item in items:
                    if self.context.stopping.is_set():
                        raise Stopping
                    if not self.intake.take(item, page.url, report, mark, too_deep):
                        page_deferred = True
                if mode == "cursor":
                    if page_deferred:
                        self.context.log.warning(
                            "source %s: an item could not be spooled; the next poll resumes "
                            "at this page",
                            self.name,
                        )
                        return
                    token = nxt.token if nxt is not None else page.token
                    self._save("cursor", token, report)
                elif mode == "updated_at":
                    self._save("updated_at", mark.candidate(complete=False), report)
                if nxt is not None and nxt.number == -1:
                    nxt = None
                page = nxt
            report.complete = True
            if mode == "updated_at":
                self._save("updated_at", mark.candidate(complete=True), report)
        finally:
            self.last_poll = report

    def _save(self, key: str, value: str | None, report: PollReport) -> None:
        if value is None or value == self.context.get_checkpoint(key):
            return
        self.context.set_checkpoint(key, value)
        report.checkpoints.append(value)
