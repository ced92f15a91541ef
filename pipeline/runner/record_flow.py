"""The record state machine: one record moved as far as it can go, each state committed
before the next step::

    received --transforms--> ready --dedupe--> delivering --sink.deliver--> delivered
             --source.ack--> done (spool freed)

(``ready`` and the dedupe decision are committed in one transaction; a record whose
input landed before is inserted as ``duplicate`` as it arrives, nothing spooled, and
acked in batches by the pool's settler, see :meth:`RecordFlow.landed_original` and
:meth:`RecordFlow.settle`; a received one goes straight to ``duplicate``.) A change is made
durable (``ledger.sync``, one fsync shared by every thread waiting for it) before
anything outside relies on it: the sink's API writes, a hook, the source's post-action.
What an exception
from a plugin means is decided in one place, :func:`classify`: retry later (the record
keeps its state, due again after a jittered exponential backoff), fail it (``failed``
+ reason, then ``source.nack``), or -- trouble with the engine's own storage, wherever
it is raised -- leave the record as it is and pause the engine
(:mod:`~pipeline.runner.storage`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

from itglue_common import backoff_delay

from ..errors import AccessRefused, PermanentError, TransientError
from ..hooks import HookFacade
from ..ledger import ACTIVE_STATES, Ledger, LedgerEntry
from ..ledger.queries import LandedInput
from ..observability.tally import Tally
from ..records import DocumentRecord, qualified
from ..settings import PipelineSettings
from ..sinks import DeliveryResult, Sink, instance_journal
from ..sources import Source
from ..spool import Spool
from ..transforms import Transform
from .backpressure import BackPressure
from .outcomes import RunStats
from .ownership import LeaseLost, Ownership
from .refusal import KeyRefusal
from .rehome import foreign_files, rehomed
from .storage import StorageError, StorageTrouble, storage_error

ENGINE_ERROR_LIMIT = 5  # unexpected engine errors on one record before it is set aside
REREAD_WAIT = 2.0  # seconds a record spooled elsewhere waits for its source's re-read
# transform outcomes (metadata["transform_outcomes"]) after which the same input may give
# other content next time: such a record is never a duplicate by its input alone
UNREPRODUCIBLE = frozenset({"timeout", "crashed"})
log = logging.getLogger("itglue_ingest.engine")


@dataclass(frozen=True)
class Verdict:
    """What an exception raised by a plugin means for the record."""

    transient: bool  # retry later (else: the record fails)
    reason: str
    retry_after: float | None = None
    unexpected: bool = False  # most likely a bug in the plugin: log its traceback
    storage: bool = False  # the engine's own storage failed: never the record's fault
    reported: bool = False  # the cause is logged already (an outage): retry at DEBUG
    refused: bool = False  # the destination refused the key: no record can land now


def classify(e: Exception, plugin: str) -> Verdict:
    """The verdict on ``e``, raised by ``plugin`` (``"transform mime"``, ``"sink itglue"``).

    Trouble with the engine's storage (the ledger's or cache's database full, locked or
    failing, the state folder's disk full: :func:`~pipeline.runner.storage.storage_error`)
    comes first, whatever the plugin wrapped it in: ``storage``, never the record's
    failure. ``TransientError``/``PermanentError`` say it themselves; an exception whose
    ``transient`` attribute is True (the IT Glue client's 429, 5xx, timeouts) is retried;
    so is any other SQLite error; anything else fails the record with the plugin's name
    in the reason.
    """
    why = storage_error(e)
    if why is not None:
        return Verdict(True, f"{plugin}: {why}", storage=True)
    if isinstance(e, TransientError):
        return Verdict(
            True,
            e.reason,
            e.retry_after,
            reported=e.reported,
            refused=isinstance(e, AccessRefused),
        )
    if isinstance(e, PermanentError):
        return Verdict(False, e.reason)
    if getattr(e, "transient", None) is True:
        return Verdict(True, f"{plugin}: {type(e).__name__}: {e}", retry_after_of(e))
    if isinstance(e, sqlite3.Error):
        return Verdict(True, f"{plugin}: database error: {e}")
    expected = isinstance(e, OSError | ValueError) or getattr(e, "transient", None) is not None
    return Verdict(False, f"{plugin} raised {type(e).__name__}: {e}", unexpected=not expected)


def retry_after_of(e: BaseException) -> float | None:
    value: object = getattr(e, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


class EntryRef(Protocol):
    """What the post-action steps read of a ledger entry."""

    @property
    def id(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def attempts(self) -> int: ...


@dataclass(frozen=True)
class _Settling:
    """What the steps ask of a ledger entry, for a duplicate the settler acks (its row
    was just inserted: not read back)."""

    id: int
    source: str
    attempts: int = 0


def _other(rows: list[LandedInput] | None, other_than: int) -> list[LandedInput]:
    """The landed records of one input, but not the record asking (``other_than``)."""
    return [row for row in rows or () if row.id != other_than]


def input_key(received: DocumentRecord, instance: str | None) -> str:
    """The ledger's ``input_hash`` of a record as it arrived, going to ``instance``: the
    same content lands once in each IT Glue instance."""
    return qualified(received.content_digest, instance)


def target_key(record: DocumentRecord) -> str:
    """The part of the dedupe key beyond the organization: where in it the files go."""
    t = record.target
    if t is None or t.kind == "document":
        return ""
    return f"{t.resource_type}:{t.resource_id or ''}:{(t.resource_name or '').casefold()}"


class RecordFlow:
    """Moves records through the states; shared by every worker (thread-safe)."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        transforms: list[Transform],
        sink: Sink,
        sources: Mapping[str, Source],
        hook: HookFacade,
        pressure: BackPressure,
        stats: RunStats,
        tally: Tally,
        settings: PipelineSettings,
        winding_down: threading.Event,
        trouble: StorageTrouble,
        refusal: KeyRefusal,
        post_actions: bool = True,
        ownership: Ownership | None = None,
        spool: Spool | None = None,
    ) -> None:
        self.ledger = ledger
        self.transforms = transforms
        self.sink = sink
        self.sources = sources
        self.hook = hook
        self.pressure = pressure
        self.stats = stats
        self.tally = tally
        self.settings = settings
        self._winding_down = winding_down  # set: start no new delivery
        self._trouble = trouble
        self._refusal = refusal
        self._post_actions = post_actions  # False: a dry run (no file moved, no mail flagged)
        # which sources' records this collector works on now (None: all)
        self._ownership = ownership if ownership is not None else Ownership(sources)
        # set when collectors share the ledger: a record may name another one's spool
        self._spool = spool
        # the transform that routes alone (see _route_alone); False: not looked for yet
        self._router: Transform | Literal[False] | None = False
        # duplicates found as they arrived, not logged (nor their hook called) yet
        self._announce: dict[int, str] = {}
        self._announce_lock = threading.Lock()

    def backoff(self, attempts: int) -> float:
        """Exponential from ``retry_base`` to ``retry_max`` seconds, jittered."""
        return backoff_delay(attempts, base=self.settings.retry_base, cap=self.settings.retry_max)

    def process(self, record_id: int) -> None:
        """Move one record as far as it can go now (each step committed before the next)."""
        entry = self.ledger.get(record_id)
        if entry is None or not self._ownership.owns(entry.source):  # not ours (any more)
            return
        record = entry.record()
        state = entry.state
        if self._spool is not None and state in ACTIVE_STATES:
            here = self._local(entry, record, self._spool)
            if here is None:
                return
            record = here
        read_back = state in ("delivered", "duplicate", "failed") and not entry.acked
        extra = {"record_id": record_id, "source": entry.source}
        unsaved = False  # transformed, "ready" not committed yet (claim commits it)
        received: DocumentRecord | None = None  # as it arrived, when at hand
        if state == "received":
            if self._landed_before(entry, record):
                return
            received = record
            nxt = self._transform(entry, record)
            if nxt is None:
                return
            record, state, unsaved = nxt, "ready", True
        if state == "ready":
            if not self._ownership.owns(entry.source):
                # the source went to another collector meanwhile: the record is its now
                # (it transforms it again); not a word written to it here
                return
            if self._winding_down.is_set():
                # shutting down: do not start a new delivery
                if unsaved:
                    self.ledger.update(
                        entry.id, "ready", record=record, target_key=target_key(record)
                    )
                return
            decision = self._dedupe(entry, record, save=unsaved, received=received)
            if decision != "deliver":
                return
            state = "delivering"
        if state == "delivering":
            if not self._deliver(entry, record):
                return
            state = "delivered"
            entry = self.ledger.get(record_id) or entry
        if read_back:
            # a post-action on a state read back: a killed process (or a thread whose
            # sync failed) may have committed it without its fsync
            self.ledger.sync()
        if state == "delivered":
            self._ack(entry, record, "delivered")
        elif state == "duplicate" and not entry.acked:
            with self._announce_lock:
                found_at_intake = self._announce.pop(record_id, None)
            if found_at_intake is not None:  # durable (read back: synced above)
                self._announced(entry, record, found_at_intake)
            self._ack(entry, record, "duplicate")
        elif state == "failed" and not entry.acked:
            self._nack(entry, record, entry.reason or "failed")
        log.debug("record %d: %s", record_id, state, extra=extra)

    def _local(
        self, entry: LedgerEntry, record: DocumentRecord, spool: Spool
    ) -> DocumentRecord | None:
        """``record`` naming this collector's spool files, or None (and the record left
        waiting) when another collector spooled them and the source has not been read
        again here yet (:mod:`~pipeline.runner.rehome`)."""
        if not foreign_files(record, spool):
            return record
        moved = rehomed(record, spool)
        if moved is None:
            self.ledger.postpone(
                entry.id,
                time.time() + REREAD_WAIT,
                reason="spooled by another collector: waiting for the source to be read again",
                count_attempt=False,
            )
        return moved

    def engine_error(self, rid: int, e: Exception) -> None:
        """Something failed outside the plugins. Trouble with the engine's storage leaves
        the record as it is (nothing written: it could not be) and pauses the engine.
        Anything else (an unreadable ledger row...) is retried with backoff; a record
        that keeps failing is set aside as failed instead of looping forever (without a
        nack: it may not even be readable)."""
        if storage_error(e) is not None:
            self._trouble.report(e, f"record {rid}")
            return
        try:
            attempts = self.ledger.postpone(rid, time.time() + self.backoff(1))
            entry = self.ledger.get(rid)
            landed = entry is not None and entry.state in ("delivered", "done", "duplicate")
            if attempts >= ENGINE_ERROR_LIMIT and not landed:  # landed: only the ack is left
                reason = f"engine error: {type(e).__name__}: {e}"
                self.ledger.update(rid, "failed", reason=reason, acked=True)
                if entry is not None:
                    self.tally.failed(entry.source, reason)
                log.error("record %d: %s; set aside as failed", rid, reason, exc_info=e)
                return
            delay = self.backoff(attempts)
            self.ledger.postpone(rid, time.time() + delay, count_attempt=False)
        except Exception as again:
            if storage_error(again) is not None:
                self._trouble.report(again, f"record {rid}")
                return
            log.exception("record %d: cannot record an engine error", rid)
        log.error("record %d: unexpected engine error; retrying later", rid, exc_info=e)

    # ------------------------------------------------------------------ the steps

    def _transform(self, entry: LedgerEntry, record: DocumentRecord) -> DocumentRecord | None:
        for t in self.transforms:
            try:
                out = t.apply(record)
            except Exception as e:
                self._plugin_error(entry, record, e, f"transform {t.name}", "apply")
                return None
            if not isinstance(out, DocumentRecord):
                self._fail(
                    entry,
                    record,
                    f"transform {t.name} returned {type(out).__name__}, not a DocumentRecord",
                )
                return None
            record = out
            record.id = entry.id
        return record

    def _landed_before(self, entry: LedgerEntry, record: DocumentRecord) -> bool:
        """A received record whose input (the same bytes and sections as they arrived) a
        landed record had in the same IT Glue instance is that one's duplicate, found
        without transforming it again (:meth:`landed_original`)."""
        found = self.landed_original(record, other_than=entry.id)
        if found is None:
            return False
        routed, original = found
        routed.id = entry.id
        self._duplicate(entry, routed, original, save=True)
        return True

    def landed_original(
        self, record: DocumentRecord, *, other_than: int = 0
    ) -> tuple[DocumentRecord, str] | None:
        """``(routed, "ledger:<id>")`` when a landed record (not ``other_than``) had the
        input of ``record`` (as it arrives: the same bytes and sections) in the same IT
        Glue instance: with ``dedupe_scope = "global"``, or in the same organization and
        target with ``"organization"``. Where it goes is asked of the routing transform
        alone (when it can answer without the transforms before it); None (anything
        else goes the whole way, :meth:`_dedupe`). Extraction is what a re-dropped file
        cost: this finds its duplicate before it is spooled or transformed."""
        return self.landed_originals([record], other_than=other_than)[0]

    def landed_originals(
        self, records: Sequence[DocumentRecord], *, other_than: int = 0
    ) -> list[tuple[DocumentRecord, str] | None]:
        """:meth:`landed_original` of each record, the ledger asked once (twice when
        routing picks another instance than a record named) for all of them."""
        # each digest once: its hash for each instance comes from it
        digests = [r.content_digest if (r.files or r.sections) else "" for r in records]
        arrived = [qualified(d, r.instance) for d, r in zip(digests, records, strict=True)]
        landed = self.ledger.landed_inputs(k for d, k in zip(digests, arrived, strict=True) if d)
        out: list[tuple[DocumentRecord, str] | None] = [None] * len(records)
        hits: list[tuple[int, DocumentRecord, str]] = []
        for index, record in enumerate(records):
            if not digests[index] or not _other(landed.get(arrived[index]), other_than):
                continue  # new content (or routed to another instance: the whole way)
            routed = self._route_alone(record)  # the instance, the organization
            if routed is not None:
                hits.append((index, routed, qualified(digests[index], routed.instance)))
        missing = {key for _, _, key in hits if key not in landed}
        if missing:  # routed to another instance than the one the record named
            landed.update(self.ledger.landed_inputs(missing))
        by_org = self.settings.dedupe_scope == "organization"
        for index, routed, key in hits:
            target = target_key(routed) if by_org else None
            original = next(
                (
                    row.id
                    for row in _other(landed.get(key), other_than)
                    if row.matches(routed.organization_id, target)
                ),
                None,
            )
            if original is not None:
                out[index] = (routed, f"ledger:{original}")
        return out

    def settle(self, batch: list[tuple[int, str, DocumentRecord]]) -> None:
        """Ack duplicates found as they arrived (the pool's settler; ``(id, source,
        record)`` each, as inserted): one sync for the batch, their log lines and hooks,
        the sources' post-actions, and one transaction marking them acked. A record that
        cannot be acked now is a worker's later (:meth:`_call_source` postpones it,
        :meth:`engine_error` says what else)."""
        try:
            self.ledger.sync()  # their "duplicate" rows, before anything outside learns
        except Exception as e:
            if storage_error(e) is None:
                raise
            self._trouble.report(e, f"{len(batch)} duplicate(s)")  # due later: a worker's
            return
        acked = [rid for rid, source, record in batch if self._settle_one(rid, source, record)]
        self.ledger.mark_duplicates_acked(acked)

    def _settle_one(self, rid: int, source: str, record: DocumentRecord) -> bool:
        """Log, hook and ack one duplicate of the settler's batch; True when acked."""
        try:
            if not self._ownership.owns(source):
                return False
            entry = _Settling(id=rid, source=source)
            with self._announce_lock:
                found_at_intake = self._announce.pop(rid, None)
            if found_at_intake is not None:
                self._announced(entry, record, found_at_intake)
            return self._call_source(entry, "ack", lambda src: src.ack(record, "duplicate"))
        except Exception as e:
            self.engine_error(rid, e)
            return False

    def duplicate_recorded(self, record_id: int, duplicate_of: str) -> None:
        """A record was inserted as a duplicate as it arrived (see :meth:`landed_original`):
        the worker that acks it logs it and calls the hook first, once its state is
        durable (lost with the process, as a hook may be: never called twice)."""
        with self._announce_lock:
            self._announce[record_id] = duplicate_of

    def _route_alone(self, record: DocumentRecord) -> DocumentRecord | None:
        """The record routed by the routing transform alone, if one can (else None)."""
        if self._router is False:
            names = [t.name for t in self.transforms]
            self._router = next(
                (t for i, t in enumerate(self.transforms) if t.routes_alone(names[:i])), None
            )
        router = self._router
        if router is None or router is False:
            return None
        try:
            routed = router.apply(record)
        except Exception:  # the transforms in their order meet it again, and report it
            return None
        if not isinstance(routed, DocumentRecord):
            return None
        return routed

    def _dedupe(
        self,
        entry: LedgerEntry,
        record: DocumentRecord,
        *,
        save: bool,
        received: DocumentRecord | None = None,
    ) -> str:
        check = bool(record.files or record.sections)
        outcomes = record.metadata.get("transform_outcomes")
        if received is None:  # resumed after a restart: the record as it arrived
            received = DocumentRecord.model_validate_json(entry.original_json or entry.record_json)
        decision, original = self.ledger.claim_delivery(
            entry.id,
            content_hash=record.content_hash,
            organization_id=record.organization_id,
            target_key=target_key(record),
            scope=self.settings.dedupe_scope,
            check_duplicates=check,
            record=record if save else None,
            reproducible=not (
                isinstance(outcomes, dict) and not UNREPRODUCIBLE.isdisjoint(outcomes.values())
            ),
            input_hash=input_key(received, record.instance),
        )
        if decision == "duplicate":
            assert original is not None
            self._duplicate(entry, record, f"ledger:{original.id}")
            return "duplicate"
        if decision == "wait":
            # the same content is being delivered right now; look again shortly, or when
            # that delivery is retried if it is waiting for a retry (no polling meanwhile)
            assert original is not None
            until = max(time.time() + 0.5, original.next_attempt_at)
            self.ledger.postpone(entry.id, until, count_attempt=False)
            return "wait"
        if check:
            try:
                existing = self.sink.find_existing(record)
            except Exception as e:
                self._plugin_error(entry, record, e, f"sink {self.sink.name}", "find_existing")
                return "error"
            if existing:
                self._duplicate(entry, record, existing)
                return "duplicate"
        return "deliver"

    def _duplicate(
        self, entry: LedgerEntry, record: DocumentRecord, existing: str, *, save: bool = False
    ) -> None:
        if save:  # the record as routed (found a duplicate before the transforms)
            self.ledger.update(
                entry.id,
                "duplicate",
                record=record,
                target_key=target_key(record),
                duplicate_of=existing,
                acked=False,
            )
        else:
            self.ledger.update(entry.id, "duplicate", duplicate_of=existing, acked=False)
        self.ledger.sync()  # before the hook and the post-action
        self.stats.count("duplicate")
        self.tally.duplicate(entry.source)
        self._announced(entry, record, existing)
        self._ack(entry, record, "duplicate")

    def _announced(self, entry: EntryRef, record: DocumentRecord, existing: str) -> None:
        """The log line and the hook of a duplicate (durable by now)."""
        log.info(
            "duplicate of %s: %s",
            existing,
            record.source_ref,
            extra={"record_id": entry.id, "source": entry.source},
        )
        self.hook.record_duplicate(record, existing)

    def _deliver(self, entry: LedgerEntry, record: DocumentRecord) -> bool:
        self.ledger.sync()  # "delivering" (the claim on this content) before any API write
        journal = self._ownership.fenced(
            instance_journal(self.ledger.journal(entry.id), record.instance), entry.source
        )
        try:
            result = self.sink.deliver(record, journal)
        except LeaseLost as e:  # the record is the new owner's: not a word written to it
            log.warning("%s: %s; left to it", record.source_ref, e, extra={"record_id": entry.id})
            return False
        except Exception as e:
            self._plugin_error(entry, record, e, f"sink {self.sink.name}", "deliver")
            return False
        if not isinstance(result, DeliveryResult):
            self._fail(entry, record, f"sink {self.sink.name} returned {type(result).__name__}")
            return False
        self.ledger.update(
            entry.id, "delivered", result=json.dumps(asdict(result)), next_attempt_at=0.0
        )
        self.ledger.sync()  # before the hook and the post-action
        self.stats.count("delivered")
        self.tally.delivered(entry.source, entry.created_at)
        self._refusal.landed(record.instance)
        log.info(
            "delivered %s -> %s %s",
            record.source_ref,
            result.resource_type,
            result.resource_id,
            extra={"record_id": entry.id, "source": entry.source},
        )
        self.hook.record_delivered(record, result)
        return True

    def _plugin_error(
        self, entry: LedgerEntry, record: DocumentRecord, e: Exception, plugin: str, what: str
    ) -> None:
        verdict = classify(e, plugin)
        if verdict.storage:  # the record stays as it is; the engine pauses (engine_error)
            raise StorageError(verdict.reason) from e
        if verdict.unexpected:
            log.error("%s: %s failed", plugin, what, exc_info=e)
        if verdict.refused:
            self._refusal.report(entry.id, verdict.reason, getattr(e, "instance", None))
        if verdict.transient:
            self._transient(entry, record, verdict.reason, verdict.retry_after, verdict.reported)
        else:
            self._fail(entry, record, verdict.reason)

    def _ack(
        self,
        entry: LedgerEntry,
        record: DocumentRecord,
        outcome: Literal["delivered", "duplicate"],
    ) -> None:
        if not self._call_source(entry, "ack", lambda src: src.ack(record, outcome)):
            return
        if not entry.spooled:  # a duplicate found as it arrived: nothing to free
            self.ledger.update(entry.id, "duplicate", acked=True)
            return
        # every file the record spooled, including any a transform left out of it
        spooled = self.ledger.blobs_of(entry.id)
        if outcome == "delivered":
            self.ledger.update(entry.id, "done", acked=True)
        else:
            self.ledger.update(entry.id, "duplicate", acked=True)
        self.pressure.free_unreferenced([*spooled, *(b.sha256 for b in record.files)])

    def _nack(self, entry: LedgerEntry, record: DocumentRecord, reason: str) -> None:
        if self._call_source(entry, "nack", lambda src: src.nack(record, reason)):
            # unless `itglue-ingest retry` requeued it meanwhile (it is processed again)
            self.ledger.update(entry.id, "failed", acked=True, expect="failed")

    def _call_source(self, entry: EntryRef, what: str, call: Callable[[Source], None]) -> bool:
        """Run a post-action of the record's source; False (and postponed) when it can't."""
        if not self._post_actions:
            return True
        src = self.sources.get(entry.source)
        if src is None:
            # the source is not configured (or disabled) now: post-act when it is back
            self.ledger.postpone(
                entry.id, time.time() + self.settings.retry_max, count_attempt=False
            )
            return False
        try:
            call(src)
        except Exception as e:
            if storage_error(e) is not None:  # e.g. the source's checkpoint: ours, not its
                raise StorageError(f"source {entry.source}: {what}: {storage_error(e)}") from e
            log.exception(
                "source %s: %s of record %d raised; retrying later", entry.source, what, entry.id
            )
            self.ledger.postpone(entry.id, time.time() + self.backoff(entry.attempts + 1))
            return False
        return True

    def _fail(self, entry: LedgerEntry, record: DocumentRecord, reason: str) -> None:
        self.ledger.update(entry.id, "failed", reason=reason, acked=False)
        self.ledger.sync()  # before the hook and the nack
        self.stats.count("failed")
        self.tally.failed(entry.source, reason)
        log.warning(
            "failed %s: %s",
            record.source_ref,
            reason,
            extra={"record_id": entry.id, "source": entry.source},
        )
        self.hook.record_failed(record, reason, True)
        self._nack(entry, record, reason)

    def _transient(
        self,
        entry: LedgerEntry,
        record: DocumentRecord,
        reason: str,
        retry_after: float | None,
        reported: bool = False,
    ) -> None:
        attempts = entry.attempts + 1
        delay = retry_after if retry_after is not None else self.backoff(attempts)
        self.ledger.postpone(entry.id, time.time() + delay, reason=reason)
        self.tally.retried(entry.source)
        self.ledger.sync()  # before the hook
        # the record starts waiting: one line; its later retries, and retries whose cause
        # is logged as an episode (an outage), only at DEBUG (the reason is in `status`)
        quiet = reported or attempts > 1
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "will retry %s in %.1f s (attempt %d): %s",
            record.source_ref,
            delay,
            attempts,
            reason,
            extra={"record_id": entry.id, "source": entry.source},
        )
        self.hook.record_failed(record, reason, False)
