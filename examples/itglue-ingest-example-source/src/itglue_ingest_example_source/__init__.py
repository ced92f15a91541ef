"""An itglue-ingest source plugin: tickets exported as JSON Lines.

Each line of the export is one ticket::

    {"id": "T-1001", "subject": "Printer jams", "text": "...", "customer": "Acme",
     "attachments": ["files/jam.pdf"]}

and becomes one record: the subject is the document name, the text its section, the
attachments (paths relative to the export) its files, the customer its organization.

The two exactly-once rules of a source, as they appear here:

* emit first, act later: the post-action (appending the id to ``<export>.done`` or
  ``<export>.failed``) happens only in :meth:`ack` / :meth:`nack`, which the engine calls
  after the ledger recorded the outcome;
* ``ack`` and ``nack`` are idempotent: after a crash the engine may call them again, so
  an id already in the list is not appended twice.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pipeline import (
    DocumentRecord,
    FileInput,
    PathField,
    RecordDraft,
    Section,
    Source,
    SourceContext,
    SourceOptions,
    hookimpl,
)


class TicketOptions(SourceOptions):
    """The keys of a ``[[sources]]`` table with ``type = "jsonl_tickets"``."""

    path: PathField  # the JSON Lines export (relative: from the configuration's folder)
    poll_interval: float = 60.0  # seconds between scans in the daemon


class TicketSource(Source):
    """Emits every ticket of the export; acks and nacks are written next to it."""

    options_model = TicketOptions

    def __init__(self, name: str, options: TicketOptions, context: SourceContext) -> None:
        super().__init__(name, options, context)
        self.poll_interval = options.poll_interval

    def scan(self) -> None:
        export: Path = self.options.path
        for number, line in enumerate(export.read_text(encoding="utf-8").splitlines(), 1):
            if self.context.stopping.is_set():
                return  # the engine is shutting down
            if not line.strip():
                continue
            # the version changes when the line changes: an edited ticket is a new record
            version = hashlib.sha256(line.encode()).hexdigest()[:16]
            try:
                ticket = json.loads(line)
                draft = RecordDraft(
                    source_ref=str(ticket["id"]),
                    version=version,
                    name=str(ticket["subject"]),
                    sections=[Section(content=f"<p>{html.escape(ticket.get('text', ''))}</p>")],
                    files=[
                        FileInput(file_name=Path(p).name, path=export.parent / p)
                        for p in ticket.get("attachments", [])
                    ],
                    organization=ticket.get("customer"),
                    metadata={"line": number},
                )
            except (ValueError, KeyError, TypeError) as e:
                # a broken line is recorded as failed, with a reason a person can act on
                bad = RecordDraft(f"line-{number}", name=f"line {number}", version=version)
                self.context.fail(bad, f"{export.name} line {number}: not a ticket ({e!r})")
                continue
            self.context.emit(draft)  # durable when it returns; files are copied now

    def ack(self, record: DocumentRecord, outcome: Literal["delivered", "duplicate"]) -> None:
        self._append(".done", record.source_ref)

    def nack(self, record: DocumentRecord, reason: str) -> None:
        self._append(".failed", f"{record.source_ref}\t{reason}")

    def _append(self, suffix: str, line: str) -> None:
        target = self.options.path.with_name(self.options.path.name + suffix)
        done = target.read_text(encoding="utf-8").splitlines() if target.exists() else []
        if line not in done:  # idempotent: the engine may call us again after a crash
            with target.open("a", encoding="utf-8") as f:
                f.write(line + "\n")


@hookimpl
def ingest_register_sources(register: Callable[[str, type[Source]], None]) -> None:
    """Offer the ``jsonl_tickets`` source type."""
    register("jsonl_tickets", TicketSource)
