"""One ledger shared by several collectors (each backend; on SQLite as two processes
would share the file): each record names its collector, an engine works only on the
records of the sources it owns, the same content claimed by two collectors at once is
delivered once, and ``status`` / ``retry`` show and requeue every collector's records."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.commands.engine import retry, status
from pipeline.exit_codes import ExitCode
from pipeline.ledger import Ledger
from pipeline.observability.heartbeat import Heartbeat, HeartbeatStore
from pipeline.records import Blob, DocumentRecord
from tests.conftest import DatabaseFactory


def rec(source: str, ref: str, content: str, size: int = 3) -> DocumentRecord:
    sha = content.encode().hex().ljust(64, "0")[:64]
    return DocumentRecord(
        source=source,
        source_ref=ref,
        name=ref,
        files=[Blob(file_name=ref, path=Path("/spool") / sha, size=size, sha256=sha)],
        organization_id="1",
    )


@pytest.fixture
def two(make_database: DatabaseFactory) -> Iterator[tuple[Ledger, Ledger]]:
    """Collectors ``site-a`` (source ``a``) and ``site-b`` (source ``b``) on one ledger."""
    a = Ledger(make_database("ledger"), collector="site-a")
    b = Ledger(make_database("ledger"), collector="site-b")
    a.own_sources = lambda: {"a"}
    b.own_sources = lambda: {"b"}
    yield a, b
    a.close()
    b.close()


def test_each_collector_works_only_on_its_own_sources(two: tuple[Ledger, Ledger]) -> None:
    a, b = two
    ra, _, _ = a.insert(rec("a", "x", "one", size=10), blobs=["h1"])
    rb, _, _ = b.insert(rec("b", "y", "two", size=20), blobs=["h2"])
    now = time.time()
    assert a.due(now, 10) == [ra] and b.due(now, 10) == [rb]
    assert a.spool_load() == (1, 10) and b.spool_load() == (1, 20)
    assert a.count_active() == 1 and b.count_active() == 1
    a.update(ra, "delivered")
    assert a.delivered_unacked() == [ra] and b.delivered_unacked() == []
    assert a.count_unacked_due(now + 1) == 1 and b.count_unacked_due(now + 1) == 0
    b.postpone(rb, now + 60)
    assert b.next_due_at() == pytest.approx(now + 60) and a.next_due_at() is not None
    assert [e.id for e in a.changed_since(now - 1)] == [ra]
    # what status and the metrics see: every record, with its collector's name
    assert a.counts_by_collector() == {
        "site-a": {"a": {"delivered": 1}},
        "site-b": {"b": {"received": 1}},
    }
    entry = b.get(ra)
    assert entry is not None and entry.collector == "site-a"
    assert entry.to_dict()["collector"] == "site-a"
    # taking over a source (leases) is a change of the owned set, nothing else
    b.own_sources = lambda: {"a", "b"}
    assert b.delivered_unacked() == [ra]
    b.own_sources = lambda: set()
    assert b.due(now + 3600, 10) == [] and b.spool_load() == (0, 0)


def test_the_same_content_from_two_collectors_is_delivered_once(
    two: tuple[Ledger, Ledger],
) -> None:
    """Many files, each dropped at both sites, claimed by both collectors at the same
    moment: exactly one claim per content delivers; the other waits, then is a
    duplicate of it (claim_delivery is one serialised transaction on either backend)."""
    a, b = two
    n = 30
    ids = {
        "a": [a.insert(rec("a", f"f{i}", f"same {i}"))[0] for i in range(n)],
        "b": [b.insert(rec("b", f"f{i}", f"same {i}"))[0] for i in range(n)],
    }
    decisions: dict[tuple[str, int], str] = {}
    start = threading.Barrier(2)

    def claim(site: str, ledger: Ledger) -> None:
        start.wait()
        for i, rid in enumerate(ids[site]):
            h = rec(site, f"f{i}", f"same {i}").content_hash
            decision, _ = ledger.claim_delivery(
                rid, content_hash=h, organization_id="1", target_key="", scope="organization"
            )
            decisions[(site, i)] = decision
            if decision == "deliver":
                ledger.update(rid, "delivered")

    threads = [threading.Thread(target=claim, args=(s, lg)) for s, lg in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(n):
        pair = sorted([decisions[("a", i)], decisions[("b", i)]])
        assert pair in (["deliver", "duplicate"], ["deliver", "wait"]), (i, pair)


def test_status_and_retry_show_every_collectors_records(
    make_database: DatabaseFactory, state_table: dict[str, str], tmp_path: Path
) -> None:
    a = Ledger(make_database("ledger"), collector="site-a")
    b = Ledger(make_database("ledger"), collector="site-b")
    try:
        ra, _, _ = a.insert(rec("a", "x.pdf", "one"))
        a.update(ra, "failed", reason="422: name is blank", acked=True)
        rb, _, _ = b.insert(rec("b", "y.pdf", "two"))
        b.update(rb, "done", acked=True)
    finally:
        a.close()
        b.close()
    beats = HeartbeatStore(make_database("daemon"), "site-b")
    now = time.time()
    beats.beat(Heartbeat(4242, "host-b", now - 60, now - 30, 10, now - 30, None, {}))
    beats.close()
    cfg = tmp_path / "ingest.toml"
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in state_table.items())
    # (instance "instance": the SQLite file make_database made is state/instance.db)
    cfg.write_text(
        f'[itglue]\ninstance = "instance"\n\n[state]\n{lines}\n\n'
        '[pipeline]\ntransforms = []\nsink = "itglue"\n'
    )

    result = CliRunner().invoke(status, ["-c", str(cfg)])
    assert result.exit_code == ExitCode.FAILED, result.output
    table = [line.split() for line in result.output.splitlines()]
    if "backend" in state_table:  # PostgreSQL: collectors share it, status groups by them
        assert ["collector", "source", "done", "failed"] in table, result.output
        assert ["site-a", "a", "0", "1"] in table and ["site-b", "b", "1", "0"] in table
        assert f"#{ra} [site-a] a:x.pdf" in result.output
    else:  # one collector's file (a changed host name is not another collector)
        assert ["source", "done", "failed"] in table and ["a", "0", "1"] in table
        assert f"#{ra} a:x.pdf" in result.output
    assert "collector site-b: not running (pid 4242 on host-b, last beat 30 s ago)" in (
        result.output
    )
    as_json = json.loads(CliRunner().invoke(status, ["-c", str(cfg), "--json"]).output)
    assert as_json["collectors"] == {
        "site-a": {"a": {"failed": 1}},
        "site-b": {"b": {"done": 1}},
    }
    assert as_json["failed"][0]["collector"] == "site-a"
    assert as_json["other_collectors"]["site-b"]["state"] == "stopped"

    # retry from any machine requeues another collector's record; its owner works on it
    result = CliRunner().invoke(retry, ["-c", str(cfg), "--all-failed"])
    assert result.exit_code == 0 and "requeued 1 record(s)" in result.output
    again = CliRunner().invoke(status, ["-c", str(cfg), "--json"])
    assert json.loads(again.output)["collectors"]["site-a"] == {"a": {"received": 1}}
