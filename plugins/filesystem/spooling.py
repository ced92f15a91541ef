"""One version of a drop-folder file read into the engine's spool (or recorded as failed).

The file is opened with the signature it had when it was found; a file that changes
while it is read is not recorded, and the tracker takes it again once it is stable.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from pathlib import Path

from pipeline import EmitResult, FileInput, RecordDraft, TransientError

from .names import display_name, display_path, organization_of
from .parts import Part
from .reader import ChangedWhileReading, NotARegularFile, open_checked
from .stability import Signature, signature


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
        display = display_name(rel.rsplit("/", 1)[-1])
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
        raw = reader.raw
        draft = self.draft(rel, ref, st, version, FileInput(file_name=display, open=lambda: reader))
        try:
            result = self.context.emit(draft)
        except ChangedWhileReading:
            self.tracker.touch(path)  # nothing was recorded: taken again once stable
            return None
        except TransientError as e:  # e.g. the spool's disk is full: this file, later
            self.log.warning("could not take %s now: %s; trying again later", rel, e.reason)
            self.tracker.touch(path)
            return None
        finally:
            changed = getattr(raw, "changed", False)
            reader.close()
        if result.status == "accepted":
            self.log.debug("took %s (%s)", rel, version, extra={"source": self.name})
        elif result.status == "failed":
            if changed or (result.reason and "changed while" in result.reason):
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
