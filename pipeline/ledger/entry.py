"""One ledger row, as the engine and ``status`` read it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from ..records import DocumentRecord
from ..sources import RecordState


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger row."""

    id: int
    source: str
    source_ref: str
    version: str
    state: RecordState
    record_json: str
    original_json: str
    content_hash: str | None
    organization_id: str | None
    target_key: str
    size: int
    spooled: bool
    attempts: int
    next_attempt_at: float
    reason: str | None
    result: str | None
    duplicate_of: str | None
    acked: bool
    created_at: float
    updated_at: float
    collector: str = ""  # the collector that took it in ('' before collectors were named)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> LedgerEntry:
        return cls(
            id=row[0],
            source=row[1],
            source_ref=row[2],
            version=row[3],
            state=cast(RecordState, row[4]),
            record_json=row[5],
            original_json=row[6],
            content_hash=row[7],
            organization_id=row[8],
            target_key=row[9],
            size=row[10],
            spooled=bool(row[11]),
            attempts=row[12],
            next_attempt_at=row[13],
            reason=row[14],
            result=row[15],
            duplicate_of=row[16],
            acked=bool(row[17]),
            created_at=row[18],
            updated_at=row[19],
            collector=row[20],
        )

    def record(self) -> DocumentRecord:
        """The record as the pipeline last stored it, with ``id`` set."""
        rec = DocumentRecord.model_validate_json(self.record_json)
        rec.id = self.id
        return rec

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (for ``status --json``)."""
        return {
            "id": self.id,
            "collector": self.collector,
            "source": self.source,
            "source_ref": self.source_ref,
            "version": self.version,
            "state": self.state,
            "organization_id": self.organization_id,
            "attempts": self.attempts,
            "reason": self.reason,
            "acked": self.acked,
            "duplicate_of": self.duplicate_of,
            "result": json.loads(self.result) if self.result else None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def routed(self) -> dict[str, str | None]:
        """Where the record went and why, from the stored record (``status --records``):
        ``organization``, ``organization_id`` and ``reason`` (the router's)."""
        try:
            record = json.loads(self.record_json)
        except ValueError:
            record = {}
        record = record if isinstance(record, dict) else {}
        metadata = record.get("metadata")
        routing = metadata.get("routing") if isinstance(metadata, dict) else None
        reason = routing.get("reason") if isinstance(routing, dict) else None
        return {
            "organization": record.get("organization"),
            "organization_id": record.get("organization_id") or self.organization_id,
            "reason": reason if isinstance(reason, str) else None,
        }
