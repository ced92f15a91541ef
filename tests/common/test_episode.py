"""Episode: when trouble that lasts is told (pure logic, on a fake clock)."""

from __future__ import annotations

from itglue_common.episode import Episode


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_start_once_a_minute_end() -> None:
    clock = Clock()
    ep = Episode(every=60.0, clock=clock)
    assert ep.success() is None  # nothing was wrong
    start = ep.failure("GET /organizations -> 503")
    assert start is not None and start.kind == "start"
    assert start.text("IT Glue unavailable") == "IT Glue unavailable: GET /organizations -> 503"
    told = []
    for _ in range(36):  # one failure every 5 s for 3 minutes
        clock.t += 5
        note = ep.failure("GET /organizations -> 503")
        if note is not None:
            told.append(note)
    assert [n.kind for n in told] == ["still", "still", "still"]
    assert told[0].failures == 13 and told[0].seconds == 60
    assert told[0].text("IT Glue unavailable", "failed attempts") == (
        "IT Glue unavailable: still failing: 13 failed attempts over 60 s,"
        " last: GET /organizations -> 503"
    )
    clock.t += 2
    end = ep.success()
    assert end is not None and end.kind == "end" and end.failures == 37
    assert end.text("IT Glue") == "IT Glue: recovered after 182 s, 37 attempts"
    assert ep.success() is None  # told once


def test_trouble_back_soon_after_is_the_same_episode() -> None:
    clock = Clock()
    ep = Episode(every=60.0, clock=clock)
    assert ep.failure("x") is not None
    assert ep.success() is not None
    clock.t += 10  # within calm_after (= every): no new "start", and its end is not told
    assert ep.failure("y") is None
    assert ep.active and ep.failures == 2
    assert ep.success() is None
    clock.t += 61  # calm long enough: a new episode
    note = ep.failure("z")
    assert note is not None and note.kind == "start" and note.failures == 1
