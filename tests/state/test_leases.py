"""Source leases on both backends: take, renew, steal the expired, release; and the
engine's view of them (pipeline.runner.ownership)."""

from __future__ import annotations

import threading
import time

import pytest

from core_client.database import Database
from pipeline.leases import Leases
from pipeline.runner.ownership import LeaseLost, Ownership
from tests.conftest import DatabaseFactory


def expire(db: Database, source: str) -> None:
    """Age a lease past its expiry, as if its owner stopped renewing long ago."""
    with db.transaction() as c:
        c.execute("UPDATE source_leases SET expires_at=expires_at-3600 WHERE source=?", (source,))


def test_a_free_source_is_taken_and_renewed_by_its_owner(make_database: DatabaseFactory) -> None:
    a = Leases(make_database("leases"), "site-a", 30.0)
    first = a.claim(["inbox", "scans"])
    assert first.held() == {"inbox", "scans"}
    lease = first.leases["inbox"]
    assert lease.owner == "site-a" and lease.generation == 1
    assert lease.expires_at == pytest.approx(first.now + 30.0)
    again = a.claim(["inbox", "scans"])
    assert again.held() == {"inbox", "scans"}
    renewed = again.leases["inbox"]
    assert renewed.generation == 1 and renewed.acquired_at == lease.acquired_at
    assert renewed.expires_at >= lease.expires_at


def test_a_live_lease_of_another_collector_is_left_alone(make_database: DatabaseFactory) -> None:
    a = Leases(make_database("leases"), "site-a", 30.0)
    b = Leases(make_database("leases"), "site-b", 30.0)
    a.claim(["inbox"])
    seen = b.claim(["inbox", "only-b"])
    assert seen.held() == {"only-b"}
    assert seen.taken() == {"inbox"}
    assert seen.leases["inbox"].owner == "site-a"
    assert a.claim(["inbox"]).held() == {"inbox"}  # still a's


def test_an_expired_lease_is_stolen_once_with_a_new_generation(
    make_database: DatabaseFactory,
) -> None:
    db = make_database("leases")
    a = Leases(db, "site-a", 30.0)
    b = Leases(make_database("leases"), "site-b", 30.0)
    c = Leases(make_database("leases"), "site-c", 30.0)
    a.claim(["inbox"])
    expire(db, "inbox")
    won = b.claim(["inbox"])
    assert won.held() == {"inbox"}
    assert won.leases["inbox"].generation == 2
    assert won.leases["inbox"].acquired_at == pytest.approx(won.now)
    assert c.claim(["inbox"]).taken() == {"inbox"}  # b's now, live: nobody else's
    back = a.claim(["inbox"])  # the old owner comes back: it is not its source any more
    assert back.held() == set()
    assert back.leases["inbox"].owner == "site-b"


def test_an_own_expired_lease_nobody_took_is_renewed(make_database: DatabaseFactory) -> None:
    db = make_database("leases")
    a = Leases(db, "site-a", 30.0)
    a.claim(["inbox"])
    expire(db, "inbox")
    again = a.claim(["inbox"])
    assert again.held() == {"inbox"}
    assert again.leases["inbox"].generation == 1


def test_release_hands_the_source_to_the_next_claimer(make_database: DatabaseFactory) -> None:
    a = Leases(make_database("leases"), "site-a", 30.0)
    b = Leases(make_database("leases"), "site-b", 30.0)
    a.claim(["inbox", "scans"])
    a.release(["inbox"])
    seen = b.claim(["inbox", "scans"])
    assert seen.held() == {"inbox"}
    assert seen.leases["scans"].owner == "site-a"
    b.release(["scans"])  # not b's: nothing changes
    assert b.claim(["scans"]).taken() == {"scans"}


def test_concurrent_stealers_one_wins(make_database: DatabaseFactory) -> None:
    """Every claim round is one serialised transaction: of many standbys racing for an
    expired lease, exactly one gets it."""
    db = make_database("leases")
    Leases(db, "dead", 30.0).claim(["inbox"])
    expire(db, "inbox")
    standbys = [Leases(make_database("leases"), f"standby-{i}", 30.0) for i in range(4)]
    winners: list[str] = []
    errors: list[BaseException] = []
    go = threading.Barrier(len(standbys))

    def race(leases: Leases) -> None:
        try:
            go.wait()
            if leases.claim(["inbox"]).held():
                winners.append(leases.collector)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=race, args=(s,)) for s in standbys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(winners) == 1
    now, leases = standbys[0].all()
    assert [(x.source, x.owner, x.generation) for x in leases] == [("inbox", winners[0], 2)]
    assert leases[0].live(now)


def test_expiry_is_measured_by_the_database_clock(make_database: DatabaseFactory) -> None:
    """A real (short) lease runs out by the database's clock, and only then can be taken."""
    a = Leases(make_database("leases"), "site-a", 1.0)
    b = Leases(make_database("leases"), "site-b", 1.0)
    first = a.claim(["inbox"])
    assert b.claim(["inbox"]).taken() == {"inbox"}
    while True:
        now, _ = b.all()
        if now > first.leases["inbox"].expires_at:
            break
        time.sleep(0.05)
    assert b.claim(["inbox"]).held() == {"inbox"}


def test_lease_time_must_be_positive(make_database: DatabaseFactory) -> None:
    with pytest.raises(ValueError, match="positive"):
        Leases(make_database("leases"), "site-a", 0)


# ---------------------------------------------------------------------- Ownership


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_one_collector_per_state_owns_every_source_without_leases() -> None:
    own = Ownership(["inbox", "scans"])
    gained: list[str] = []
    own.on_gain = gained.append
    own.start()
    assert gained == ["inbox", "scans"]
    assert own.owned() == {"inbox", "scans"} and not own.shared
    own.stop()
    assert own.owns("inbox")


def test_ownership_follows_the_leases(make_database: DatabaseFactory) -> None:
    db = make_database("leases")
    clock = FakeClock()
    own = Ownership(["inbox", "scans"], Leases(db, "site-a", 30.0), clock=clock)
    other = Leases(make_database("leases"), "site-b", 30.0)
    other.claim(["scans"])
    events: list[tuple[str, str]] = []
    own.on_gain = lambda n: events.append(("gain", n))
    own.on_loss = lambda n: events.append(("loss", n))
    own.renew()
    assert own.owned() == {"inbox"}
    assert own.holders == {"inbox": "site-a", "scans": "site-b"}
    assert events == [("gain", "inbox")]
    # site-b stops renewing: its lease runs out and this collector takes the source
    expire(db, "scans")
    own.renew()
    assert own.owned() == {"inbox", "scans"}
    assert own.takeovers == 1
    assert events[-1] == ("gain", "scans")
    # this collector cannot renew for two thirds of the lease: it stops using its
    # sources on its own, a third of the lease before anyone may take them
    clock.t += 30.0 * 2 / 3 - 0.01
    assert own.owned() == {"inbox", "scans"}
    clock.t += 0.02
    assert own.owned() == frozenset()
    assert sorted(events[-2:]) == [("loss", "inbox"), ("loss", "scans")]


def test_a_collector_whose_lease_was_taken_stops_the_source(
    make_database: DatabaseFactory,
) -> None:
    db = make_database("leases")
    own = Ownership(["inbox"], Leases(db, "site-a", 30.0))
    lost: list[str] = []
    own.on_loss = lost.append
    own.renew()
    expire(db, "inbox")
    Leases(make_database("leases"), "site-b", 30.0).claim(["inbox"])
    own.renew()
    assert lost == ["inbox"]
    assert own.owned() == frozenset()
    assert own.holders["inbox"] == "site-b"


def test_stop_releases_the_leases(make_database: DatabaseFactory) -> None:
    own = Ownership(["inbox"], Leases(make_database("leases"), "site-a", 30.0))
    own.start()
    assert own.owned() == {"inbox"}
    own.stop()
    assert own.owned() == frozenset()
    assert Leases(make_database("leases"), "site-b", 30.0).claim(["inbox"]).held() == {"inbox"}


def test_holds_asks_the_database(make_database: DatabaseFactory) -> None:
    db = make_database("leases")
    a = Leases(db, "site-a", 30.0)
    b = Leases(make_database("leases"), "site-b", 30.0)
    assert not a.holds("inbox")
    a.claim(["inbox"])
    assert a.holds("inbox") and not b.holds("inbox")
    expire(db, "inbox")
    assert not a.holds("inbox")  # expired: a standby may take it any moment


class ListJournal:
    def __init__(self) -> None:
        self.recorded: dict[str, str] = {}

    def get(self, step: str) -> str | None:
        return self.recorded.get(step)

    def record(self, step: str, value: str) -> None:
        self.recorded[step] = value

    def steps(self) -> dict[str, str]:
        return dict(self.recorded)

    def taken_by_another(self, step: str, value: str) -> bool:
        return False


def test_a_collector_that_lost_the_source_journals_no_further_step(
    make_database: DatabaseFactory,
) -> None:
    """The fence: a delivery in flight when the lease went elsewhere stops before its
    next API write (a sink journals each step before the write it guards)."""
    db = make_database("leases")
    own = Ownership(["inbox"], Leases(db, "site-a", 30.0))
    own.renew()
    inner = ListJournal()
    journal = own.fenced(inner, "inbox")
    journal.record("document.pending", "1")
    expire(db, "inbox")
    Leases(make_database("leases"), "site-b", 30.0).claim(["inbox"])
    with pytest.raises(LeaseLost, match="another collector owns it now"):
        journal.record("document", "42")
    assert inner.recorded == {"document.pending": "1"}
    assert journal.get("document.pending") == "1"


def test_one_collector_per_state_journals_unfenced() -> None:
    inner = ListJournal()
    assert Ownership(["inbox"]).fenced(inner, "inbox") is inner
