"""Takeover (issue 15): the collector that owns a source is SIGKILLed 10 times during a
300-file run while a standby configured with the same source runs; the state is shared
on PostgreSQL, the spools are each collector's own.

Every file lands exactly once, byte-identical: the standby resumes half-done deliveries
from the shared step journal and reads the files the dead collector had spooled again
from the drop folder. The kill-to-takeover times are printed (bench/bench_takeover.py
measures them with more rounds).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core_client.postgres import PostgresDatabase
from itglue_emulator import run_emulator
from pipeline.ledger import Ledger
from pipeline.testing.postgres import PostgresServer
from tests.takeover import SOURCE, DropRounds, Fleet

KILLS = 10
FILES = 300
LEASE = 2.0


@pytest.fixture
def emulator() -> Iterator[Any]:
    with run_emulator(api_key="crash-key", seed="demo") as emu:
        yield emu


def ledger_counts(dsn: str) -> dict[str, dict[str, int]]:
    ledger = Ledger(PostgresDatabase(dsn, component="ledger"))
    try:
        return ledger.counts()
    finally:
        ledger.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_of_the_owner_10_times_with_a_standby(
    tmp_path: Path, emulator: Any, postgres_server: PostgresServer
) -> None:
    dsn = postgres_server.create_database()
    fleet = Fleet(tmp_path, emulator, dsn, LEASE)
    contents = {f"scan-{i:03}.txt": f"page {i}\n".encode() * (i + 2) for i in range(FILES)}
    per_round = FILES // (KILLS + 1)
    files = DropRounds(fleet.drop, contents, per_round)

    try:
        files.drop(per_round)
        fleet.begin()
        fleet.faults_on()
        rounds = files.rounds()
        for _ in range(KILLS):
            fleet.kill_owner(rounds)
        files.drop_rest()
        codes = fleet.finish(
            lambda: ledger_counts(dsn) == {SOURCE: {"done": FILES}} and not fleet.waiting()
        )
        generation = fleet.generation()
    finally:
        fleet.close()
    for line in fleet.figures():
        print(line)
    assert codes == {"a": 0, "b": 0}
    assert len(fleet.takeovers) == KILLS
    assert generation >= KILLS + 1  # every kill handed the source over
    assert fleet.logged("again from the source") > 0, "no record was read again"
    state = emulator.state()["records"]
    landed = Counter(a["file-name"] for a in state["attachments"])
    assert set(landed) == set(contents), "a file was lost"
    assert [n for n, c in landed.items() if c > 1] == [], "a file was uploaded twice"
    assert len(state["documents"]) == FILES, "a document was made twice"
    for a in state["attachments"]:
        assert emulator.attachment_content(a["id"]) == contents[a["file-name"]]
    assert fleet.waiting() == []
