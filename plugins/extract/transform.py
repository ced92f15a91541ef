"""The ``extract`` transform: a record's file becomes the document's sections.

The file's sniffed type (the ``mime`` transform runs first) picks an extractor from the
registry the ``ingest_register_extractors`` hook fills; it runs in the worker pool
(:mod:`.pool`) within the time budget and memory cap. Whatever happens there, the record
goes on: a failure, a timeout or a dead worker gives a note section "text could not be
extracted: ..." next to the attached file, and the outcome is written to the record's
metadata (``metadata["extract"]`` in detail, ``metadata["transform_outcomes"]["extract"]``
for counting) so ``status`` and metrics can count it.

A record that already has sections (a mail: its body) is left as it is; of a record's
files, the first one with an extractor is extracted.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from pipeline import (
    Blob,
    DeliveryResult,
    DocumentRecord,
    EngineContext,
    Registered,
    Section,
    Transform,
    hookimpl,
)

from .content import SectionBuilder, note_section, store
from .options import ExtractOptions
from .pool import ExtractionPool, Outcome

log = logging.getLogger("itglue_ingest.extract")

# sniffed types too generic to pick an extractor when the claim names a specific one
GENERIC_TYPES = frozenset(
    {
        "text/plain",
        "application/zip",
        "application/octet-stream",
        "application/x-ole-storage",
        "application/cdfv2",
    }
)
# metric label of each status (``context.tally``: a small fixed set, never free text)
METRIC_OUTCOMES = {
    "ok": "extracted",
    "empty": "empty",
    "failed": "failed",
    "timeout": "timeout",
    "crashed": "crashed",
    "unsupported": "skipped",
}
FOLDER = "extract"  # under the engine's state folder: pictures and replacements until delivery


def record_folder(root: Path, record: DocumentRecord) -> Path:
    """The folder of one record's pictures (stable across retries of the record)."""
    key = "\0".join((record.source, record.source_ref, record.version))
    return root / hashlib.sha256(key.encode()).hexdigest()[:32]


class _Cleanup:
    """Removes a record's pictures once it is delivered or a duplicate (per engine)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def forget(self, record: DocumentRecord) -> None:
        folder = record_folder(self.root, record)
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)

    @hookimpl
    def ingest_record_delivered(self, record: DocumentRecord, result: DeliveryResult) -> None:
        self.forget(record)

    @hookimpl
    def ingest_record_duplicate(self, record: DocumentRecord, existing: str) -> None:
        self.forget(record)


class ExtractTransform(Transform):
    """Extract the record's file into sections (see the module docstring)."""

    options_model = ExtractOptions

    def __init__(self, name: str, options: Any, context: EngineContext) -> None:
        super().__init__(name, options, context)
        self.opts: ExtractOptions = (
            options
            if isinstance(options, ExtractOptions)
            else ExtractOptions.model_validate(options or {})
        )
        self.limits = self.opts.limits()
        self.root = context.state_dir / FOLDER
        self._pool: ExtractionPool | None = None
        self._pool_lock = threading.Lock()
        context.add_plugin(_Cleanup(self.root))

    @property
    def pool(self) -> ExtractionPool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ExtractionPool(
                    workers=self.opts.workers,
                    timeout=self.opts.timeout,
                    memory_limit=self.opts.memory_mb * 1024 * 1024,
                )
            return self._pool

    def prepare(self) -> None:
        """Start the workers now: a worker's interpreter takes seconds to start on a
        busy host, which the first files dropped into an idle daemon would wait for."""
        self.pool.prestart()

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        if record.sections or not record.files:
            return record
        for blob in record.files:
            found, mime = self.extractor_for(blob)
            if found is not None:
                break
        else:
            mime = record.files[0].mime_type
            return self._with(record, {"status": "unsupported", "mime": mime}, [])
        outcome = self.pool.run(found.extractor, blob.path, self.limits)
        info: dict[str, Any] = {
            "status": outcome.status,
            "extractor": found.name,
            "file": blob.file_name,
            "mime": mime,
        }
        if outcome.status != "ok" or outcome.result is None:
            return self._failed(record, blob, info, outcome)
        result = outcome.result
        folder = record_folder(self.root, record)
        builder = SectionBuilder(
            pictures=folder,
            max_section_bytes=self.opts.max_section_bytes,
            max_output_bytes=self.opts.max_output_bytes,
        )
        sections = builder.add(result)
        if not any(s.kind != "text" or s.content for s in sections):
            info["status"] = "empty"
            # no file name in it: the same bytes under another name are the same content
            sections = [note_section("No text was found in the attached file.")]
        info.update(
            pages=result.pages,
            title=result.title,
            note=result.note,
            chars=len(result.text),
            sections=len(sections),
        )
        files = self._files(record, blob, result.replacement, result.replacement_name, folder)
        if not self.opts.attach_original and info["status"] == "ok":
            files = [f for f in files if f is not blob]
        log.debug(  # a success is in the record and the counts; only trouble is worth a line
            "extracted %s with %s: %d section(s)%s",
            blob.file_name,
            found.name,
            len(sections),
            f" ({result.note})" if result.note else "",
        )
        metadata_text = result.text[: self.opts.max_text_chars]
        return self._with(record, info, sections, files=files, text=metadata_text)

    def extractor_for(self, blob: Blob) -> tuple[Registered | None, str | None]:
        """The extractor for the file's sniffed type; for a type libmagic cannot tell
        apart (Markdown and CSV sniff as text/plain, some OOXML as a ZIP) or only guesses
        (one text type for another: Markdown with a <script> in it sniffs as HTML), the
        one for the claimed type (its extension). The extractor checks the content."""
        registry = self.context.extractors()
        sniffed = blob.mime_type
        found = registry.lookup(sniffed)
        claimed = blob.claimed_mime
        both_text = bool(claimed and sniffed) and all(
            str(t).startswith("text/") for t in (claimed, sniffed)
        )
        if claimed and (found is None or sniffed in GENERIC_TYPES or both_text):
            better = registry.lookup(claimed)
            if better is not None and (found is None or better.name != found.name):
                return better, claimed
        return found, sniffed

    def _failed(
        self, record: DocumentRecord, blob: Blob, info: dict[str, Any], outcome: Outcome
    ) -> DocumentRecord:
        info["reason"] = outcome.reason
        log.warning(
            "text of %s could not be extracted (%s): %s",
            blob.file_name,
            outcome.status,
            outcome.reason,
        )
        note = note_section(f"The text could not be extracted: {outcome.reason}.")
        return self._with(record, info, [note])

    def _files(
        self,
        record: DocumentRecord,
        blob: Blob,
        replacement: bytes | None,
        replacement_name: str | None,
        folder: Path,
    ) -> list[Blob]:
        """The record's files, with ``blob`` replaced when the extractor made a better one
        (a searchable PDF): stored next to the record's pictures until delivery."""
        if not replacement:
            return list(record.files)
        sha = hashlib.sha256(replacement).hexdigest()
        path = folder / f"replacement-{sha[:16]}"
        store(path, replacement)
        new = Blob(
            file_name=replacement_name or blob.file_name,
            path=path,
            size=len(replacement),
            sha256=sha,
            mime_type=blob.mime_type,
            claimed_mime=blob.claimed_mime,
            metadata={**blob.metadata, "replaces": blob.sha256},
        )
        return [new if f is blob else f for f in record.files]

    def _with(
        self,
        record: DocumentRecord,
        info: dict[str, Any],
        sections: list[Section],
        *,
        files: list[Blob] | None = None,
        text: str | None = None,
    ) -> DocumentRecord:
        self.context.tally.extraction(
            record.source, str(info.get("extractor") or "none"), METRIC_OUTCOMES[info["status"]]
        )
        metadata = dict(record.metadata)
        metadata["extract"] = {k: v for k, v in info.items() if v is not None}
        outcomes = dict(metadata.get("transform_outcomes") or {})
        outcomes[self.name] = info["status"]
        metadata["transform_outcomes"] = outcomes
        if text:
            metadata["extract_text"] = text
        update: dict[str, Any] = {"metadata": metadata, "sections": sections}
        if files is not None:
            update["files"] = files
        return record.model_copy(update=update)
