"""The IMAP source: sync folders by UID, emit each mail once, act on it after delivery.

A UID checkpoint per folder (with a Message-ID index for a UIDVALIDITY change) means a
mailbox is never downloaded twice and a poll with nothing new costs one SELECT per
folder. No post-action runs before delivery, and a failed mail is flagged or moved,
never deleted: the mailbox keeps everything until it landed, so nothing is lost.

The checkpoints, the ``source_ref`` format, the cost of a poll and what happens to a
mail that cannot be processed: docs/internals.md, "The IMAP source".
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import subprocess
import threading
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from itglue_common import backoff_delay
from pipeline import (
    DocumentRecord,
    FileInput,
    PermanentError,
    RecordDraft,
    Source,
    SourceContext,
    SourceOptions,
    TransientError,
    register_secret,
)

from .connection import CONNECTION_ERRORS, Mailbox
from .options import ImapOptions, Rule, effective_rules
from .parse import message_id_of, parse_message, safe_file_name
from .rules import build_draft, matching_rules

HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
HEADER_KEY = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
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
        self._prev_index: dict[tuple[str, int], dict[str, list[str]]] = {}
        self.max_message_size = self.options.max_message_size or int(context.max_file_size * 1.4)

    # ------------------------------------------------------------------ credentials

    def _credential(self) -> str:
        o = self.options
        if o.auth == "password":
            return self.context.secret("password", env=o.password_env)
        token = self._hook_token()
        if token:
            return token
        if o.token_command:
            return self._command_token(o.token_command)
        raise PermanentError(
            f"source {self.name!r}: auth = 'xoauth2' needs an access token: install a plugin"
            " implementing ingest_access_token, or set token_command"
        )

    def _hook_token(self) -> str | None:
        return self.context.access_token(self.options.username)

    def _command_token(self, command: list[str]) -> str:
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PermanentError(
                f"source {self.name!r}: token_command {command[0]!r} could not run:"
                f" {type(e).__name__}"
            ) from None
        token = proc.stdout.strip()
        if proc.returncode != 0 or not token:
            raise PermanentError(
                f"source {self.name!r}: token_command {command[0]!r} exited with"
                f" {proc.returncode} and {'no' if not token else 'a'} token on stdout"
            )
        register_secret(token)  # like a token from the ingest_access_token hook
        return token

    # ------------------------------------------------------------------ connections

    def _open(self) -> Mailbox:
        return Mailbox.open(self.options, self._credential)

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
                    use_idle = self.options.idle and box.has_idle
                    if use_idle:
                        self._idle(box)
                if not use_idle:
                    stopping.wait(self.poll_interval)
            except CONNECTION_ERRORS as e:
                self._drop("sync")
                failures += 1
                delay = backoff_delay(failures, base=1.0, cap=self.options.reconnect_max)
                self.context.log.warning(
                    "IMAP connection lost (%s: %s); reconnecting in %.1f s",
                    type(e).__name__,
                    e,
                    delay,
                )
                stopping.wait(delay)
            except PermanentError as e:
                self._drop("sync")
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
        cp = self._checkpoint(folder)
        uidnext = info.get(b"UIDNEXT")
        if cp is None or uidnext is None:
            return True
        return bool(int(info[b"UIDVALIDITY"]) != cp["uidvalidity"] or int(uidnext) > cp["uid"] + 1)

    # ------------------------------------------------------------------ sync

    def _checkpoint(self, folder: str) -> dict[str, Any] | None:
        raw = self.context.get_checkpoint(f"folder:{folder}")
        if not raw:
            return None
        try:
            value = json.loads(raw)
            return {
                "uidvalidity": int(value["uidvalidity"]),
                "uid": int(value["uid"]),
                "mids": int(value.get("mids", 0)),
                "prev": value.get("prev"),
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def _save_checkpoint(self, folder: str, cp: dict[str, Any]) -> None:
        self.context.set_checkpoint(f"folder:{folder}", json.dumps(cp))

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
        cp = self._checkpoint(folder)
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
            self._save_checkpoint(folder, cp)
        elif cp is None:
            cp = {"uidvalidity": uidvalidity, "uid": 0, "mids": 0, "prev": None}
            self._save_checkpoint(folder, cp)
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
            if self._batch_mids:  # the Message-ID index of this batch, one write
                key = f"mids:{folder}:{uidvalidity}:{cp['mids']}"
                self.context.set_checkpoint(key, json.dumps(self._batch_mids))
                cp["mids"] += 1
            cp["uid"] = chunk[-1]
            self._save_checkpoint(folder, cp)

    def _previous_index(self, folder: str, prev: dict[str, Any]) -> dict[str, list[str]]:
        """The Message-ID index of the folder under its previous UIDVALIDITY (loaded once)."""
        key = (folder, int(prev["uidvalidity"]))
        index = self._prev_index.get(key)
        if index is None:
            index = {}
            for i in range(int(prev.get("mids", 0))):
                raw = self.context.get_checkpoint(f"mids:{folder}:{key[1]}:{i}")
                with contextlib.suppress(ValueError, TypeError):
                    index.update(json.loads(raw or "{}"))
            self._prev_index = {key: index}
        return index

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
        key = _mid_key(msgid, size)
        entry = self._previous_index(folder, prev).get(key)
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
            self._apply_success(box, folder, uid, rule, prev_ref)
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
        draft = RecordDraft(
            source_ref=ref,
            name=f"Email {msgid or f'UID {uid}'} in {folder}",
            metadata={
                "imap": self._meta(folder, uidvalidity, uid, size, msgid, head, self.rules[0]),
                "email": {"message_id": msgid},
            },
        )
        self.context.fail(
            draft,
            f"the message is {size} bytes, over the limit of {self.max_message_size} bytes"
            " (max_message_size); it was not downloaded and stays in the mailbox",
        )
        self._remember_unspooled(ref, folder, uidvalidity, uid, msgid)

    def _meta(
        self,
        folder: str,
        uidvalidity: int,
        uid: int,
        size: int,
        msgid: str | None,
        head: dict[bytes, Any],
        rule: Rule,
    ) -> dict[str, Any]:
        arrived = head.get(b"INTERNALDATE")
        return {
            "folder": folder,
            "uidvalidity": uidvalidity,
            "uid": uid,
            "size": size,
            "message_id": msgid,
            "internaldate": arrived.isoformat() if isinstance(arrived, datetime) else None,
            "rule": rule.name,
        }

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
        meta = self._meta(
            folder, uidvalidity, uid, size, msgid, {b"INTERNALDATE": arrived}, self.rules[0]
        )
        arrived_at = arrived if isinstance(arrived, datetime) else None
        if arrived_at is not None and arrived_at.tzinfo is None:
            arrived_at = arrived_at.astimezone(UTC)
        try:
            mail = parse_message(raw, self.options.body_max_chars)
            rules = matching_rules(
                self.rules, self.options.match, mail, datetime.now(UTC), arrived_at
            )
            if not rules:
                self.context.log.info(
                    "%s UID %d (from %s, subject %r): no rule matches; left untouched",
                    folder,
                    uid,
                    mail.from_address or "?",
                    mail.subject[:80],
                )
                return
            refs = [base_ref] + [f"{base_ref}#{r.name}" for r in rules[1:]]
            if len(rules) > 1:
                meta["siblings"] = refs
            drafts = [
                build_draft(source_ref=ref, rule=rule, mail=mail, raw=raw, imap_meta=meta)
                for rule, ref in zip(rules, refs, strict=True)
            ]
            primary_rule = rules[0].name
        except Exception as e:  # hostile input must never stop the source
            self.context.log.warning(
                "%s UID %d could not be processed (%s: %s); keeping the raw message as .eml",
                folder,
                uid,
                type(e).__name__,
                e,
                exc_info=True,
            )
            drafts = [_raw_draft(base_ref, raw, meta, f"{type(e).__name__}: {e}")]
            primary_rule = self.rules[0].name
        # the primary record last: once it is known, every sibling was emitted
        for draft in reversed(drafts):
            result = self.context.emit(draft)
            if result.status == "failed":
                self.context.log.info("%s: %s", draft.source_ref, result.reason)
                self._remember_unspooled(draft.source_ref, folder, uidvalidity, uid, msgid)
        if msgid:
            self._batch_mids[_mid_key(msgid, size)] = [base_ref, primary_rule]

    # ------------------------------------------------------------------ retried failures

    def _unspooled(self) -> dict[str, dict[str, Any]]:
        raw = self.context.get_checkpoint("unspooled")
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            value = {}
        return value if isinstance(value, dict) else {}

    def _remember_unspooled(
        self, ref: str, folder: str, uidvalidity: int, uid: int, msgid: str | None
    ) -> None:
        """A record that failed before its bytes were spooled (too large, unreadable):
        ``itglue-ingest retry`` removes its row, and the next sync fetches it again."""
        entries = self._unspooled()
        entries[ref] = {
            "folder": folder,
            "uidvalidity": uidvalidity,
            "uid": uid,
            "message_id": msgid,
        }
        self.context.set_checkpoint("unspooled", json.dumps(entries))

    def _retry_unspooled(self, box: Mailbox) -> None:
        entries = self._unspooled()
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
            found = self._locate(box, meta)
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
                self.context.set_checkpoint("unspooled", json.dumps(entries))
                self._too_large(folder, uidvalidity, uid, size, msgid, head, ref=ref)
                entries = self._unspooled()
                continue
            body = box.fetch([uid], ["BODY.PEEK[]"]).get(uid, {}).get(b"BODY[]")
            if body is None:
                continue
            self.context.set_checkpoint("unspooled", json.dumps(entries))
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
            entries = self._unspooled()
        if changed:
            self.context.set_checkpoint("unspooled", json.dumps(entries))

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
            waiting = [r for r in siblings if self.context.known(r) not in _FINAL]
            if waiting:  # the last sibling to finish moves or deletes the message
                actions -= {"move", "delete"}
        if not actions and "keyword" not in self.options.on_failure:
            return  # nothing to do on the server (not even a failure keyword to clear)
        self._with_action_box(
            lambda box: self._ack_on(box, record, meta, rule, actions), record.source_ref
        )

    def nack(self, record: DocumentRecord, reason: str) -> None:
        """Failed for good: flag, keyword and/or move to ``failure_folder``; never deleted,
        so ``itglue-ingest retry`` (from the spool) and a later ack still find it."""
        meta = record.metadata.get("imap")
        if not isinstance(meta, dict) or not self.options.on_failure:
            return
        self._with_action_box(lambda box: self._nack_on(box, meta), record.source_ref)

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

    def _ack_on(
        self,
        box: Mailbox,
        record: DocumentRecord,
        meta: dict[str, Any],
        rule: Rule,
        actions: set[str],
    ) -> None:
        folder, uid = str(meta.get("folder", "")), int(meta.get("uid", 0))
        # the common case costs one round trip: the folder is still selected and its
        # UIDVALIDITY unchanged, so the UID names the message (RFC 3501: never reused)
        if box.validity_of(folder) == int(meta.get("uidvalidity", -1)) and self._apply_success(
            box, folder, uid, rule, record.source_ref, actions=actions
        ):
            return
        found = self._locate(box, meta, by_uid=False)
        if found is None:
            self.context.log.info(
                "%s: the message is no longer in %s (moved or deleted already); nothing to do",
                record.source_ref,
                folder,
            )
            return
        folder, uid, _flags, _validity = found
        self._apply_success(box, folder, uid, rule, record.source_ref, actions=actions)

    def _apply_success(
        self,
        box: Mailbox,
        folder: str,
        uid: int,
        rule: Rule,
        ref: str,
        actions: set[str] | None = None,
    ) -> bool:
        """Apply the rule's success actions to ``uid`` of the selected ``folder``; False
        (and nothing done) when there is no such message."""
        acts = set(rule.on_success) if actions is None else actions
        add: list[str | bytes] = []
        if "seen" in acts:
            add.append(b"\\Seen")
        if "flag" in acts:
            add.append(b"\\Flagged")
        if "keyword" in acts:
            add.append(rule.success_keyword)
        if add:
            current = box.add_flags_reporting([uid], add).get(uid)
        else:
            got = box.fetch([uid], ["FLAGS"]).get(uid)
            current = None if got is None else set(got.get(b"FLAGS", ()))
        if current is None:
            return False
        failed_kw = self.options.failure_keyword
        if "keyword" in self.options.on_failure and failed_kw.encode().lower() in {
            f.lower() for f in current
        }:
            box.remove_flags([uid], [failed_kw])
        if "move" in acts and rule.success_folder:
            box.move([uid], rule.success_folder)
        elif "delete" in acts:
            box.delete([uid])
        self.context.log.debug("%s: post-action %s done in %s", ref, sorted(acts), folder)
        return True

    def _nack_on(self, box: Mailbox, meta: dict[str, Any]) -> None:
        found = self._locate(box, meta)
        if found is None:
            return
        folder, uid, _flags, _validity = found
        acts = set(self.options.on_failure)
        add: list[str | bytes] = []
        if "flag" in acts:
            add.append(b"\\Flagged")
        if "keyword" in acts:
            add.append(self.options.failure_keyword)
        if add:
            box.add_flags([uid], add)
        if "move" in acts and self.options.failure_folder and folder != self.options.failure_folder:
            box.move([uid], self.options.failure_folder)

    def _locate(
        self, box: Mailbox, meta: dict[str, Any], by_uid: bool = True
    ) -> tuple[str, int, set[bytes], int] | None:
        """Find the message of a record: by UID while the UIDVALIDITY is unchanged, else
        (or when it is gone) by Message-ID, in its folder and then in failure_folder."""
        folder = str(meta.get("folder", ""))
        uid = int(meta.get("uid", 0))
        msgid = meta.get("message_id")
        candidates = [folder]
        if self.options.failure_folder and self.options.failure_folder != folder:
            candidates.append(self.options.failure_folder)
        for i, name in enumerate(candidates):
            if name not in box.folders():
                continue
            info = box.select(name)
            validity = int(info[b"UIDVALIDITY"])
            if by_uid and i == 0 and validity == int(meta.get("uidvalidity", -1)):
                got = box.fetch([uid], ["FLAGS", HEADER_ITEM]).get(uid)
                if got is not None and (
                    not msgid or message_id_of(got.get(HEADER_KEY) or b"") == msgid
                ):
                    return name, uid, set(got.get(b"FLAGS", ())), validity
            if msgid:
                for found in box.search(["HEADER", "Message-ID", str(msgid)]):
                    got = box.fetch([found], ["FLAGS", HEADER_ITEM]).get(found)
                    if got is not None and message_id_of(got.get(HEADER_KEY) or b"") == msgid:
                        return name, found, set(got.get(b"FLAGS", ())), validity
        return None


_FINAL = ("done", "duplicate", "delivered", "failed")


def _mid_key(msgid: str, size: int) -> str:
    return "mid:" + hashlib.sha256(f"{msgid}\0{size}".encode()).hexdigest()[:40]


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


def _raw_draft(ref: str, raw: bytes, meta: dict[str, Any], why: str) -> RecordDraft:
    return RecordDraft(
        source_ref=ref,
        name=f"Email {meta.get('message_id') or ref}",
        files=[
            FileInput(
                file_name=safe_file_name(f"message-{meta.get('uid')}.eml", "message.eml"),
                open=functools.partial(io.BytesIO, raw),
                claimed_mime="message/rfc822",
                metadata={"part": "message"},
            )
        ],
        metadata={"imap": meta, "defects": [f"could not be processed: {why}"[:500]]},
    )
