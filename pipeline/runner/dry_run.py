"""``once --dry-run``: the whole pipeline up to the sink, with nothing changed anywhere.

The seam is the state, not the plugins: the engine runs on a private copy of the state
database (the ledger and the metadata cache, copied with SQLite's online backup, so
dedupe sees exactly what a real run would) and a private spool, in a temporary folder
that is removed afterwards. The sink is wrapped so that its dedupe lookup runs and its
delivery does not; the sources are never acked or nacked (no file moved, no mail
flagged) and are told it is a dry run (``SourceContext.dry_run``: take nothing away
while scanning). What the run decided is then read from the copy.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..ledger import Ledger, LedgerEntry
from ..records import DocumentRecord
from ..settings import ConfigError, Settings, parse_settings
from ..sinks import DeliveryResult, Sink, StepJournal

DRY_RUN_ID = "(dry run)"  # the resource id of a delivery that was not made


class DryRunSink(Sink):
    """The configured sink's dedupe lookup, and a delivery that only says where."""

    def __init__(self, sink: Sink) -> None:
        super().__init__(sink.name, sink.options, sink.context)
        self._sink = sink

    def find_existing(self, record: DocumentRecord) -> str | None:
        return self._sink.find_existing(record)

    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        target = record.target
        kind = target.resource_type if target and target.kind == "attachment" else None
        return DeliveryResult(record.organization_id, kind or "documents", DRY_RUN_ID)

    def close(self) -> None:
        self._sink.close()


def refuse_shared_state(settings: Settings) -> None:
    """A dry run needs a private copy of the state: with PostgreSQL the ledger is the
    whole fleet's, and a run on it would change it.

    :raises ConfigError: the state is on PostgreSQL.
    """
    if settings.state.backend != "sqlite":
        raise ConfigError(
            'once --dry-run needs [state] backend = "sqlite": with PostgreSQL the ledger'
            " is shared by every collector and a dry run must change nothing there; run it"
            " with a configuration whose [state] uses a local SQLite file"
        )


@contextmanager
def dry_run_settings(settings: Settings) -> Iterator[Settings]:
    """``settings`` with a temporary state folder holding a copy of each instance's state
    database (none when there is none yet); the folder is removed afterwards.

    :raises ConfigError: see :func:`refuse_shared_state`.
    """
    refuse_shared_state(settings)
    with tempfile.TemporaryDirectory(prefix="itglue-ingest-dry-run-") as tmp:
        state = Path(tmp)
        state.chmod(0o700)
        data = settings.model_dump(mode="json")
        data["state"]["dir"] = str(state)
        copy = parse_settings(data, "<dry run>", config_dir=settings.config_dir)
        # every instance's database: the ledger and each metadata cache dedupe consults
        for name in settings.itglue.named:
            original = settings.state.dir / f"{name}.db"
            if original.exists():
                _copy_database(original, state / f"{name}.db")
        yield copy


def _copy_database(source: Path, target: Path) -> None:
    """A consistent snapshot of ``source`` (a daemon may be writing it), read-only."""
    target.touch(mode=0o600)
    with (
        closing(sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


@dataclass(frozen=True)
class Planned:
    """What the run would do with one record."""

    source: str
    source_ref: str
    action: str  # "create document", "attach to configurations 12", "duplicate", ...
    organization: str
    name: str
    files: str
    detail: str  # the routing reason, the duplicate's reference, or why not


def planned(ledger: Ledger, since: float) -> list[Planned]:
    """What the run (on the copy) decided for each record it touched, in ledger order."""
    return [_plan(e) for e in ledger.changed_since(since)]


def _plan(e: LedgerEntry) -> Planned:
    try:
        record: DocumentRecord | None = e.record()
    except ValueError:  # not parseable: the state and reason still say enough
        record = None
    if record is None:
        return Planned(e.source, e.source_ref, e.state, "", "", "", e.reason or "")
    routed = e.routed()
    org, org_id = routed["organization"] or "", routed["organization_id"]
    if org_id:
        org = f"{org} (#{org_id})" if org else f"#{org_id}"
    files = ", ".join(b.file_name for b in record.files)
    why = routed["reason"] or ""
    if e.state in ("done", "delivered"):
        action = _where(record)
    elif e.state == "duplicate":
        action, why = "skip: duplicate", f"of {e.duplicate_of}"
    elif e.state == "failed":
        action, why = "fail", e.reason or ""
    else:
        action, why = f"wait ({e.state})", e.reason or "not finished in this run"
    return Planned(e.source, e.source_ref, action, org, record.name, files, why)


def _where(record: DocumentRecord) -> str:
    t = record.target
    if t is None or t.kind == "document":
        return "create document"
    return f"attach to {t.resource_type} {t.resource_name or t.resource_id}"
