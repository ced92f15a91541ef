"""What happens to a mail on the server once its record is delivered or failed.

Success: mark seen / flag / keyword / move / delete, as the rule says. Failure: flag,
keyword and/or move to ``failure_folder``, never delete. Both find the mail by UID
while its folder's UIDVALIDITY is unchanged, else by Message-ID.
"""

from __future__ import annotations

from typing import Any

from pipeline import DocumentRecord, SourceContext

from .connection import HEADER_ITEM, HEADER_KEY, Mailbox
from .options import ImapOptions, Rule
from .parse import message_id_of

# ledger states after which a record needs nothing more from its mail
FINAL = ("done", "duplicate", "delivered", "failed")


class PostActions:
    """The post-actions of one source, on a connection the caller provides."""

    def __init__(self, options: ImapOptions, context: SourceContext) -> None:
        self.options = options
        self._context = context

    def ack_on(
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
        if box.validity_of(folder) == int(meta.get("uidvalidity", -1)) and self.apply_success(
            box, folder, uid, rule, record.source_ref, actions=actions
        ):
            return
        found = self.locate(box, meta, by_uid=False)
        if found is None:
            self._context.log.info(
                "%s: the message is no longer in %s (moved or deleted already); nothing to do",
                record.source_ref,
                folder,
            )
            return
        folder, uid, _flags, _validity = found
        self.apply_success(box, folder, uid, rule, record.source_ref, actions=actions)

    def apply_success(
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
        self._context.log.debug("%s: post-action %s done in %s", ref, sorted(acts), folder)
        return True

    def nack_on(self, box: Mailbox, meta: dict[str, Any]) -> None:
        found = self.locate(box, meta)
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

    def locate(
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
