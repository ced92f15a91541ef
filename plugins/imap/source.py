"""The IMAP source: sync folders by UID, emit each mail once, act on it after delivery.

A UID checkpoint per folder (with a Message-ID index for a UIDVALIDITY change) means a
mailbox is never downloaded twice and a poll with nothing new costs one SELECT per
folder. No post-action runs before delivery, and a failed mail is flagged or moved,
never deleted: the mailbox keeps everything until it landed, so nothing is lost.

The checkpoints, the ``source_ref`` format, the cost of a poll and what happens to a
mail that cannot be processed: docs/internals.md, "The IMAP source".
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar, Literal

from itglue_common import backoff_delay
from pipeline import (
    DocumentRecord,
    PermanentError,
    Source,
    SourceContext,
    SourceOptions,
    TransientError,
)

from .checkpoints import Checkpoints, mid_key
from .connection import CONNECTION_ERRORS, HEADER_ITEM, HEADER_KEY, Mailbox
from .credentials import credential
from .drafts import drafts_for_mail, mail_meta, too_large_draft
from .options import ImapOptions, Rule, effective_rules
from .parse import message_id_of
from .post_actions import FINAL, PostActions

BATCH_BYTES = 32 * 1024 * 1024  # bodies fetched per round trip, at most (one large mail excepted)
IN_PROGRESS_OR_DONE = ("received", "ready", "duplicate", "delivering", "delivered", "done")


class ImapSource(Source):
    """Mailbox source (``type = "imap"``); see the module docstring."""

    options_model: ClassVar[type[SourceOptions]] = ImapOptions

    def __init__(self, name: str, options: Any, context: SourceContext) -> None:
        super().__init__(name, options, context)
        self.options: ImapOptions = options
        self.poll_interval = self.options.poll_interval
        self.rules: list[Rule] = effective_rules(self.options)
        self._rules_by_name = {r.name: r for r in self.rules}
        self._sync_lock = threading.Lock()
        self._action_lock = threading.Lock()
        self._sync_box: Mailbox | None = None
        self._action_box: Mailbox | None = None
        self.round_trips = 0  # of the connections already closed (see total_round_trips)
        self._batch_mids: dict[str, list[str]] = {}  # Message-ID index of the current batch
        self._checkpoints = Checkpoints(context)
        self._post_actions = PostActions(self.options, context)
        self.max_message_size = self.options.max_message_size or int(context.max_file_size * 1.4)

    # ------------------------------------------------------------------ connections

    def _open(self) -> Mailbox:
        return Mailbox.open(self.options, lambda: credential(self.name, self.options, self.context))

    def _sync_mailbox(self) -> Mailbox:
        if self._sync_box is None:
            box = self._open()
            try:
                for folder in self.options.folders:
                    box.check_folder(folder)
            except BaseException:
                box.close()
                raise
            self._sync_box = box
        return self._sync_box

    def _drop(self, which: Literal["sync", "action"]) -> None:
        attr = f"_{which}_box"
        box: Mailbox | None = getattr(self, attr)
        setattr(self, attr, None)
        if box is not None:
            self.round_trips += box.round_trips
            box.close()

    @property
    def total_round_trips(self) -> int:
        """IMAP commands sent so far (all connections), for the bench and the tests."""
        live = sum(b.round_trips for b in (self._sync_box, self._action_box) if b is not None)
        return self.round_trips + live

    def close(self) -> None:
        self._drop("sync")
        with self._action_lock:
            self._drop("action")

    # ------------------------------------------------------------------ scan / watch

    def scan(self) -> None:
        """Sync every folder once, reconnecting (with backoff) after a dropped connection."""
        attempt = 0
        while not self.context.stopping.is_set():
            try:
                with self._sync_lock:
                    self._sync_all(self._sync_mailbox())
                return
            except CONNECTION_ERRORS as e:
                self._drop("sync")
                attempt += 1
                if attempt >= self.options.scan_attempts:
                    raise TransientError(
                        f"IMAP {self.options.host}: connection failed {attempt} times"
                        f" ({type(e).__name__}: {e})"
                    ) from None
                delay = backoff_delay(attempt, base=1.0, cap=self.options.reconnect_max)
                self.context.report_scan(f"IMAP connection lost ({type(e).__name__}: {e})")
                self.context.log.warning(
                    "IMAP connection lost (%s: %s); reconnecting in %.1f s",
                    type(e).__name__,
                    e,
                    delay,
                )
                self.context.stopping.wait(delay)
            except BaseException:
                self._drop("sync")
                raise

    def watch(self) -> None:
        """Sync, then wait for news (IDLE when the server has it, else poll); never gives
        up: connection problems back off up to ``reconnect_max``, configuration problems
        (wrong password, unknown folder) are logged and retried every ``reconnect_max``."""
        stopping = self.context.stopping
        failures = 0
        while not stopping.is_set():
            try:
                with self._sync_lock:
                    box = self._sync_mailbox()
                    self._sync_all(box)
                    failures = 0
                    if not stopping.is_set():
                        self.context.report_scan()
                    use_idle = self.options.idle and box.has_idle
                    if use_idle:
                        self._idle(box)
                if not use_idle:
                    stopping.wait(self.poll_interval)
            except CONNECTION_ERRORS as e:
                self._drop("sync")
                failures += 1
                delay = backoff_delay(failures, base=1.0, cap=self.options.reconnect_max)
                self.context.report_scan(f"IMAP connection lost ({type(e).__name__}: {e})")
                self.context.log.warning(
                    "IMAP connection lost (%s: %s); reconnecting in %.1f s",
                    type(e).__name__,
                    e,
                    delay,
                )
                stopping.wait(delay)
            except PermanentError as e:
                self._drop("sync")
                self.context.report_scan(e.reason)
                self.context.log.error(
                    "%s; trying again in %.0f s", e.reason, self.options.reconnect_max
                )
                stopping.wait(self.options.reconnect_max)
            except BaseException:
                self._drop("sync")  # reconnect (and check the folders) on the next round
                raise

    def _idle(self, box: Mailbox) -> None:
        folder = self.options.folders[0]
        info = box.select(folder)
        if self._has_news(folder, info):
            return  # mail arrived between the sync and this SELECT
        wait = self.options.idle_renew
        if len(self.options.folders) > 1:
            wait = min(wait, self.poll_interval)  # the other folders are polled
        if box.idle_until_news(wait, self.context.stopping):
            self.context.log.debug("IDLE: new mail in %s", folder)

    def _has_news(self, folder: str, info: dict[bytes, Any]) -> bool:
        cp = self._checkpoints.folder(folder)
        uidnext = info.get(b"UIDNEXT")
        if cp is None or uidnext is None:
            return True
        return bool(int(info[b"UIDVALIDITY"]) != cp["uidvalidity"] or int(uidnext) > cp["uid"] + 1)

    # ------------------------------------------------------------------ sync

    def _sync_all(self, box: Mailbox) -> None:
        self._retry_unspooled(box)
        # the first folder last: it stays selected for IDLE
        for folder in [*self.options.folders[1:], self.options.folders[0]]:
            if self.context.stopping.is_set():
                return
            self._sync_folder(box, folder)

    def _sync_folder(self, box: Mailbox, folder: str) -> None:
        info = box.select(folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        cp = self._checkpoints.folder(folder)
        if cp is not None and cp["uidvalidity"] != uidvalidity:
            self.context.log.warning(
                "UIDVALIDITY of %s changed (%d -> %d): every UID is new; messages already"
                " ingested are recognised by Message-ID and size, and not fetched again",
                folder,
                cp["uidvalidity"],
                uidvalidity,
            )
            prev = {"uidvalidity": cp["uidvalidity"], "mids": cp["mids"]}
            cp = {"uidvalidity": uidvalidity, "uid": 0, "mids": 0, "prev": prev}
            self._checkpoints.save_folder(folder, cp)
        elif cp is None:
            cp = {"uidvalidity": uidvalidity, "uid": 0, "mids": 0, "prev": None}
            self._checkpoints.save_folder(folder, cp)
        uidnext = info.get(b"UIDNEXT")
        last = int(cp["uid"])
        if int(info.get(b"EXISTS", 1)) == 0 or (uidnext is not None and int(uidnext) <= last + 1):
            return  # nothing new: this SELECT was the only round trip
        uids = box.uids_from(last + 1)
        for start in range(0, len(uids), self.options.batch_size):
            if self.context.stopping.is_set():
                return
            chunk = uids[start : start + self.options.batch_size]
            self._batch_mids = {}
            self._sync_batch(box, folder, uidvalidity, chunk, cp)
            if self._batch_mids:
                self._checkpoints.save_index(folder, uidvalidity, cp, self._batch_mids)
            cp["uid"] = chunk[-1]
            self._checkpoints.save_folder(folder, cp)

    def _sync_batch(
        self,
        box: Mailbox,
        folder: str,
        uidvalidity: int,
        chunk: list[int],
        cp: dict[str, Any] | None = None,
    ) -> None:
        heads = box.fetch(chunk, ["RFC822.SIZE", "INTERNALDATE", HEADER_ITEM])
        msgids: dict[int, str | None] = {}
        wanted: list[int] = []
        for uid in chunk:
            head = heads.get(uid)
            if head is None:
                continue  # expunged meanwhile
            ref = f"{folder}/{uidvalidity}/{uid}"
            if self.context.known(ref) is not None:
                continue  # emitted before a crash or a dropped connection
            size = int(head.get(b"RFC822.SIZE", 0))
            msgid = msgids[uid] = message_id_of(head.get(HEADER_KEY) or b"")
            if self._ingested_before(box, folder, uid, msgid, size, (cp or {}).get("prev")):
                continue
            if size > self.max_message_size:
                self._too_large(folder, uidvalidity, uid, size, msgid, head)
                continue
            wanted.append(uid)
        for group in _by_size(wanted, heads, BATCH_BYTES):
            bodies = box.fetch(group, ["BODY.PEEK[]"])
            for uid in group:
                body = bodies.get(uid, {}).get(b"BODY[]")
                if body is None:
                    continue  # expunged meanwhile
                head = heads[uid]
                self._ingest(
                    folder,
                    uidvalidity,
                    uid,
                    bytes(body),
                    int(head.get(b"RFC822.SIZE", 0)),
                    head.get(b"INTERNALDATE"),
                    msgids[uid],
                )

    def _ingested_before(
        self,
        box: Mailbox,
        folder: str,
        uid: int,
        msgid: str | None,
        size: int,
        prev: dict[str, Any] | None,
    ) -> bool:
        """After a UIDVALIDITY change: True when this message (same Message-ID and size)
        went through this source under its old UID; the new copy then gets the
        post-action the original got, and is not fetched."""
        if not msgid or not prev:
            return False
        key = mid_key(msgid, size)
        entry = self._checkpoints.previous_index(folder, prev).get(key)
        if not entry:
            return False
        prev_ref, rule_name = str(entry[0]), str(entry[1])
        state = self.context.known(prev_ref)
        if state not in IN_PROGRESS_OR_DONE:
            return False  # never seen, or failed: ingest this copy
        self.context.log.info(
            "%s UID %d is %s, already ingested as %s (%s); not ingesting it again",
            folder,
            uid,
            msgid,
            prev_ref,
            state,
        )
        self._batch_mids[key] = [prev_ref, rule_name]
        rule = self._rules_by_name.get(rule_name, self.rules[0])
        if state in ("done", "duplicate"):
            self._post_actions.apply_success(box, folder, uid, rule, prev_ref)
        return True

    def _too_large(
        self,
        folder: str,
        uidvalidity: int,
        uid: int,
        size: int,
        msgid: str | None,
        head: dict[bytes, Any],
        ref: str | None = None,
    ) -> None:
        ref = ref or f"{folder}/{uidvalidity}/{uid}"
        arrived = head.get(b"INTERNALDATE")
        meta = mail_meta(folder, uidvalidity, uid, size, msgid, arrived, self.rules[0])
        self.context.fail(
            too_large_draft(ref, uid, msgid, meta),
            f"the message is {size} bytes, over the limit of {self.max_message_size} bytes"
            " (max_message_size); it was not downloaded and stays in the mailbox",
        )
        self._checkpoints.remember_unspooled(ref, folder, uidvalidity, uid, msgid)

    def _ingest(
        self,
        folder: str,
        uidvalidity: int,
        uid: int,
        raw: bytes,
        size: int,
        arrived: Any,
        msgid: str | None,
        ref: str | None = None,
    ) -> None:
        base_ref = ref or f"{folder}/{uidvalidity}/{uid}"
        meta = mail_meta(folder, uidvalidity, uid, size, msgid, arrived, self.rules[0])
        made = drafts_for_mail(
            raw, base_ref, meta, arrived, self.rules, self.options, self.context.log
        )
        if made is None:
            return
        drafts, primary_rule = made
        # the primary record last: once it is known, every sibling was emitted
        for draft in reversed(drafts):
            result = self.context.emit(draft)
            if result.status == "failed":
                self.context.log.info("%s: %s", draft.source_ref, result.reason)
                self._checkpoints.remember_unspooled(
                    draft.source_ref, folder, uidvalidity, uid, msgid
                )
        if msgid:
            self._batch_mids[mid_key(msgid, size)] = [base_ref, primary_rule]

    # ------------------------------------------------------------------ retried failures

    def _retry_unspooled(self, box: Mailbox) -> None:
        entries = self._checkpoints.unspooled()
        if not entries:
            return
        changed = False
        for ref, meta in list(entries.items()):
            state = self.context.known(ref)
            if state == "failed":
                continue  # waiting for `itglue-ingest retry`
            if state is not None:  # emitted again and on its way
                del entries[ref]
                changed = True
                continue
            found = self._post_actions.locate(box, meta)
            del entries[ref]
            changed = True
            if found is None:
                self.context.log.warning(
                    "%s was retried, but its message is no longer in the mailbox", ref
                )
                continue
            folder, uid, _flags, uidvalidity = found
            self.context.log.info("%s was retried: fetching it again from %s", ref, folder)
            head = box.fetch([uid], ["RFC822.SIZE", "INTERNALDATE", HEADER_ITEM]).get(uid, {})
            size = int(head.get(b"RFC822.SIZE", 0))
            msgid = message_id_of(head.get(HEADER_KEY) or b"")
            if size > self.max_message_size:
                self._checkpoints.save_unspooled(entries)
                self._too_large(folder, uidvalidity, uid, size, msgid, head, ref=ref)
                entries = self._checkpoints.unspooled()
                continue
            body = box.fetch([uid], ["BODY.PEEK[]"]).get(uid, {}).get(b"BODY[]")
            if body is None:
                continue
            self._checkpoints.save_unspooled(entries)
            self._ingest(
                folder,
                uidvalidity,
                uid,
                bytes(body),
                size,
                head.get(b"INTERNALDATE"),
                msgid,
                ref=ref,
            )
            entries = self._checkpoints.unspooled()
        if changed:
            self._checkpoints.save_unspooled(entries)

    # ------------------------------------------------------------------ post-actions

    def ack(self, record: DocumentRecord, outcome: Literal["delivered", "duplicate"]) -> None:
        """Delivered (or already there): mark seen / flag / keyword / move / delete as the
        rule says. Idempotent; a message that is gone already counts as done."""
        meta = record.metadata.get("imap")
        if not isinstance(meta, dict):
            return
        rule = self._rules_by_name.get(str(meta.get("rule")), self.rules[0])
        actions: set[str] = set(rule.on_success)
        siblings = [r for r in meta.get("siblings", []) if r != record.source_ref]
        if actions & {"move", "delete"} and siblings:
            waiting = [r for r in siblings if self.context.known(r) not in FINAL]
            if waiting:  # the last sibling to finish moves or deletes the message
                actions -= {"move", "delete"}
        if not actions and "keyword" not in self.options.on_failure:
            return  # nothing to do on the server (not even a failure keyword to clear)
        self._with_action_box(
            lambda box: self._post_actions.ack_on(box, record, meta, rule, actions),
            record.source_ref,
        )

    def nack(self, record: DocumentRecord, reason: str) -> None:
        """Failed for good: flag, keyword and/or move to ``failure_folder``; never deleted,
        so ``itglue-ingest retry`` (from the spool) and a later ack still find it."""
        meta = record.metadata.get("imap")
        if not isinstance(meta, dict) or not self.options.on_failure:
            return
        self._with_action_box(lambda box: self._post_actions.nack_on(box, meta), record.source_ref)

    def _with_action_box(self, fn: Any, ref: str) -> None:
        with self._action_lock:
            for attempt in (1, 2):
                try:
                    if self._action_box is None:
                        self._action_box = self._open()
                    fn(self._action_box)
                    return
                except CONNECTION_ERRORS as e:
                    self._drop("action")
                    if attempt == 2:
                        raise TransientError(
                            f"IMAP post-action for {ref} failed: {type(e).__name__}: {e}"
                        ) from None


def _by_size(uids: list[int], heads: dict[int, dict[bytes, Any]], limit: int) -> list[list[int]]:
    """Split ``uids`` into groups of at most ``limit`` bytes (a larger mail goes alone)."""
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid in uids:
        size = int(heads[uid].get(b"RFC822.SIZE", 0))
        if current and total + size > limit:
            groups.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    if current:
        groups.append(current)
    return groups
