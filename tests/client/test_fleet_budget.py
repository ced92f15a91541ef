"""Issue 15: three collectors, one PostgreSQL state, one account budget (real processes,
real emulator, real PostgreSQL; the window scaled down from 300 per 30 s to 60 per 6 s)."""

from __future__ import annotations

from pathlib import Path

from itglue_emulator import run_emulator
from pipeline.testing.fleet import run_fleet
from pipeline.testing.postgres import PostgresServer

LIMIT, WINDOW, WINDOWS = 60, 6.0, 3


def test_three_collectors_use_the_budget_without_a_429(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """Each collector alone would spend the whole budget at once (four workers, 80 % at a
    burst); together they draw from the budget's one row: the server never answers
    429, and at least 95 % of what the measured windows allowed is used."""
    dsn = postgres_server.create_database()
    with run_emulator(rate_limit=(LIMIT, WINDOW), retry_after=False) as emu:
        result = run_fleet(
            emu, dsn, tmp_path, collectors=3, limit=LIMIT, window=WINDOW, windows=WINDOWS
        )
    assert result.refused == 0, result
    assert result.failed == 0, result
    assert result.used >= 0.95, result
    assert all(c["operations"] > 0 for c in result.per_collector), result  # all took part
