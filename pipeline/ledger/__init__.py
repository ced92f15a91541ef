"""The durable journal of every record: its state, its delivery steps, source checkpoints.

One SQLite database per IT Glue instance holds both the metadata cache and this ledger
(:func:`core_client.sqlite.connect`: WAL, ``synchronous=FULL``, 0600); the ledger's
tables are prefixed ``ledger_`` and migrated as component ``"ledger"``.

A record moves through::

    received -> ready -> delivering -> delivered -> done
                     \\-> duplicate (acked once the source was told)
    any of the first three -> failed (acked once the source was nacked)

Every state change is one ``BEGIN IMMEDIATE`` transaction, committed before the engine
does the next thing, so a crash leaves each record in a state it can resume from; with
group commit the fsync comes later, shared, and always before anything outside is told
(:mod:`~pipeline.ledger.store`). ``work`` is 1 while a record still needs the engine
(active, delivered but not acked, duplicate/failed not yet acked), which makes "what is
due" one indexed query however many finished records the ledger holds.

``ledger_blobs`` lists the spool files a record still needs; its rows go when the record
is done (or its duplicate acked), so "is this spool file still needed" is one lookup.
"""

from .entry import LedgerEntry
from .journal import LedgerJournal, StepsAndCheckpoints
from .queries import LandedInput, LedgerQueries
from .schema import (
    ACTIVE_STATES,
    ALL_STATES,
    FINAL_STATES,
    MIGRATIONS,
    SPOOLED_STATES,
    DedupeScope,
    needs_work,
)
from .transitions import FoundDuplicate, RecordTransitions


class Ledger(RecordTransitions, LedgerQueries, StepsAndCheckpoints):
    """The ledger tables of the instance database (see the package's docstring).

    Thread-safe: one connection shared under a lock (SQLite serialises writers anyway;
    other processes, such as ``itglue-ingest status`` next to a daemon, wait on the busy
    timeout).
    """


__all__ = [
    "ACTIVE_STATES",
    "ALL_STATES",
    "FINAL_STATES",
    "MIGRATIONS",
    "SPOOLED_STATES",
    "DedupeScope",
    "FoundDuplicate",
    "LandedInput",
    "Ledger",
    "LedgerEntry",
    "LedgerJournal",
    "LedgerQueries",
    "needs_work",
]
