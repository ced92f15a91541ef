"""One feed item into the spool: known, failed for good, deferred, or emitted with its file.

Downloads are opened before ``emit`` (so a 404 or a 5xx is known before anything is
recorded) and handed to the spool as a stream: no whole file in memory.
"""

from __future__ import annotations

import base64
import binascii
import io
import posixpath
import re
from typing import IO, Any
from urllib.parse import unquote, urljoin, urlsplit

from pipeline import FileInput, PermanentError, RecordDraft, SourceContext, TransientError

from .checkpoint import Watermark
from .items import Content, ItemInvalid, Stamp, fill_draft, identity
from .options import HttpFeedOptions
from .report import PollReport
from .transport import (
    CHUNK,
    Download,
    DownloadStream,
    FeedClient,
    FeedProblem,
    content_length,
    disposition_name,
)
from .values import display_url, safe_file_name


class ItemIntake:
    """Takes the items of one source's polls; counts each outcome in the poll's report
    and tells the watermark which updated-at values are settled or deferred."""

    def __init__(
        self, name: str, opts: HttpFeedOptions, context: SourceContext, http: FeedClient
    ) -> None:
        self.name = name
        self.opts = opts
        self.context = context
        self.http = http

    def take(
        self, item: Any, page_url: str, report: PollReport, mark: Watermark, too_deep: bool
    ) -> bool:
        """Emit one item; False when it was not safely recorded (holds the checkpoint).
        ``too_deep``: the page had values nested too deeply (``parsing``)."""
        report.items += 1
        ref, version, stamp = identity(item, self.opts.fields)
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
            content = fill_draft(draft, item, self.opts.fields, stamp, too_deep)
        except ItemInvalid as e:
            self._fail(draft, e.reason, report, stamp, mark)
            return True
        return self._emit_with_download(draft, content, page_url, report, mark, stamp)

    def _fail(
        self,
        draft: RecordDraft,
        reason: str,
        report: PollReport,
        stamp: Stamp | None,
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
        stamp: Stamp | None,
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
        stamp: Stamp | None,
    ) -> bool:
        report.deferred += 1
        self.context.log.warning(
            "source %s: item %s deferred to the next poll: %s", self.name, draft.source_ref, reason
        )
        if stamp is not None:
            mark.deferred(*stamp)
        return False
