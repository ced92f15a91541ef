"""One version of a drop-folder file read into the engine's spool (or recorded as failed).

The file is opened with the signature it had when it was found; a file that changes
while it is read is not recorded, and the tracker takes it again once it is stable.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import NamedTuple

from pipeline import EmitResult, FileInput, RecordDraft, TransientError

from .names import display_name, display_path, organization_of
from .parts import Part
from .reader import ChangedWhileReading, NotARegularFile, open_checked
from .stability import Signature, signature


class Candidate(NamedTuple):
    """One version of a file to take: where it is (its claim), its relative path and
    reference, the stat it was found with, its version."""

    path: str
    rel: str
    ref: str
    st: os.stat_result
    version: str
    link: bool = False  # a symbolic link (followed: ``st`` is its target's)


@dataclass
class _Opened:
    """A file of a batch, open for the engine to read."""

    file: Candidate
    reader: BufferedReader
    draft: RecordDraft
    index: int = 0  # in the batch
    changed: bool = False  # the reader found it changed at its end


class Spooler(Part):
    """Emits file versions; the caller decides which (and claims them first)."""

    def draft(
        self, rel: str, ref: str, st: os.stat_result, version: str, file: FileInput
    ) -> RecordDraft:
        name = display_name(rel.rsplit("/", 1)[-1])
        org = organization_of(rel) if self.opts.organization_from == "subfolder" else None
        return RecordDraft(
            source_ref=ref,
            version=version,
            name=name,
            files=[file],
            organization=org,
            metadata={
                "relative_path": display_name(rel),
                "size": st.st_size,
                "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime)),
                "mtime_ns": st.st_mtime_ns,
                "folder": display_path(self.folder.root),
            },
        )

    def emit(
        self, path: str, rel: str, ref: str, st: os.stat_result, version: str
    ) -> EmitResult | None:
        """Emit one version of the file; None when it was not emitted (skipped, vanished,
        changed: the tracker has it again)."""
        return self.emit_many([Candidate(path, rel, ref, st, version)])[0]

    def emit_many(self, files: list[Candidate]) -> list[EmitResult | None]:
        """:meth:`emit` of each file, the engine's ledger asked and written once for the
        batch (``SourceContext.emit_many``)."""
        out: list[EmitResult | None] = []
        opened: list[_Opened] = []
        try:
            for f in files:
                try:
                    got = self._open(f)
                except Exception:  # most likely a bug: this file only
                    self.log.exception("error taking %s; skipped", f.rel)
                    got = None
                if isinstance(got, _Opened):
                    got.index = len(out)
                    opened.append(got)
                    out.append(None)  # set from the engine's answer below
                else:
                    out.append(got)
            results = self.context.emit_many([o.draft for o in opened])
        finally:
            for o in opened:
                o.changed = getattr(o.reader.raw, "changed", False)
                o.reader.close()
        for o, result in zip(opened, results, strict=True):
            out[o.index] = self._outcome(o, result)
        return out

    def _open(self, f: Candidate) -> _Opened | EmitResult | None:
        """The file opened for the engine to read, with its draft; else what became of
        it (skipped: None, or recorded as failed unread)."""
        path, rel, ref, st, version, _link = f
        if st.st_size == 0:
            self.notes.note(
                ref,
                version,
                logging.WARNING,
                "skipped %s: empty file (0 bytes); left in place, taken once it has content",
                rel,
            )
            return None
        if st.st_size > self.context.max_file_size:
            reason = (
                f"file too large: {st.st_size} bytes, the limit is {self.context.max_file_size} "
                "bytes ([pipeline] max_file_size)"
            )
            return self.fail_unread(path, rel, ref, st, version, reason)
        expected: Signature = signature(st)
        try:
            reader = open_checked(path, expected, rel, follow_symlinks=self.opts.follow_symlinks)
        except FileNotFoundError:
            self.log.debug("%s vanished before it was read; forgotten", rel)
            return None
        except ChangedWhileReading:
            self.tracker.touch(path)
            return None
        except NotARegularFile as e:
            self.notes.note(ref, version, logging.INFO, "skipped %s", e)
            return None
        except PermissionError as e:
            return self.fail_unread(
                path,
                rel,
                ref,
                st,
                version,
                f"cannot read the file: {e.strerror or e} (check its permissions)",
            )
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            return self.fail_unread(path, rel, ref, st, version, f"cannot open the file: {e}")
        if self.opts.follow_symlinks and not self.folder.holds_fd(reader.fileno()):
            reader.close()
            self.notes.note(
                ref, version, logging.WARNING, "skipped %s: leads out of the drop folder", rel
            )
            return None
        display = display_name(rel.rsplit("/", 1)[-1])
        draft = self.draft(rel, ref, st, version, FileInput(file_name=display, open=lambda: reader))
        return _Opened(f, reader, draft)

    def _outcome(self, o: _Opened, result: EmitResult | Exception) -> EmitResult | None:
        """What the engine's answer means for the file (the tracker takes a changed one
        again once it is stable)."""
        path, rel, ref, _st, version, _link = o.file
        if isinstance(result, ChangedWhileReading):
            self.tracker.touch(path)  # nothing was recorded: taken again once stable
            return None
        if isinstance(result, TransientError):  # e.g. the spool's disk is full: later
            self.log.warning("could not take %s now: %s; trying again later", rel, result.reason)
            self.tracker.touch(path)
            return None
        if isinstance(result, Exception):  # most likely a bug: this file only
            self.log.error(
                "error taking %s; skipped", rel, exc_info=result, extra={"source": self.name}
            )
            return None
        if result.status == "accepted":
            self.log.debug("took %s (%s)", rel, version, extra={"source": self.name})
        elif result.status == "failed":
            if o.changed or (result.reason and "changed while" in result.reason):
                self.tracker.touch(path)
            else:
                self.log.warning(
                    "could not take %s: %s",
                    rel,
                    result.reason,
                    extra={"source": self.name, "source_ref": ref},
                )
        return result

    def fail_unread(
        self, path: str, rel: str, ref: str, st: os.stat_result, version: str, reason: str
    ) -> EmitResult:
        """Record a file that cannot be spooled as failed; the engine then nacks it (which
        puts it in ``failed/`` with the reason, as for any failed record)."""
        state = self.context.known(ref, version)
        if state is not None:
            return EmitResult("known", state=state)
        display = display_name(rel.rsplit("/", 1)[-1])
        draft = self.draft(rel, ref, st, version, FileInput(file_name=display, path=Path(path)))
        self.context.fail(draft, reason)
        return EmitResult("failed", state="failed", reason=reason)
