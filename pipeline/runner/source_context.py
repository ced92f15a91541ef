"""What a running source gets from the engine: emit (spool + ledger), the ledger's
answers and checkpoints, secrets and access tokens."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Protocol, cast

from ..errors import TransientError
from ..hooks import HookFacade
from ..ledger import ACTIVE_STATES, FoundDuplicate, Ledger, LedgerEntry
from ..logs import register_secret
from ..observability.source_health import SourceHealth
from ..observability.tally import Tally
from ..records import Blob, DocumentRecord, FileInput, RecordDraft
from ..secrets import read_secret
from ..settings import SourceSettings
from ..sources import EmitResult, RecordState, SourceContext
from ..spool import Spool, SpoolTooLarge, SpoolWriteError, Staged
from .backpressure import BackPressure
from .outcomes import RunStats
from .record_flow import target_key
from .rehome import foreign_files, rehomed
from .storage import StorageTrouble, storage_error
from .workers import Settling

# seconds a duplicate handed to the pool's settler waits before a worker may ack it:
# only when the settler did not (the process was killed meanwhile)
SETTLE_GRACE = 60.0


@dataclass(frozen=True)
class SourceServices:
    """The engine's parts every source context uses."""

    ledger: Ledger
    spool: Spool
    pressure: BackPressure
    hook: HookFacade
    stats: RunStats
    notify_work: Callable[[], None]  # new work in the ledger
    stopping: threading.Event
    max_file_size: int
    trouble: StorageTrouble
    tally: Tally
    health: SourceHealth
    dry_run: bool = False
    # several collectors share the ledger: a known unfinished record whose files are in
    # another collector's spool is read again from the source (pipeline.runner.rehome)
    reread_foreign: bool = False
    # finds the duplicates of landed records as they arrive (the engine's RecordFlow)
    duplicates: DuplicateCheck | None = None
    # hands a duplicate found as it arrived to the pool's settler; False: not running
    settle: Callable[[Settling], bool] = lambda _item: False


class DuplicateCheck(Protocol):
    """What the source context asks before it spools a record (see
    :meth:`pipeline.runner.record_flow.RecordFlow.landed_originals`)."""

    def landed_originals(
        self, records: Sequence[DocumentRecord], *, other_than: int = 0
    ) -> list[tuple[DocumentRecord, str] | None]: ...

    def duplicate_recorded(self, record_id: int, duplicate_of: str) -> None: ...


class EngineSourceContext:
    """The :class:`pipeline.sources.SourceContext` the engine gives each source.

    What source authors can rely on:

    * ``emit(draft)`` first looks the identity ``(source, source_ref, version)`` up:
      known -> ``EmitResult("known", id, state)`` and nothing is read. Otherwise it
      blocks while the spool is full (``spool_max_records``/``spool_max_bytes`` of
      unfinished records) unless ``stopping`` is set, reads every ``FileInput`` once
      (``path`` opened by the engine, or ``open()`` called and the stream closed
      afterwards), and commits the spooled files and the ``received`` row before it
      returns ``EmitResult("accepted", id, "received")`` -- only then may the source
      advance a checkpoint. A draft whose content a landed record had (where the
      routing alone says it goes: :meth:`~.record_flow.RecordFlow.landed_original`) is
      recorded as a duplicate instead, nothing spooled: ``EmitResult("accepted", id,
      "duplicate")``, acked by the engine like any duplicate. The draft's
      ``organization`` defaults to the ``[[sources]]`` table's ``organization``.
    * ``emit_many(drafts)`` is ``emit`` of each, the ledger asked once for the batch's
      identities and its duplicates (:meth:`~.record_flow.RecordFlow.landed_originals`),
      and its duplicates inserted in one transaction; an exception ``emit`` would raise
      is that draft's result. ``emit`` is ``emit_many`` of one.
    * A file over ``max_file_size`` -> ``EmitResult("failed", reason="too large: N
      bytes > limit M; ...")``; an ``OSError`` while opening/reading -> ``failed`` with
      ``"unreadable: <file>: <why>"``. The failed record is in the ledger (``status``)
      and the source is nacked for it by a worker, like any failed record. A
      :class:`~pipeline.errors.TransientError` raised while reading records nothing and
      propagates (the source tries again later), and so does one raised by ``emit``
      when the spool or the ledger cannot be written (disk full, database locked): that
      is not the input's fault (the engine pauses until its storage works again). Any
      other exception propagates too.
    * With a state shared by several collectors, a record another collector spooled
      and left unfinished (this one took the source over) has its bytes in that
      collector's spool: ``known`` answers None for it and ``emit`` reads the draft's
      files again (the record keeps its state and journal) and returns ``known``.
    * ``fail(draft, reason)`` records a failed row (nacked later) unless known.
    * ``ack``/``nack`` come from worker threads, never before the outcome is committed,
      possibly again after a crash (make them idempotent); an exception from them is
      logged and the call retried with backoff.
    * ``secret(key, env)``: the variable ``env`` when set, else keyring service
      ``itglue-ingest`` user ``source:<name>:<key>``, else ``PermanentError`` saying how
      to set it. Values are registered for log redaction.
    * ``report_scan(error)``: the source's state for ``status``, ``/readyz`` and the
      metrics (connected, last successful scan, current error).
    """

    def __init__(self, services: SourceServices, settings: SourceSettings) -> None:
        self._services = services
        self._settings = settings
        self.source_name = settings.name
        # its own: set when the engine stops, and when this source alone stops (another
        # collector owns it now)
        self.stopping = threading.Event()
        self.log = logging.getLogger(f"itglue_ingest.source.{settings.name}")
        self.max_file_size = services.max_file_size
        services.health.add(settings.name)
        self.dry_run = services.dry_run

    # -- records

    def emit(self, draft: RecordDraft) -> EmitResult:
        result = self.emit_many([draft])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def emit_many(self, drafts: Sequence[RecordDraft]) -> list[EmitResult | Exception]:
        """``emit`` of each draft, in order, the ledger asked and written a few times for
        all of them (not a few times each); where ``emit`` would raise, the exception is
        in the list instead (as ``asyncio.gather(..., return_exceptions=True)``)."""
        eng = self._services
        results: list[EmitResult | Exception | None] = [None] * len(drafts)
        try:
            known = eng.ledger.find_many(
                self.source_name, [(d.source_ref, d.version) for d in drafts]
            )
        except Exception as e:
            return [self._emit_error(e, d) for d in drafts]
        arrived: list[_Arrived] = []
        try:
            for index, draft in enumerate(drafts):
                try:
                    existing = known.get((draft.source_ref, draft.version))
                    if existing is not None:
                        if eng.reread_foreign and existing.state in ACTIVE_STATES:
                            self._reread(draft, existing)
                        results[index] = EmitResult("known", existing.id, existing.state)
                        continue
                    eng.pressure.wait_for_space()
                    staged = self._stage_all(draft)
                    if isinstance(staged, str):
                        results[index] = self._record_failure(draft, staged)
                        continue
                    record = self._record(draft, [self._blob(f, st) for f, st in staged])
                    arrived.append(_Arrived(index, draft, record, [st for _, st in staged]))
                except Exception as e:
                    results[index] = self._emit_error(e, draft)
            try:
                found = (
                    eng.duplicates.landed_originals([a.record for a in arrived])
                    if eng.duplicates is not None
                    else [None] * len(arrived)
                )
            except Exception as e:
                for a in arrived:
                    results[a.index] = self._emit_error(e, a.draft)
                return _complete(results)
            duplicates = [(a, f) for a, f in zip(arrived, found, strict=True) if f is not None]
            for a, _ in duplicates:  # nothing is written to the spool
                self._discard(a.staged)
            try:
                for (a, _), result in zip(
                    duplicates, self._record_duplicates(duplicates), strict=True
                ):
                    results[a.index] = result
            except Exception as e:
                for a, _ in duplicates:
                    results[a.index] = self._emit_error(e, a.draft)
            for a, f in zip(arrived, found, strict=True):
                if f is None:
                    try:
                        results[a.index] = self._spool(a)
                    except Exception as e:
                        results[a.index] = self._emit_error(e, a.draft)
        except BaseException:  # nothing may stay behind
            for a in arrived:
                self._discard(a.staged)  # a no-op for the committed and discarded ones
            raise
        return _complete(results)

    def _emit_error(self, e: Exception, draft: RecordDraft) -> Exception:
        """What ``emit`` raises for ``e``: trouble with the engine's storage (disk full,
        database locked) is reported and becomes a TransientError, not the input's
        fault; anything else as it is."""
        why = storage_error(e)
        if why is None or isinstance(e, TransientError):
            return e
        self._services.trouble.report(e, f"source {self.source_name}")
        error = TransientError(f"{why}; {draft.source_ref} is taken later")
        error.__cause__ = e
        return error

    def _stage_all(self, draft: RecordDraft) -> list[tuple[FileInput, Staged]] | str:
        """Every file of the draft staged in the spool (read once), or why it cannot be
        (the record fails with that reason)."""
        eng = self._services
        staged: list[tuple[FileInput, Staged]] = []
        try:
            for f in draft.files:
                try:
                    staged.append((f, self._stage(f)))
                except TransientError:
                    raise  # "not now" (e.g. still being written): nothing is recorded
                except SpoolWriteError as e:  # disk full...: not the input's fault
                    eng.trouble.report(e, f"source {self.source_name}")
                    raise TransientError(f"{e}; {_file_label(draft, f)} is taken later") from e
                except SpoolTooLarge as e:
                    failure = f"{e} ({_file_label(draft, f)})"
                    break
                except OSError as e:
                    failure = f"unreadable: {_file_label(draft, f)}: {e.strerror or e}"
                    break
            else:
                return staged
        except BaseException:
            self._discard([s for _, s in staged])
            raise
        self._discard([s for _, s in staged])
        return failure

    def _discard(self, staged: list[Staged]) -> None:
        for s in staged:
            self._services.spool.discard(s)

    def _spool(self, a: _Arrived) -> EmitResult:
        """Commit the staged files of a new record and insert it as ``received``."""
        eng = self._services
        pinned: list[str] = []  # committed, pinned until the row references them
        try:
            for f, s in zip(a.draft.files, a.staged, strict=True):
                try:
                    eng.spool.commit(s)  # to its content address, which the record names
                except SpoolWriteError as e:  # disk full...: not the input's fault
                    eng.trouble.report(e, f"source {self.source_name}")
                    raise TransientError(f"{e}; {_file_label(a.draft, f)} is taken later") from e
                pinned.append(s.sha256)
            record_id, inserted, state = eng.ledger.insert(a.record, blobs=pinned)
        except BaseException:  # e.g. metadata that is not JSON: nothing may stay behind
            self._discard(a.staged[len(pinned) :])
            self._unpin(pinned)
            eng.pressure.free_unreferenced(pinned)
            raise
        self._unpin(pinned)
        if not inserted:  # emitted concurrently by another thread of this source
            eng.pressure.free_unreferenced(pinned)
            return EmitResult("known", record_id, state)
        eng.pressure.spooled(a.record.total_size)
        eng.notify_work()
        eng.stats.count("received")
        eng.tally.received(self.source_name)
        self.log.debug(
            "received %s",
            a.draft.source_ref,
            extra={"record_id": record_id, "source": self.source_name},
        )
        return EmitResult("accepted", record_id, "received")

    def _blob(self, f: FileInput, staged: Staged) -> Blob:
        """The staged file as the record names it: at its content address in the spool
        (where :meth:`~pipeline.spool.Spool.commit` puts it)."""
        return Blob(
            file_name=f.file_name,
            path=self._services.spool.path_for(staged.sha256),
            size=staged.size,
            sha256=staged.sha256,
            claimed_mime=f.claimed_mime,
            metadata=dict(f.metadata),
        )

    def _record_duplicates(
        self, found: list[tuple[_Arrived, tuple[DocumentRecord, str]]]
    ) -> list[EmitResult]:
        """Record duplicates found as they arrived, in one transaction; the pool's
        settler acks them."""
        if not found:
            return []
        eng = self._services
        # the settler acks them; a worker only if that did not happen (a crash...)
        due_at = time.time() + SETTLE_GRACE
        rows = eng.ledger.insert_duplicates(
            [
                FoundDuplicate(a.record, routed, duplicate_of, target_key(routed), due_at)
                for a, (routed, duplicate_of) in found
            ]
        )
        assert eng.duplicates is not None
        results: list[EmitResult] = []
        unsettled = False
        for (_, (routed, duplicate_of)), (record_id, inserted, state) in zip(
            found, rows, strict=True
        ):
            if not inserted:  # emitted concurrently by another thread of this source
                results.append(EmitResult("known", record_id, state))
                continue
            eng.duplicates.duplicate_recorded(record_id, duplicate_of)
            eng.stats.count("received")
            eng.stats.count("duplicate")
            eng.tally.received(self.source_name)
            eng.tally.duplicate(self.source_name)
            routed.id = record_id
            if not eng.settle((record_id, self.source_name, routed)):  # no settler: a worker's
                eng.ledger.postpone(record_id, 0.0, count_attempt=False)
                unsettled = True
            results.append(EmitResult("accepted", record_id, "duplicate"))
        if unsettled:
            eng.notify_work()
        return results

    def _reread(self, draft: RecordDraft, existing: LedgerEntry) -> None:
        """Spool again the files of an unfinished record another collector had spooled
        (this one took its source over) and point the record at them; the record keeps
        its state and its journal, so a half-done delivery resumes where it was."""
        eng = self._services
        record = existing.record()
        if not foreign_files(record, eng.spool):
            return
        staged: list[Staged] = []
        shas: list[str] = []  # committed, pinned until the record names them
        try:
            for f in draft.files:
                try:
                    staged.append(self._stage(f))
                except (SpoolTooLarge, OSError) as e:  # left waiting; said in the log
                    self.log.warning("cannot read %s again: %s", _file_label(draft, f), e)
                    return
            for st in staged:
                shas.append(eng.spool.commit(st).sha256)
        except SpoolWriteError as e:
            self._unpin(shas)
            eng.trouble.report(e, f"source {self.source_name}")
            raise TransientError(f"{e}; {draft.source_ref} is taken later") from e
        finally:
            for st in staged:
                eng.spool.discard(st)  # a no-op for the committed ones (moved)
        try:
            moved = rehomed(record, eng.spool)
            if moved is None:
                self.log.warning(
                    "%s changed since another collector spooled it; record %d waits"
                    " (`itglue-ingest retry` takes the new content)",
                    draft.source_ref,
                    existing.id,
                )
                return
            eng.ledger.update(
                existing.id,
                existing.state,
                record=moved,
                next_attempt_at=0.0,
                expect=existing.state,
            )
        finally:
            self._unpin(shas)
            eng.pressure.free_unreferenced(shas)
        self.log.info(
            "read %s again from the source (another collector had spooled it)",
            draft.source_ref,
            extra={"record_id": existing.id, "source": self.source_name},
        )
        eng.notify_work()

    def _unpin(self, shas: list[str]) -> None:
        """Committed spool files are referenced by their row now (or were given up)."""
        for sha in shas:
            self._services.spool.unpin(sha)

    def _stage(self, f: FileInput) -> Staged:
        limit = self.max_file_size
        spool = self._services.spool
        if f.path is not None:
            size = os.stat(f.path).st_size
            if size > limit:
                raise SpoolTooLarge(size, limit)
            with open(f.path, "rb") as stream:
                return spool.stage(stream, limit)
        assert f.open is not None
        opened: IO[bytes] = f.open()
        with opened as stream:
            return spool.stage(stream, limit)

    def _record(self, draft: RecordDraft, blobs: list[Blob]) -> DocumentRecord:
        return DocumentRecord(
            source=self.source_name,
            source_ref=draft.source_ref,
            version=draft.version,
            name=draft.name,
            files=blobs,
            sections=list(draft.sections),
            metadata=dict(draft.metadata),
            organization=draft.organization or self._settings.organization,
            instance=self._settings.instance,
        )

    def _record_failure(self, draft: RecordDraft, reason: str) -> EmitResult:
        eng = self._services
        record = self._record(draft, [])
        record_id, inserted, state = eng.ledger.insert(record, state="failed", reason=reason)
        if not inserted:
            return EmitResult("known", record_id, state)
        self.log.warning(
            "failed %s: %s",
            draft.source_ref,
            reason,
            extra={"record_id": record_id, "source": self.source_name},
        )
        record.id = record_id
        eng.ledger.sync()  # before the hook
        eng.stats.count("failed")
        eng.tally.received(self.source_name)
        eng.tally.failed(self.source_name, reason)
        eng.hook.record_failed(record, reason, True)
        eng.notify_work()  # the source is nacked by a worker, like any failed record
        return EmitResult("failed", record_id, "failed", reason)

    def known(self, source_ref: str, version: str = "") -> RecordState | None:
        eng = self._services
        if not eng.reread_foreign:
            return eng.ledger.state_of(self.source_name, source_ref, version)
        entry = eng.ledger.find(self.source_name, source_ref, version)
        if entry is None:
            return None
        if entry.state in ACTIVE_STATES and foreign_files(entry.record(), eng.spool):
            # another collector spooled it: "not here yet", so the source emits it again
            # and emit reads its bytes again (a source that asks before it downloads)
            return None
        return entry.state

    def fail(self, draft: RecordDraft, reason: str) -> None:
        try:
            self._record_failure(draft, reason)
        except Exception as e:
            if storage_error(e) is None:
                raise
            self._services.trouble.report(e, f"source {self.source_name}")
            raise TransientError(f"{storage_error(e)}; {draft.source_ref} is taken later") from e

    def report_scan(self, error: str | None = None) -> None:
        if error is None:
            self._services.health.ok(self.source_name)
        else:
            self._services.health.trouble(self.source_name, error)

    # -- checkpoints and secrets

    def get_checkpoint(self, key: str) -> str | None:
        return self._services.ledger.get_checkpoint(self.source_name, key)

    def set_checkpoint(self, key: str, value: str) -> None:
        self._services.ledger.set_checkpoint(self.source_name, key, value)

    def access_token(self, account: str) -> str | None:
        token = self._services.hook.access_token(self.source_name, account)
        if token:
            register_secret(token)
        return token

    def secret(self, key: str, env: str | None = None) -> str:
        return read_secret(
            f"source:{self.source_name}:{key}", key, env, f"source {self.source_name!r}"
        )


@dataclass(frozen=True)
class _Arrived:
    """A draft of a batch whose files are staged, not yet recorded."""

    index: int  # in the batch
    draft: RecordDraft
    record: DocumentRecord
    staged: list[Staged]


def _complete(results: list[EmitResult | Exception | None]) -> list[EmitResult | Exception]:
    """The batch's results, every draft's set (each gets exactly one)."""
    assert all(r is not None for r in results)
    return cast(list[EmitResult | Exception], results)


def _file_label(draft: RecordDraft, f: FileInput) -> str:
    return f.file_name or draft.source_ref


def _conforms(ctx: EngineSourceContext) -> SourceContext:
    """Lets mypy check that EngineSourceContext implements the SourceContext protocol."""
    return ctx
