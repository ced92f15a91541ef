"""The daemon is SIGKILLed 20 times while ``status`` is polled every 0.3 s (issue 10).

Before SQLite's locks were respected, every ``status`` run could delete the live
engine's ``-wal`` and ``-shm`` files; killed runs then lost committed ledger states and
uploaded files twice. Here the real CLI (``run`` and ``status``) works against the
emulator with lost answers (commit-then-drop) and 5xx on; at the end every file landed
exactly once, byte-identical, and no process ever held a deleted ``-wal``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from itglue_emulator import run_emulator
from tests.crash_loop import CrashLoop, StatusPoller, ledger_counts, write_config

KILLS = 20
PER_ROUND = 6  # files dropped in each round: half before the daemon starts, half while it runs
FILES = KILLS * PER_ROUND

SOURCE = """
[[sources]]
name = "drop"
type = "filesystem"
path = "drop"
organization = "Acme Corp"
stability_delay = 0.1
"""


@pytest.fixture
def emulator() -> Iterator[Any]:
    with run_emulator(api_key="crash-key", seed="demo") as emu:
        yield emu


def left(drop: Path) -> list[Path]:
    """Files still in the drop folder (waiting or claimed), not in ``processed``."""
    return [
        p for p in drop.rglob("*") if p.is_file() and p.relative_to(drop).parts[0] != "processed"
    ]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_status_polled_during_20_sigkills_of_the_daemon(tmp_path: Path, emulator: Any) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    contents = {f"scan-{i:03}.txt": f"page {i}\n".encode() * (i + 2) for i in range(FILES)}
    pending = list(contents)

    def drop_files(n: int) -> None:
        for name in pending[:n]:
            (drop / name).write_bytes(contents[name])
        del pending[:n]

    loop = CrashLoop(
        write_config(tmp_path, emulator, SOURCE),
        emulator,
        lambda: len(emulator.state()["records"]["attachments"]),
    )
    with StatusPoller(loop) as poller:
        loop.crash(
            KILLS,
            before=lambda: drop_files(PER_ROUND // 2),  # a backlog for the start-up scan
            during=lambda: drop_files(PER_ROUND - PER_ROUND // 2),  # files the watcher sees
        )
        loop.finish(lambda: ledger_counts(tmp_path) == {"drop": {"done": FILES}} and not left(drop))
    assert loop.hits == KILLS, f"only {loop.hits} kills hit a running daemon"
    assert poller.runs >= 20, "status was not polled during the run"
    assert loop.deleted == [], "a daemon held a deleted WAL"
    assert left(drop) == [], "a file was not moved to processed"
    state = emulator.state()["records"]
    names = Counter(a["file-name"] for a in state["attachments"])
    assert set(names) == set(contents), "a file was lost"
    assert [n for n, c in names.items() if c > 1] == [], "a file was uploaded twice"
    assert len(state["documents"]) == FILES
    for a in state["attachments"]:
        assert emulator.attachment_content(a["id"]) == contents[a["file-name"]]
    assert ledger_counts(tmp_path) == {"drop": {"done": FILES}}
