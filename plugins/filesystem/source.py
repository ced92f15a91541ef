"""The drop-folder source: every complete file in a folder becomes one record, once.

A file is noticed (by a walk or a watchdog event), waits until it is stable (a scanner
may still be writing it), is emitted once per version, and is moved (or deleted, or
kept) only after delivery, and only while it is still the version that was delivered,
so a newer file of the same name is never moved by an older record. Odd input (empty,
too large, unreadable, special files, symlinks, undecodable names) is logged once per
version and never stops the daemon.

How a file travels step by step, and the outcome for each kind of odd input:
docs/internals.md, "The drop-folder source".
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pipeline import (
    DocumentRecord,
    EmitResult,
    FileInput,
    RecordDraft,
    Source,
    SourceContext,
    TransientError,
)

from .aftercare import Aftercare
from .claims import Claims, new_collector_id, valid_collector_id
from .names import PathFilter, display_name, display_path, encode_ref, organization_of
from .observe import DropFolderHandler, FolderWatcher
from .options import FilesystemOptions
from .reader import ChangedWhileReading, NotARegularFile, open_checked
from .stability import Signature, StabilityTracker, signature
from .versions import base_version, legacy_version_of, version_of
from .walk import walk

TICK = 0.05  # seconds between looks at the tracker while watching
WALK_SLICE = 0.2  # seconds of walking before the tracker gets a look again
SCAN_SETTLE_LIMIT = 60.0  # once-mode: how long scan() waits for files still changing
_NOTED_MAX = 10_000

# States after which the engine no longer touches the file: if the file is still in the
# drop folder, the post-action did not (or could not) happen, or the user put it back.
_FINAL = ("done", "duplicate", "failed")
_VERSIONS_SINCE = "versions_with_inode_since"  # checkpoint: see _settled_before_upgrade
_COLLECTOR = "collector"  # checkpoint: this collector's claim folder name


class FilesystemSource(Source):
    """``type = "filesystem"``: a watched drop folder."""

    options_model = FilesystemOptions

    def __init__(self, name: str, options: Any, context: SourceContext) -> None:
        if not isinstance(options, FilesystemOptions):
            options = FilesystemOptions.model_validate(options)
        super().__init__(name, options, context)
        self.opts: FilesystemOptions = options
        self.log = context.log
        self.root: str = os.path.abspath(os.fspath(self.opts.path))
        self.filter = PathFilter(options.include, options.exclude)
        self.tracker = StabilityTracker(options.stability_delay)
        self._hidden_dirs = self._excluded_dirs(options)
        self._in_flight: set[tuple[str, str]] = set()  # (ref, version) emitted, not (n)acked
        self._lock = threading.Lock()
        self._noted: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._folders: collections.deque[str] = collections.deque()
        self._wake = threading.Event()
        self._watcher: FolderWatcher | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(2 * options.parallel_reads)
        self._note_lock = threading.Lock()
        self._root_id: tuple[int, int] | None = None
        self.aftercare = Aftercare(name, options, self.root, self.log)
        # claiming needs every outcome to move the file away: a file kept in place
        # would be claimed again (a new ctime, a new version) for ever
        self._claiming = options.after != "keep" and options.on_failure == "move"
        self._claims: Claims | None = None
        self._claims_lock = threading.Lock()

    # ------------------------------------------------------------------ paths

    def _excluded_dirs(self, options: FilesystemOptions) -> set[str]:
        """processed/ and failed/ as the walk and the observer spell paths (below
        ``self.root``), also when they were configured through another path to the same
        place (a symlink): re-ingesting processed/ would move files round in circles."""
        dirs: set[str] = set()
        real_root = os.path.realpath(self.root)
        for d in (options.processed, options.failed):
            dirs.add(os.path.abspath(os.fspath(d)))
            real = os.path.realpath(d)
            if real == real_root or real.startswith(real_root + os.sep):
                dirs.add(
                    os.path.normpath(os.path.join(self.root, os.path.relpath(real, real_root)))
                )
        return dirs

    def _real_root(self) -> str:
        return os.path.realpath(self.root)

    def _rel(self, path: str) -> str | None:
        prefix = self.root.rstrip(os.sep) + os.sep
        if not path.startswith(prefix):
            return None
        return path[len(prefix) :].replace(os.sep, "/")

    def _hidden(self, path: str) -> bool:
        """processed/ and failed/ (and anything below them) are never sources."""
        return any(path == d or path.startswith(d + os.sep) for d in self._hidden_dirs)

    def _prune(self, path: str, rel: str) -> bool:
        return self._hidden(path) or self.filter.skip_dir(rel)

    def _wanted(self, path: str) -> bool:
        rel = self._rel(path)
        if rel is None or self._hidden(path):
            return False
        if not self.opts.recursive and "/" in rel:
            return False
        return self.filter.accepts_file(rel)

    # ------------------------------------------------------------------ claims

    def _claims_now(self) -> Claims | None:
        """This collector's claim folder (None when files are taken in place). Its name
        is kept in the ledger, so it is stable across restarts and unique per state."""
        if not self._claiming:
            return None
        with self._claims_lock:
            if self._claims is None:
                collector = self.context.get_checkpoint(_COLLECTOR)
                if collector is None or not valid_collector_id(collector):
                    collector = new_collector_id()
                    self.context.set_checkpoint(_COLLECTOR, collector)
                self._claims = Claims(self.root, collector)
                self.aftercare.claims = self._claims
                self.log.info(
                    "collector %s: files are claimed into %s before they are taken",
                    collector,
                    self._claims.base,
                    extra={"source": self.name},
                )
            return self._claims

    def _owned(self, path: str) -> tuple[str, str] | None:
        """``(rel, version)`` when ``path`` is in this collector's claim folder."""
        claims = self._claims_now()
        return claims.owned(path) if claims is not None else None

    def _claim(self, path: str, rel: str, ref: str, st: os.stat_result, version: str) -> str | None:
        """The path to read the file from: its claim (None: another collector has it)."""
        claims = self._claims_now()
        if claims is None or st.st_size == 0 or claims.owned(path) is not None:
            return path  # empty files are left in place (see _emit); claimed already
        if os.path.islink(path):
            return path  # a relative link would point elsewhere from the claim folder
        try:
            claimed = claims.claim(path, rel, version)
        except OSError as e:
            if e.errno == errno.EXDEV:  # another file system mounted below the drop folder
                self._note(ref, version, 30, "cannot claim %s (%s); taken in place", rel, e)
                return path
            # still open on an SMB client (sharing mode), no permission: not now
            self._note(ref, version, 30, "cannot claim %s (%s); trying again later", rel, e)
            self.tracker.touch(path)
            return None
        if claimed is None:
            self.log.debug("%s was claimed by another collector (or is gone); left", rel)
        return claimed

    # ------------------------------------------------------------------ logging helpers

    def _note(self, ref: str, version: str, level: int, msg: str, *args: object) -> None:
        """Log ``msg`` once per file version (rescans meet the same odd file again)."""
        key = (ref, f"{version}:{msg}")
        with self._note_lock:
            if key in self._noted:
                return
            self._noted[key] = None
            if len(self._noted) > _NOTED_MAX:
                self._noted.popitem(last=False)
        self.log.log(level, msg, *args, extra={"source": self.name, "source_ref": ref})

    # ------------------------------------------------------------------ deciding

    def _reserve(self, ref: str, version: str) -> bool:
        """Mark ``ref`` at ``version`` as being taken; False if it already is (or was
        emitted and awaits its ack): a second event for a file in flight does nothing."""
        with self._lock:
            if (ref, version) in self._in_flight:
                return False
            self._in_flight.add((ref, version))
            return True

    def _release(self, ref: str, version: str) -> None:
        with self._lock:
            self._in_flight.discard((ref, version))

    def _should_be_gone(self, state: str) -> bool:
        if state == "failed":
            return self.opts.on_failure == "move"
        return self.opts.after != "keep"

    def _consider(self, path: str, rel: str, st: os.stat_result, *, stable: bool) -> None:
        """Look at one candidate file; emit it, track it, or leave it with a reason.

        A file in the claim folder keeps the relative path and version it was claimed
        with (the rename changed its ctime).
        """
        owned = self._owned(path)
        claimed_version = None
        if owned is not None:
            rel, claimed_version = owned
        ref = encode_ref(rel)
        if stat.S_ISLNK(st.st_mode):
            target_st = self._link_target(path, ref, st)
            if target_st is None:
                return
            st = target_st
        if not stat.S_ISREG(st.st_mode):
            self._note(ref, "", logging.DEBUG, "ignored %s: not a regular file", rel)
            return
        if not stable:
            age = time.time() - st.st_mtime
            if age < self.opts.stability_delay or age < 0:
                self.tracker.touch(path, signature(st))
                return
        self._submit(path, rel, ref, st, claimed_version or version_of(st))

    def _submit(self, path: str, rel: str, ref: str, st: os.stat_result, version: str) -> None:
        """Take the file: in the reader pool while scanning/watching, else right here."""
        if not self._reserve(ref, version):
            return
        pool = self._pool
        if pool is None:
            self._take(path, rel, ref, st, version)
            return
        while not self._slots.acquire(timeout=0.2):  # bounded: the walk stays a stream
            if self.context.stopping.is_set():
                self._release(ref, version)
                return
        try:
            pool.submit(self._take_in_pool, path, rel, ref, st, version)
        except RuntimeError:  # the pool is shutting down
            self._slots.release()
            self._release(ref, version)

    def _take_in_pool(
        self, path: str, rel: str, ref: str, st: os.stat_result, version: str
    ) -> None:
        try:
            self._take(path, rel, ref, st, version)
        except Exception:
            self.log.exception("error taking %s; skipped", rel, extra={"source": self.name})
        finally:
            self._slots.release()

    def _take(self, path: str, rel: str, ref: str, st: os.stat_result, version: str) -> None:
        """Emit the file (reserved by :meth:`_reserve`); keep the reservation only if the
        engine accepted it (``ack``/``nack`` release it).

        When the ledger already has this version in a final state although the file
        should then have left the folder (a move that failed, content other than what
        was delivered), it is emitted again as ``<version>#<n>``.
        """
        accepted = False
        try:
            if self._settled_before_upgrade(ref, st):
                return
            claimed = self._claim(path, rel, ref, st, version)
            if claimed is None:
                return
            path = claimed
            for n in range(1000):
                v = version if n == 0 else f"{version}#{n}"
                result = self._emit(path, rel, ref, st, v)
                if result is None:
                    return
                if result.status == "accepted":
                    accepted = True
                    return
                if result.status != "known" or result.state not in _FINAL:
                    return
                if not self._should_be_gone(result.state):
                    return
        finally:
            if not accepted:
                self._release(ref, version)

    def _upgrade_mark(self) -> int:
        """When this source first ran with versions that hold inode and ctime (ns)."""
        mark = self.context.get_checkpoint(_VERSIONS_SINCE)
        if mark is None:
            mark = str(time.time_ns())
            self.context.set_checkpoint(_VERSIONS_SINCE, mark)
        return int(mark)

    def _settled_before_upgrade(self, ref: str, st: os.stat_result) -> bool:
        """A file kept in place (``after``/``on_failure = "keep"``) whose record an earlier
        release settled under a ``<size>-<mtime_ns>`` version: not read again, as long as
        its ctime shows it has not changed since this release first ran."""
        if self._claiming:
            return False  # every settled file left the folder
        state = self.context.known(ref, legacy_version_of(st))
        if state not in _FINAL or self._should_be_gone(state):
            return False
        return st.st_ctime_ns < self._upgrade_mark()

    def _link_target(self, path: str, ref: str, st: os.stat_result) -> os.stat_result | None:
        if not self.opts.follow_symlinks:
            self._note(
                ref, "", logging.INFO, "skipped %s: a symbolic link (follow_symlinks is off)", path
            )
            return None
        real = os.path.realpath(path)
        real_root = self._real_root()
        if not real.startswith(real_root.rstrip(os.sep) + os.sep) or self._hidden(real):
            self._note(
                ref,
                "",
                logging.WARNING,
                "skipped %s: a symbolic link leading out of the drop folder",
                path,
            )
            return None
        try:
            return os.stat(path)
        except OSError:
            return None

    # ------------------------------------------------------------------ emitting

    def _draft(
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
                "folder": display_path(self.root),
            },
        )

    def _emit(
        self, path: str, rel: str, ref: str, st: os.stat_result, version: str
    ) -> EmitResult | None:
        """Emit one version of the file; None when it was not emitted (skipped, vanished,
        changed: the tracker has it again)."""
        display = display_name(rel.rsplit("/", 1)[-1])
        if st.st_size == 0:
            self._note(
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
            return self._fail_unread(path, rel, ref, st, version, reason)
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
            self._note(ref, version, logging.INFO, "skipped %s", e)
            return None
        except PermissionError as e:
            return self._fail_unread(
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
            return self._fail_unread(path, rel, ref, st, version, f"cannot open the file: {e}")
        if self.opts.follow_symlinks and not self._inside_root(reader.fileno()):
            reader.close()
            self._note(
                ref, version, logging.WARNING, "skipped %s: leads out of the drop folder", rel
            )
            return None
        raw = reader.raw
        draft = self._draft(
            rel, ref, st, version, FileInput(file_name=display, open=lambda: reader)
        )
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

    def _inside_root(self, fd: int) -> bool:
        """Whether an opened descriptor's real path lies inside the drop folder (Linux)."""
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return True  # no /proc: the realpath check before opening stands
        root = self._real_root().rstrip(os.sep) + os.sep
        return real.startswith(root) and not self._hidden(real)

    def _fail_unread(
        self, path: str, rel: str, ref: str, st: os.stat_result, version: str, reason: str
    ) -> EmitResult:
        """Record a file that cannot be spooled as failed; the engine then nacks it (which
        puts it in ``failed/`` with the reason, as for any failed record)."""
        state = self.context.known(ref, version)
        if state is not None:
            return EmitResult("known", state=state)
        display = display_name(rel.rsplit("/", 1)[-1])
        draft = self._draft(rel, ref, st, version, FileInput(file_name=display, path=Path(path)))
        self.context.fail(draft, reason)
        return EmitResult("failed", state="failed", reason=reason)

    # ------------------------------------------------------------------ scanning

    def _walk_candidates(self, start: str | None = None) -> Any:
        """The files to look at: this collector's claims (resumed after a restart, none
        in flight here), then the drop folder (or the folder ``start`` below it)."""
        claims = self._claims_now()
        if claims is not None and start is None:
            yield from claims.files()
        for found in walk(self.root, recursive=self.opts.recursive, prune=self._prune, start=start):
            if self._hidden(found.path):
                continue
            if not self.opts.recursive and "/" in found.rel:
                continue
            if not self.filter.accepts_file(found.rel):
                continue
            yield found

    def _walk_step(self, it: Any, budget: float) -> bool:
        """Consider walked files for ``budget`` seconds; True when the walk is finished."""
        deadline = time.monotonic() + budget
        for found in it:
            try:
                self._consider(found.path, found.rel, found.st, stable=False)
            except Exception:
                self.log.exception("error taking %s; skipped", found.rel)
            if self.context.stopping.is_set() or time.monotonic() >= deadline:
                return False
        return True

    def _stat_sig(self, path: str) -> Signature | None:
        try:
            return signature(os.lstat(path))
        except OSError:
            return None

    def _take_due(self) -> int:
        """Emit the tracked files that became stable; returns how many were looked at."""
        due = self.tracker.due(self._stat_sig)
        for path, _sig in due:
            if self.context.stopping.is_set():
                break
            rel = self._rel(path)
            if self._owned(path) is None and (rel is None or not self._wanted(path)):
                continue
            assert rel is not None
            try:
                st = os.lstat(path)
            except OSError:
                self.log.debug("%s vanished before it was read; forgotten", rel)
                continue
            try:
                self._consider(path, rel, st, stable=True)
            except Exception:
                self.log.exception("error taking %s; skipped", rel)
        return len(due)

    def _root_available(self) -> bool:
        try:
            st = os.stat(self.root)
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode)

    @contextlib.contextmanager
    def _readers(self) -> Iterator[None]:
        """A few threads that read files into the spool while the walk goes on: the
        engine's spool write and fsync per file dominate a backlog, and they overlap."""
        if self.opts.parallel_reads <= 1 or self._pool is not None:
            yield
            return
        pool = ThreadPoolExecutor(self.opts.parallel_reads, thread_name_prefix=f"fs-{self.name}")
        self._pool = pool
        try:
            yield
        finally:
            self._pool = None
            pool.shutdown(wait=True)

    def scan(self) -> None:
        """Emit the backlog (streamed), then wait for files still being written.

        Files still changing after :data:`SCAN_SETTLE_LIMIT` seconds are left for the next
        run (or the daemon's watch), with a log line.
        """
        if not self._root_available():
            self.log.warning(
                "drop folder %s is not available; nothing scanned",
                self.root,
                extra={"source": self.name},
            )
            return
        self._upgrade_mark()
        with self._readers():
            self._scan()

    def _scan(self) -> None:
        it = self._walk_candidates()
        while not self._walk_step(it, 1.0):
            if self.context.stopping.is_set():
                return
            self._take_due()
        deadline = time.monotonic() + max(SCAN_SETTLE_LIMIT, 5 * self.opts.stability_delay)
        while len(self.tracker) and not self.context.stopping.is_set():
            if time.monotonic() >= deadline:
                self.log.warning(
                    "%d file(s) in %s still changing; left for the next run",
                    len(self.tracker),
                    self.root,
                    extra={"source": self.name},
                )
                return
            self._take_due()
            wait = self.tracker.next_due_in()
            self.context.stopping.wait(min(TICK * 4, wait if wait is not None else TICK))

    # ------------------------------------------------------------------ watching

    def _never_watch(self, path: str) -> bool:
        """Folders the observer leaves out: processed/, failed/, ignored or excluded."""
        if self._hidden(path):
            return True
        rel = self._rel(path)
        return rel is not None and self.filter.skip_dir(rel)

    def _start_watching(self) -> None:
        handler = DropFolderHandler(self.tracker, self._wanted, self._folders, self._wake)
        watcher = FolderWatcher(
            self.opts.observer,
            self.root,
            recursive=self.opts.recursive,
            handler=handler,
            poll_interval=self.opts.poll_interval,
            hidden=self._never_watch,
        )
        self._watcher = watcher
        watcher.start()
        st = os.stat(self.root)
        self._root_id = (st.st_dev, st.st_ino)
        self.log.info(
            "watching %s (%s observer)", self.root, watcher.kind, extra={"source": self.name}
        )

    def _stop_watching(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _watch_ok(self) -> bool:
        """Whether the current observer still watches the current folder."""
        if self._watcher is None or not self._watcher.healthy():
            return False
        try:
            st = os.stat(self.root)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._root_id

    def watch(self) -> None:
        """Watch until ``context.stopping``: events, stable files, periodic full rescans.

        A drop folder that is missing (an unmounted share) is reported and looked for
        again every ``missing_retry_interval`` seconds; when it is back, watching resumes
        with a full rescan.
        """
        self._upgrade_mark()
        with self._readers():
            self._watch_loop()

    def _watch_loop(self) -> None:
        stopping = self.context.stopping
        walker: Any = None
        next_rescan = 0.0
        missing_since: float | None = None
        next_missing_check = 0.0
        next_check = 0.0
        try:
            while not stopping.is_set():
                now = time.monotonic()
                if self._watcher is None or not self._watch_ok():
                    if self._watcher is not None:
                        self._stop_watching()
                        walker = None
                    if now < next_missing_check:
                        stopping.wait(min(TICK * 4, next_missing_check - now))
                        continue
                    if not self._root_available():
                        if missing_since is None:
                            missing_since = now
                            self.log.warning(
                                "drop folder %s is not available (unmounted or removed?); "
                                "looking again every %.0f s",
                                self.root,
                                self.opts.missing_retry_interval,
                                extra={"source": self.name},
                            )
                        next_missing_check = now + self.opts.missing_retry_interval
                        continue
                    try:
                        self._start_watching()
                    except OSError as e:
                        self.log.warning(
                            "cannot watch %s: %s; trying again in %.0f s",
                            self.root,
                            e,
                            self.opts.missing_retry_interval,
                            extra={"source": self.name},
                        )
                        self._stop_watching()
                        next_missing_check = now + self.opts.missing_retry_interval
                        continue
                    if missing_since is not None:
                        self.log.warning(
                            "drop folder %s is available again; watching resumes",
                            self.root,
                            extra={"source": self.name},
                        )
                        missing_since = None
                    next_rescan = now  # a fresh observer: walk once for what it missed
                self._take_due()
                if now >= next_check and self._watcher is not None:
                    self._folders.extend(self._watcher.check())
                    next_check = now + 1.0
                while self._folders and walker is None:
                    folder = self._folders.popleft()
                    if self._wanted_folder(folder):
                        if self._watcher is not None:
                            self._watcher.add(folder)  # watch first, then walk: none missed
                        walker = self._walk_candidates(start=folder)
                if walker is None and now >= next_rescan:
                    walker = self._walk_candidates()
                    next_rescan = now + self.opts.rescan_interval
                if walker is not None:
                    if self._walk_step(walker, WALK_SLICE):
                        walker = None
                    continue
                self._wake.clear()
                wait = self.tracker.next_due_in()
                self._wake.wait(TICK if wait is None else min(max(wait, 0.005), TICK))
        finally:
            if walker is not None:
                with contextlib.suppress(Exception):
                    walker.close()
            self._stop_watching()

    def _wanted_folder(self, folder: str) -> bool:
        rel = self._rel(folder)
        if rel is None or self._hidden(folder) or not self.opts.recursive:
            return False
        parts = rel.split("/")
        return not any(self.filter.skip_dir("/".join(parts[: i + 1])) for i in range(len(parts)))

    # ------------------------------------------------------------------ outcomes

    def ack(self, record: DocumentRecord, outcome: Literal["delivered", "duplicate"]) -> None:
        """Delivered or duplicate: move to ``processed/``, delete, or keep (idempotent)."""
        try:
            self._claims_now()  # a record resumed after a restart: its file is claimed
            self._look_again(self.aftercare.delivered(record, outcome))
        finally:
            self._done(record)

    def nack(self, record: DocumentRecord, reason: str) -> None:
        """Failed for good: move to ``failed/`` with ``<name>.error.txt``, or keep."""
        try:
            self._claims_now()
            self._look_again(self.aftercare.failed(record, reason))
        finally:
            self._done(record)

    def _look_again(self, changed: str | None) -> None:
        """A file the post-action left because it changed: take its new version."""
        if changed is not None:
            self.tracker.touch(changed)
            self._wake.set()

    def _done(self, record: DocumentRecord) -> None:
        self._release(record.source_ref, base_version(record.version))

    def close(self) -> None:
        """Stop the observer (if ``watch`` did not already) and join its threads."""
        self._stop_watching()
