"""The IMAP source's durable sync state, kept as checkpoints in the ledger.

Per folder: its UIDVALIDITY, the last UID synced and how many Message-ID index pages
were written (``prev`` keeps the old UIDVALIDITY's after a change). The index maps a
mail's Message-ID and size to its record, so a renumbered mailbox is not fetched
again. ``unspooled``: records that failed before their bytes were spooled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

from pipeline import SourceContext


def mid_key(msgid: str, size: int) -> str:
    """The index key of a mail: its Message-ID and size (hashed: keys stay short)."""
    return "mid:" + hashlib.sha256(f"{msgid}\0{size}".encode()).hexdigest()[:40]


class Checkpoints:
    """Reads and writes the source's checkpoints (see the module docstring)."""

    def __init__(self, context: SourceContext) -> None:
        self._context = context
        self._prev_index: dict[tuple[str, int], dict[str, list[str]]] = {}

    # -- per folder ------------------------------------------------------------------
    def folder(self, folder: str) -> dict[str, Any] | None:
        raw = self._context.get_checkpoint(f"folder:{folder}")
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

    def save_folder(self, folder: str, cp: dict[str, Any]) -> None:
        self._context.set_checkpoint(f"folder:{folder}", json.dumps(cp))

    def save_index(
        self, folder: str, uidvalidity: int, cp: dict[str, Any], mids: dict[str, list[str]]
    ) -> None:
        """The Message-ID index of one batch, one write; counted in ``cp["mids"]``."""
        key = f"mids:{folder}:{uidvalidity}:{cp['mids']}"
        self._context.set_checkpoint(key, json.dumps(mids))
        cp["mids"] += 1

    def previous_index(self, folder: str, prev: dict[str, Any]) -> dict[str, list[str]]:
        """The Message-ID index of the folder under its previous UIDVALIDITY (loaded once)."""
        key = (folder, int(prev["uidvalidity"]))
        index = self._prev_index.get(key)
        if index is None:
            index = {}
            for i in range(int(prev.get("mids", 0))):
                raw = self._context.get_checkpoint(f"mids:{folder}:{key[1]}:{i}")
                with contextlib.suppress(ValueError, TypeError):
                    index.update(json.loads(raw or "{}"))
            self._prev_index = {key: index}
        return index

    # -- records that failed before their bytes were spooled ---------------------------
    def unspooled(self) -> dict[str, dict[str, Any]]:
        raw = self._context.get_checkpoint("unspooled")
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            value = {}
        return value if isinstance(value, dict) else {}

    def save_unspooled(self, entries: dict[str, dict[str, Any]]) -> None:
        self._context.set_checkpoint("unspooled", json.dumps(entries))

    def remember_unspooled(
        self, ref: str, folder: str, uidvalidity: int, uid: int, msgid: str | None
    ) -> None:
        """A record that failed before its bytes were spooled (too large, unreadable):
        ``itglue-ingest retry`` removes its row, and the next sync fetches it again."""
        entries = self.unspooled()
        entries[ref] = {
            "folder": folder,
            "uidvalidity": uidvalidity,
            "uid": uid,
            "message_id": msgid,
        }
        self.save_unspooled(entries)
