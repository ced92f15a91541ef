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

Downloads are opened before ``emit`` (so a 404 or a 5xx is known before anything is
recorded) and handed to the spool as a stream: no whole file in memory.
"""

from __future__ import annotations

import base64
import binascii
import io
import posixpath
import re
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import unquote, urljoin, urlsplit

from pipeline import (
    FileInput,
    PermanentError,
    PipelineError,
    RecordDraft,
    Section,
    Source,
    SourceContext,
    TransientError,
    register_secret,
)

from .checkpoint import Watermark
from .options import FieldMap, HttpFeedOptions
from .pagination import Page, first_page, next_page
from .parsing import MAX_DEPTH, contains_too_deep
from .transport import (
    CHUNK,
    Download,
    DownloadStream,
    FeedClient,
    FeedProblem,
    Stopping,
    content_length,
    disposition_name,
)
from .values import (
    MISSING,
    canonical_hash,
    display_url,
    lookup,
    parse_timestamp,
    safe_file_name,
    text_to_html,
    type_name,
)


class ItemInvalid(Exception):
    """An item that can never become a record as it is (missing or mistyped field)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class PollReport:
    """What one poll did (logged at the end of each poll; kept as ``last_poll``)."""

    pages: int = 0
    items: int = 0
    emitted: int = 0
    known: int = 0
    failed: int = 0
    deferred: int = 0
    downloads: int = 0
    complete: bool = False
    error: str | None = None
    checkpoints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Content:
    """The file fields of one item (its sections are already in the draft)."""

    file_url: str | None
    base64: str | None
    file_name: str | None
    mime: str | None


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
        self.last_poll: PollReport | None = None

    def __repr__(self) -> str:
        return f"<HttpFeedSource {self.name!r} {display_url(self.opts.url)}>"

    # ----- lifecycle ---------------------------------------------------------

    def scan(self) -> None:
        """One poll of the feed; a failed poll is logged and raised (``once`` reports it)."""
        error = self._poll_logged()
        if error:
            raise TransientError(f"poll failed: {error}")

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
                    if not self._handle_item(item, page.url, report, mark, too_deep):
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

    # ----- items -------------------------------------------------------------

    def _handle_item(
        self, item: Any, page_url: str, report: PollReport, mark: Watermark, too_deep: bool
    ) -> bool:
        """Emit one item; False when it was not safely recorded (holds the checkpoint).
        ``too_deep``: the page had values nested too deeply (``parsing``)."""
        report.items += 1
        f = self.opts.fields
        ref, version, stamp = self._identity(item)
        if self.context.known(ref, version) is not None:
            report.known += 1
            if stamp is not None:
                mark.done(*stamp)
            return True
        draft = RecordDraft(
            source_ref=ref,
            name=ref,
            version=version,
            metadata={
                "feed": display_url(self.opts.url),
                "item_id": ref,
                "updated_at": stamp[1] if stamp else None,
            },
        )
        try:
            if too_deep and contains_too_deep(item):
                raise ItemInvalid(
                    f"item is nested deeper than {MAX_DEPTH} levels "
                    "(arrays/objects inside each other)"
                )
            if not isinstance(item, dict):
                raise ItemInvalid(f"item is {type_name(item)}, expected an object")
            content = self._fill_draft(draft, item, f)
            if f.updated_at and stamp is None:
                raise ItemInvalid(self._field_problem(item, "updated_at", f.updated_at))
        except ItemInvalid as e:
            self._fail(draft, e.reason, report, stamp, mark)
            return True
        return self._emit_with_download(draft, content, page_url, report, mark, stamp)

    def _identity(self, item: Any) -> tuple[str, str, tuple[float, str] | None]:
        f = self.opts.fields
        raw_id = lookup(item, f.id) if isinstance(item, dict) else MISSING
        digest = canonical_hash(item)
        valid_id = isinstance(raw_id, str | int) and not isinstance(raw_id, bool) and raw_id != ""
        ref = str(raw_id) if valid_id else f"invalid-item:{digest[:24]}"
        stamp: tuple[float, str] | None = None
        if f.updated_at and isinstance(item, dict):
            raw = lookup(item, f.updated_at)
            key = parse_timestamp(raw)
            if key is not None:
                stamp = (key, str(raw))
        version = stamp[1] if stamp is not None else digest
        return ref, version, stamp

    def _field_problem(self, item: Any, name: str, path: str) -> str:
        value = lookup(item, path)
        if value is MISSING:
            return f"field {name} ({path!r}) is missing"
        if name == "updated_at":
            return f"field {name} ({path!r}) is not a date-time or a number: {str(value)[:40]!r}"
        return f"field {name} ({path!r}) is {type_name(value)}"

    def _string(self, item: dict[str, Any], name: str, required: bool) -> str | None:
        path: str | None = getattr(self.opts.fields, name)
        if path is None:
            return None
        value = lookup(item, path)
        if value is MISSING or value is None:
            if required:
                raise ItemInvalid(f"field {name} ({path!r}) is missing")
            return None
        if name == "id" and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ItemInvalid(f"field {name} ({path!r}) is {type_name(value)}, expected a string")
        return value

    def _fill_draft(self, draft: RecordDraft, item: dict[str, Any], f: FieldMap) -> Content:
        """Name, organization and sections into ``draft``; the file fields returned."""
        if not self._string(item, "id", required=True):
            raise ItemInvalid(f"field id ({f.id!r}) is empty")
        name = self._string(item, "name", required=True)
        draft.organization = self._string(item, "organization", required=False)
        text = self._string(item, "body_text", required=False)
        body = self._string(item, "body_html", required=False)
        file_url = self._string(item, "file_url", required=False)
        b64 = self._string(item, "file_base64", required=False)
        file_name = self._string(item, "file_name", required=False)
        mime = self._string(item, "mime", required=False)
        if not (text or body or file_url or b64):
            mapped = [p for p in (f.file_url, f.file_base64, f.body_text, f.body_html) if p]
            raise ItemInvalid(f"item has no content (none of {', '.join(map(repr, mapped))})")
        if body:
            draft.sections.append(Section(content=body))
        if text:
            draft.sections.append(Section(content=text_to_html(text)))
        ref = draft.source_ref
        draft.name = name or (safe_file_name(file_name, ref) if file_name else ref)
        return Content(file_url=file_url, base64=b64, file_name=file_name, mime=mime)

    def _fail(
        self,
        draft: RecordDraft,
        reason: str,
        report: PollReport,
        stamp: tuple[float, str] | None,
        mark: Watermark,
    ) -> None:
        self.context.fail(draft, reason)
        report.failed += 1
        self.context.log.warning(
            "source %s: item %s failed: %s", self.name, draft.source_ref, reason
        )
        if stamp is not None:
            mark.done(*stamp)

    def _emit_with_download(
        self,
        draft: RecordDraft,
        content: Content,
        page_url: str,
        report: PollReport,
        mark: Watermark,
        stamp: tuple[float, str] | None,
    ) -> bool:
        file_name, mime = content.file_name, content.mime
        limit = self.context.max_file_size
        download: Download | None = None
        if content.base64:
            try:
                data = base64.b64decode(re.sub(r"\s+", "", content.base64), validate=True)
            except (binascii.Error, ValueError):
                self._fail(
                    draft,
                    f"field file_base64 ({self.opts.fields.file_base64!r}) is not valid base64",
                    report,
                    stamp,
                    mark,
                )
                return True
            if len(data) > limit:
                self._fail(
                    draft,
                    f"inline file is {len(data)} bytes, over the limit of {limit}",
                    report,
                    stamp,
                    mark,
                )
                return True
            payload = data
            draft.files.append(
                FileInput(
                    file_name=safe_file_name(file_name or draft.name, draft.source_ref),
                    open=lambda: io.BytesIO(payload),
                    claimed_mime=mime,
                )
            )
        if content.file_url:
            url = urljoin(page_url, content.file_url)
            draft.metadata["url"] = display_url(url)
            try:
                download = self.http.open_download(url, limit)
            except FeedProblem as e:
                if e.transient:
                    report.deferred += 1
                    self.context.log.warning(
                        "source %s: item %s deferred to the next poll: %s",
                        self.name,
                        draft.source_ref,
                        e.reason,
                    )
                    if stamp is not None:
                        mark.deferred(*stamp)
                    return False
                self._fail(draft, e.reason, report, stamp, mark)
                return True
            report.downloads += 1
            response = download.response
            name = (
                file_name
                or disposition_name(response)
                or posixpath.basename(unquote(urlsplit(response.url or url).path))
            )
            claimed = mime or (response.headers.get("Content-Type") or "").split(";")[0].strip()
            first: list[Download] = [download]

            def opener() -> IO[bytes]:
                # the download opened above; a second call (a retry inside the engine)
                # opens it again
                opened = first.pop() if first else self.http.open_download(url, limit)
                return io.BufferedReader(DownloadStream(opened, url), CHUNK)

            draft.files.append(
                FileInput(
                    file_name=safe_file_name(name, f"{draft.source_ref}.bin"),
                    open=opener,
                    claimed_mime=claimed or None,
                    metadata={"url": display_url(url), "content_length": content_length(response)},
                )
            )
        try:
            result = self.context.emit(draft)
        except TransientError as e:
            return self._deferred(draft, e.reason, report, mark, stamp)
        except FeedProblem as e:  # a re-opened download failed
            if e.transient:
                return self._deferred(draft, e.reason, report, mark, stamp)
            self._fail(draft, e.reason, report, stamp, mark)
            return True
        except PermanentError as e:
            self._fail(draft, e.reason, report, stamp, mark)
            return True
        finally:
            if download is not None:
                download.close()
        if result.status == "accepted":
            report.emitted += 1
        elif result.status == "known":
            report.known += 1
        else:
            report.failed += 1
        if stamp is not None:
            mark.done(*stamp)
        return True

    def _deferred(
        self,
        draft: RecordDraft,
        reason: str,
        report: PollReport,
        mark: Watermark,
        stamp: tuple[float, str] | None,
    ) -> bool:
        report.deferred += 1
        self.context.log.warning(
            "source %s: item %s deferred to the next poll: %s", self.name, draft.source_ref, reason
        )
        if stamp is not None:
            mark.deferred(*stamp)
        return False
