"""The ledger: states, idempotent inserts, journal and checkpoints across reopen,
requeue, dedupe claims, and many threads at once."""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic_core import PydanticSerializationError

from core_client.sqlite import connect
from pipeline.ledger import MIGRATIONS, FoundDuplicate, LandedInput, Ledger
from pipeline.records import Blob, DocumentRecord
from tests.conftest import DatabaseFactory


def rec(
    ref: str, *, content: str = "x", org: str | None = "1", version: str = ""
) -> DocumentRecord:
    sha = content.encode().hex().ljust(64, "0")[:64]
    return DocumentRecord(
        source="s",
        source_ref=ref,
        version=version,
        name=ref,
        files=[Blob(file_name=f"{ref}.pdf", path=Path("/spool") / sha, size=3, sha256=sha)],
        organization_id=org,
    )


@pytest.fixture
def ledger(make_database: DatabaseFactory) -> Iterator[Ledger]:
    """The ledger on each state backend (SQLite file, PostgreSQL database)."""
    lg = Ledger(make_database("ledger"))
    yield lg
    lg.close()


def test_insert_is_idempotent_per_identity(ledger: Ledger) -> None:
    rid, inserted, state = ledger.insert(rec("a"), blobs=["h1"])
    assert inserted and state == "received"
    again = ledger.insert(rec("a"), blobs=["h1"])
    assert again == (rid, False, "received")
    other_version = ledger.insert(rec("a", version="2"))
    assert other_version[1] and other_version[0] != rid
    assert ledger.state_of("s", "a") == "received"
    assert ledger.state_of("s", "a", "2") == "received"
    assert ledger.state_of("s", "nope") is None
    entry = ledger.get(rid)
    assert entry is not None
    assert entry.record().id == rid and entry.record().name == "a"


def test_database_file_is_private(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "db" / "test.db")
    try:
        assert ledger.path is not None
        assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600
    finally:
        ledger.close()


def test_states_work_flag_and_blob_references(ledger: Ledger) -> None:
    rid, _, _ = ledger.insert(rec("a"), blobs=["h1", "h2"])
    assert ledger.due(time.time(), 10) == [rid]
    assert ledger.is_referenced("h1")
    assert ledger.spool_load() == (1, 3)
    ledger.update(rid, "ready", record=rec("a"))
    ledger.update(rid, "delivering")
    ledger.update(rid, "delivered", result='{"resource_id": "9"}')
    assert ledger.delivered_unacked() == [rid]
    assert ledger.due(time.time(), 10) == [rid]  # the ack is still to do
    ledger.update(rid, "done", acked=True)
    assert ledger.due(time.time(), 10) == []
    assert not ledger.is_referenced("h1") and not ledger.is_referenced("h2")
    assert ledger.spool_load() == (0, 0)
    assert ledger.counts() == {"s": {"done": 1}}


def test_failed_needs_a_nack_then_is_final(ledger: Ledger) -> None:
    rid, _, _ = ledger.insert(rec("a"), blobs=["h1"])
    ledger.update(rid, "failed", reason="422: name is blank", acked=False)
    assert ledger.due(time.time(), 10) == [rid]
    ledger.update(rid, "failed", acked=True)
    assert ledger.due(time.time(), 10) == []
    [failed] = ledger.failed()
    assert failed.reason == "422: name is blank"
    assert ledger.is_referenced("h1")  # kept for a retry


def test_postpone_and_due_order(ledger: Ledger) -> None:
    a, _, _ = ledger.insert(rec("a"))
    b, _, _ = ledger.insert(rec("b", content="y"))
    now = time.time()
    assert ledger.postpone(a, now + 60, reason="503") == 1
    assert ledger.due(now, 10) == [b]
    assert ledger.due(now + 61, 10) == [b, a]
    assert ledger.due(now + 61, 10, exclude=[b]) == [a]
    assert ledger.due(now + 61, 1) == [b]
    [waiting] = ledger.waiting()
    assert waiting.id == a and waiting.reason == "503" and waiting.attempts == 1
    assert ledger.count_active() == 2 and ledger.count_active(["other"]) == 0


def test_requeue(ledger: Ledger) -> None:
    a, _, _ = ledger.insert(rec("a"), blobs=["h"])
    ledger.update(a, "ready", record=rec("a", org="changed-by-routing"))
    ledger.update(a, "failed", reason="unroutable", acked=True)
    b, _, _ = ledger.insert(rec("b", content="y"), state="failed", reason="unreadable: b: gone")
    c, _, _ = ledger.insert(rec("c", content="z"))
    ledger.postpone(c, time.time() + 3600)
    assert ledger.requeue() == 0  # nothing selected
    assert ledger.requeue(ids=[a]) == 1
    entry = ledger.get(a)
    assert entry is not None
    assert (entry.state, entry.attempts, entry.reason, entry.acked) == ("received", 0, None, False)
    assert entry.record().organization_id == "1"  # back to the record as received
    # a record that never reached the spool is forgotten, so the source emits it again
    assert ledger.requeue(all_failed=True) == 1
    assert ledger.get(b) is None and ledger.state_of("s", "b") is None
    # waiting retries of the selected source become due now
    assert ledger.requeue(source="s") == 0
    assert c in ledger.due(time.time(), 10)


def test_claim_delivery_dedupe_scopes(ledger: Ledger) -> None:
    first, _, _ = ledger.insert(rec("a", content="same", org="1"))
    second, _, _ = ledger.insert(rec("b", content="same", org="1"))
    third, _, _ = ledger.insert(rec("c", content="same", org="2"))
    h = rec("a", content="same").content_hash

    def claim(rid: int, org: str, scope: str = "organization") -> str:
        decision, _ = ledger.claim_delivery(
            rid,
            content_hash=h,
            organization_id=org,
            target_key="",
            scope=scope,  # type: ignore[arg-type]
        )
        return decision

    assert claim(first, "1") == "deliver"
    assert claim(second, "1") == "wait"  # the same content is being delivered right now
    ledger.update(first, "delivered")
    decision, original = ledger.claim_delivery(
        second, content_hash=h, organization_id="1", target_key="", scope="organization"
    )
    assert decision == "duplicate" and original is not None and original.id == first
    assert claim(third, "2") == "deliver"  # another organization: not a duplicate
    ledger.update(third, "ready")
    assert claim(third, "2", "global") == "duplicate"


def test_landed_inputs_name_the_delivered_records_with_those_inputs(ledger: Ledger) -> None:
    a, _, _ = ledger.insert(rec("a", content="same", org="1"))
    ledger.insert(rec("b", content="same", org="1"))
    key = rec("a", content="same").content_hash  # the input's, as inserted
    assert ledger.landed_inputs([key]) == {}  # nothing landed yet
    transformed = rec("a", content="same", org="1").model_copy(update={"sections": []})
    ledger.claim_delivery(
        a, content_hash="after-the-transforms", organization_id="1", target_key="",
        scope="organization", record=transformed,
    )  # fmt: skip
    ledger.update(a, "delivered")
    # the input hash outlives the claim; with the organization and target the engine
    # compares (dedupe_scope "organization")
    assert ledger.landed_inputs([key, "unknown"]) == {key: [(a, "1", "")]}
    ledger.update(a, "done", acked=True)
    assert ledger.landed_inputs([key]) == {key: [(a, "1", "")]}
    c, _, _ = ledger.insert(rec("c", content="other", org="1"))
    ledger.claim_delivery(
        c, content_hash="h", organization_id="1", target_key="", scope="organization",
        reproducible=False,
    )  # fmt: skip
    ledger.update(c, "delivered")
    # its transforms may give other content next time: not found by its input
    assert ledger.landed_inputs([rec("c", content="other").content_hash]) == {}


def test_find_many_answers_find_for_many_identities(ledger: Ledger) -> None:
    a, _, _ = ledger.insert(rec("a"))
    a2, _, _ = ledger.insert(rec("a", version="2"))
    b, _, _ = ledger.insert(rec("b"))
    asked = [("a", ""), ("a", "2"), ("a", "3"), ("b", ""), ("b", "2"), ("nope", "")]
    found = ledger.find_many("s", asked)
    assert {k: e.id for k, e in found.items()} == {("a", ""): a, ("a", "2"): a2, ("b", ""): b}
    for ref, version in asked:  # the same answer as find, entry for entry
        assert found.get((ref, version)) == ledger.find("s", ref, version)
    assert ledger.find_many("other-source", asked) == {}
    assert ledger.find_many("s", []) == {}
    many = [(f"r{i}", "") for i in range(1200)]  # more than one statement's worth
    for ref, _ in many[::100]:
        ledger.insert(rec(ref))
    assert sorted(ledger.find_many("s", many)) == sorted(many[::100])


def test_landed_inputs_answers_landed_input_for_many_inputs(ledger: Ledger) -> None:
    key = rec("a", content="same").content_hash
    other = rec("c", content="other").content_hash
    a, _, _ = ledger.insert(rec("a", content="same", org="1"))
    b, _, _ = ledger.insert(rec("b", content="same", org="2"))
    c, _, _ = ledger.insert(rec("c", content="other", org="1"))
    assert ledger.landed_inputs([key, other]) == {}  # nothing landed yet
    for rid in (a, b, c):
        ledger.claim_delivery(
            rid, content_hash="h", organization_id=None, target_key="", scope="global"
        )
    ledger.update(a, "delivered")
    ledger.update(b, "done", acked=True)
    landed = ledger.landed_inputs([key, other, key, "unknown"])
    assert list(landed) == [key]  # c is being delivered: not landed
    assert [x.id for x in landed[key]] == [a, b]  # lowest id first
    expected = {("1", ""): a, ("2", ""): b, ("3", ""): None, ("1", "x"): None, (None, None): a}
    for (org, target), rid in expected.items():  # (None, None): any organization and target
        assert next((x.id for x in landed[key] if x.matches(org, target)), None) == rid
    hashes = [f"{i:064x}" for i in range(1200)]  # more than one statement's worth
    assert ledger.landed_inputs([*hashes, key])[key] == landed[key]


def test_mark_duplicates_acked_acks_only_those_duplicates(ledger: Ledger) -> None:
    dups = [
        ledger.insert_duplicate(rec(f"d{i}"), rec(f"d{i}"), duplicate_of="ledger:1", target_key="")[
            0
        ]
        for i in range(3)
    ]
    other, _, _ = ledger.insert(rec("r"))
    ledger.mark_duplicates_acked([dups[0], dups[2], other])
    entries = {rid: ledger.get(rid) for rid in (*dups, other)}
    assert {rid: (e.state, e.acked) for rid, e in entries.items() if e} == {
        dups[0]: ("duplicate", True),
        dups[1]: ("duplicate", False),
        dups[2]: ("duplicate", True),
        other: ("received", False),  # not a duplicate: left as it is
    }
    assert ledger.count_unacked_due(time.time() + 3600) == 1  # dups[1]: work still to do


def test_insert_duplicates_inserts_each_as_insert_duplicate_would(ledger: Ledger) -> None:
    known, _, _ = ledger.insert(rec("known"))
    arrived = rec("a", content="same", org=None)
    to_b = arrived.model_copy(update={"organization_id": "2", "instance": "b"})  # shares files
    other = rec("o", content="other")
    results = ledger.insert_duplicates(
        [
            FoundDuplicate(arrived, to_b, "ledger:1", "", 5.0),
            FoundDuplicate(rec("known"), rec("known"), "ledger:1", ""),
            FoundDuplicate(other, rec("o", content="changed"), "ledger:2", "t"),
            FoundDuplicate(arrived, to_b, "ledger:1", ""),  # the same identity again
        ]
    )
    a = results[0][0]
    assert results == [
        (a, True, "duplicate"),
        (known, False, "received"),  # exists: nothing changes
        (results[2][0], True, "duplicate"),
        (a, False, "duplicate"),
    ]
    rows = {
        r[0]: r[1:]
        for r in ledger.db.query(
            "SELECT source_ref, content_hash, input_hash, organization_id, target_key,"
            " duplicate_of, next_attempt_at, state, acked, spooled FROM ledger_records"
        )
    }
    assert rows["a"] == (to_b.content_hash, arrived.content_hash, "2", "", "ledger:1", 5.0,
                         "duplicate", 0, 0)  # fmt: skip
    assert to_b.content_hash != arrived.content_hash  # qualified by the instance
    changed = rec("o", content="changed").content_hash
    assert rows["o"][:2] == (changed, other.content_hash)
    entry = ledger.find("s", "a")
    assert entry is not None and entry.record().instance == "b"  # stored as routed
    before = ledger.counts()
    bad = rec("bad").model_copy(update={"metadata": {"x": object()}})
    with pytest.raises(PydanticSerializationError):  # its metadata is not JSON
        ledger.insert_duplicates(
            [FoundDuplicate(rec("fine"), rec("fine"), "", ""), FoundDuplicate(bad, bad, "", "")]
        )
    assert ledger.counts() == before  # nothing written


def test_acking_duplicates_looks_them_up_by_id(tmp_path: Path) -> None:
    """SQLite plans the acking of a settler's batch by the ids (a few lookups), not by
    walking every duplicate of the ledger through the state index: a re-run's cost per
    file must not grow with the duplicates of the runs before."""
    ledger = Ledger(tmp_path / "l.db")
    try:
        ids = [
            ledger.insert_duplicate(rec(f"d{i}"), rec(f"d{i}"), duplicate_of="", target_key="")[0]
            for i in range(20)
        ]
        assert ledger._sqlite is not None
        conn = ledger._sqlite.conn
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        try:
            ledger.mark_duplicates_acked(ids[:3])
        finally:
            conn.set_trace_callback(None)
        (update,) = [s for s in statements if s.startswith("UPDATE ledger_records")]
        plan = " ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {update}"))
        assert "PRIMARY KEY" in plan and "ledger_records_state" not in plan, plan
    finally:
        ledger.close()


def _plan_of(ledger: Ledger, starts: str, call: Callable[[], object]) -> str:
    """SQLite's query plan of the statement starting with ``starts`` that ``call`` runs."""
    conn = ledger._raw()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    (sql,) = [s for s in statements if s.startswith(starts)]
    return " ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))


def test_per_run_questions_do_not_read_every_duplicate(tmp_path: Path) -> None:
    """What every run asks once (its summary's counts, the duplicates a killed settler
    left) is answered from the rows the run changed and the records still to be worked
    on, not by reading every row of the ledger through the state index: with a backlog
    dropped again and again, that was every duplicate of every re-run before."""
    ledger = Ledger(tmp_path / "l.db", collector="c1")
    try:
        for i in range(20):
            d = rec(f"d{i}")
            ledger.mark_duplicates_acked(
                [ledger.insert_duplicate(d, d, duplicate_of="", target_key="")[0]]
            )
        summary = _plan_of(ledger, "SELECT source, state", lambda: ledger.counts_since(1.0))
        assert "USING INDEX ledger_records_updated (updated_at>?)" in summary, summary
        due = _plan_of(
            ledger, "UPDATE ledger_records", lambda: ledger.unsettled_duplicates_due(1.0)
        )
        assert "USING INDEX ledger_records_work (work=? AND next_attempt_at>?)" in due, due
    finally:
        ledger.close()


def test_unsettled_duplicates_and_a_runs_counts(ledger: Ledger) -> None:
    """The duplicates a settler did not ack become due now (only this collector's, not
    acked, not due already); a run's counts are of the rows changed since it started."""
    ledger.collector = "c1"
    now = time.time()
    found = [FoundDuplicate(rec(ref), rec(ref), "ledger:1", "", now + 60) for ref in "abcd"]
    (a, _, _), (b, _, _), (c, _, _), (d, _, _) = ledger.insert_duplicates(found)
    ledger.mark_duplicates_acked([b])
    ledger.postpone(c, 0.0, count_attempt=False)  # due already (a worker's)
    with ledger.transaction() as conn:
        conn.execute("UPDATE ledger_records SET collector='c2' WHERE id=?", (d,))
    assert ledger.unsettled_duplicates_due(now) == 1
    due = {r[0]: r[1] for r in ledger.db.query("SELECT id, next_attempt_at FROM ledger_records")}
    assert due[a] == now and due[b] == due[d] == now + 60 and due[c] == 0.0
    rid, _, _ = ledger.insert(rec("e", content="e"))
    started = time.time()
    ledger.update(rid, "done", acked=True)
    assert ledger.counts_since(started) == {"s": {"done": 1}}
    assert ledger.counts_since(0.0) == {"s": {"duplicate": 4, "done": 1}}


def test_a_ledger_from_before_the_landed_index_still_finds_its_landed_inputs(
    make_database: DatabaseFactory,
) -> None:
    db = make_database("ledger")
    db.migrate("ledger", {d: m[:4] for d, m in MIGRATIONS.items()})  # the schema before
    with db.transaction() as c:
        for ref, state in (("a", "done"), ("b", "duplicate")):
            c.execute(
                "INSERT INTO ledger_records (source, source_ref, state, record, original,"
                " input_hash, organization_id, created_at, updated_at)"
                " VALUES ('s', ?, ?, '{}', '{}', 'h', '1', 0, 0)",
                (ref, state),
            )
    ledger = Ledger(db)
    (a,) = [r[0] for r in db.query("SELECT id FROM ledger_records WHERE source_ref='a'")]
    assert ledger.landed_inputs(["h"]) == {"h": [LandedInput(a, "1", "")]}  # not b


def test_step_journal_and_checkpoints_survive_reopen(make_database: DatabaseFactory) -> None:
    lg = Ledger(make_database("ledger"))
    rid, _, _ = lg.insert(rec("a"))
    j = lg.journal(rid)
    assert j.get("document") is None
    j.record("document", "123")
    j.record("attachment:0", "456")
    j.record("document", "123")  # idempotent
    lg.set_checkpoint("s", "cursor", "page-7")
    lg.close()
    lg = Ledger(make_database("ledger"))  # a new process would see the same
    try:
        j = lg.journal(rid)
        assert j.get("document") == "123"
        assert j.steps() == {"document": "123", "attachment:0": "456"}
        assert lg.get_checkpoint("s", "cursor") == "page-7"
        assert lg.get_checkpoint("s", "other") is None
        lg.set_checkpoint("s", "cursor", "page-8")
        assert lg.get_checkpoint("s", "cursor") == "page-8"
    finally:
        lg.close()


def test_shares_the_database_with_other_components(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    other = connect(path)
    other.execute("CREATE TABLE organizations (id TEXT PRIMARY KEY, name TEXT)")
    lg = Ledger(path)
    lg.close()
    versions = dict(other.execute("SELECT component, version FROM schema_version").fetchall())
    assert versions["ledger"] == len(MIGRATIONS["sqlite"]) == 5  # every migration applied
    other.close()


def test_many_threads_insert_and_update(make_database: DatabaseFactory) -> None:
    lg = Ledger(make_database("ledger"))
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(40):
                rid, inserted, _ = lg.insert(rec(f"r{i}", content=f"{t}-{i}"))
                if inserted:
                    lg.journal(rid).record(f"step-{t}", str(i))
                    lg.update(rid, "done", acked=True)
                lg.set_checkpoint("s", f"t{t}", str(i))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert lg.counts() == {"s": {"done": 40}}  # each identity once, whoever won
        assert all(lg.get_checkpoint("s", f"t{t}") == "39" for t in range(6))
    finally:
        lg.close()


def test_journal_steps_taken_by_another_record(ledger: Ledger) -> None:
    """The GLOB pattern of ``taken_by_another`` means the same on both backends (LIKE on
    PostgreSQL, with its own wildcards taken literally)."""
    a, _, _ = ledger.insert(rec("a"))
    b, _, _ = ledger.insert(rec("b", content="y"))
    ledger.journal(a).record("attachment:0", "att-1")
    ledger.journal(a).record("doc_x", "d-1")
    jb = ledger.journal(b)
    assert jb.taken_by_another("attachment:*", "att-1")
    assert not ledger.journal(a).taken_by_another("attachment:*", "att-1")  # its own
    assert not jb.taken_by_another("document", "att-1")
    assert jb.taken_by_another("doc?x", "d-1") and jb.taken_by_another("doc_x", "d-1")
    assert not jb.taken_by_another("doc%", "d-1")  # '%' is no wildcard in a GLOB


def test_transform_outcomes_are_counted_from_the_records(ledger: Ledger) -> None:
    for ref, outcome in (("a", "ok"), ("b", "ok"), ("c", "timeout")):
        r = rec(ref, content=ref)
        r.metadata["transform_outcomes"] = {"extract": outcome}
        ledger.insert(r)
    ledger.insert(rec("d", content="d"))  # nothing reported
    assert ledger.transform_outcomes() == {"extract": {"ok": 2, "timeout": 1}}


def test_landed_inputs_look_each_input_up_by_index(tmp_path: Path) -> None:
    """The batch's question (up to 500 inputs) is answered from the index on input and
    state: SQLite's planner, without statistics, otherwise read every landed record
    through the state index, which grows with everything ever delivered."""
    ledger = Ledger(tmp_path / "ledger.db")
    try:
        for i in range(50):
            rid, _, _ = ledger.insert(rec(f"r{i}", content=f"c{i}"))
            ledger.update(rid, "done", acked=True)
        asked: list[str] = []
        conn = ledger._raw()
        conn.set_trace_callback(asked.append)
        try:
            ledger.landed_inputs([rec("x", content=f"c{i}").content_hash for i in range(64)])
        finally:
            conn.set_trace_callback(None)
        (sql,) = [s for s in asked if "input_hash IN" in s]
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "USING INDEX ledger_records_landed (input_hash=? AND state=?)" in plan, plan
    finally:
        ledger.close()
