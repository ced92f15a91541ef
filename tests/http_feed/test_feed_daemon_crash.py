"""The daemon reading a live HTTPS feed is SIGKILLed 20 times (issue 10).

The real CLI ``run`` polls the loopback feed server (``updated_at`` checkpoint) and
delivers into the emulator with lost answers and 5xx on, while items keep appearing on
the feed. At the end every item is one document whose attachment is its downloaded
file, byte-identical.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from itglue_emulator import run_emulator
from tests.crash_loop import CrashLoop, ledger_counts, write_config
from tests.http_feed.http_feed_server import FeedServer, add_doc

KILLS = 20
PER_ROUND = 6  # items added in each round: half before the daemon starts, half while it runs
ITEMS = KILLS * PER_ROUND


@pytest.fixture
def emulator() -> Iterator[Any]:
    with run_emulator(api_key="crash-key", seed="demo") as emu:
        yield emu


def source(feed: FeedServer) -> str:
    return f"""
[[sources]]
name = "feed"
type = "http_feed"
organization = "Acme Corp"
url = "{feed.url("/feed/next_link")}"
ca_bundle = "{feed.ca_file}"
items_path = "data"
since_param = "since"
poll_interval = 0.3
backoff_base = 0.01
backoff_max = 0.05

[sources.pagination]
style = "next_link"
next_path = "links.next"

[sources.fields]
id = "id"
name = "attributes.title"
file_url = "links.file"
organization = "attributes.org"
updated_at = "updated_at"
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_20_sigkills_of_the_feed_daemon(tmp_path: Path, emulator: Any, feed: FeedServer) -> None:
    feed.state.page_size = 4
    added = 0

    def publish(n: int) -> None:
        nonlocal added
        for i in range(added, added + n):
            # one second apart: the updated_at checkpoint orders them
            add_doc(feed, i, org="Acme Corp", updated=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z")
        added += n

    loop = CrashLoop(
        write_config(tmp_path, emulator, source(feed)),
        emulator,
        lambda: len(emulator.state()["records"]["documents"]),
    )
    loop.crash(
        KILLS,
        before=lambda: publish(PER_ROUND // 2),  # a backlog for the first poll
        during=lambda: publish(PER_ROUND - PER_ROUND // 2),  # items a later poll finds
    )
    loop.finish(lambda: ledger_counts(tmp_path).get("feed", {}).get("done") == ITEMS)

    assert loop.hits == KILLS, f"only {loop.hits} kills hit a running daemon"
    assert loop.deleted == [], "a daemon held a deleted WAL"
    state = emulator.state()["records"]
    reports = {f"Report {i}": f"doc-{i}.pdf" for i in range(ITEMS)}
    docs = Counter(d["name"] for d in state["documents"])
    assert set(docs) == set(reports), "an item was lost"
    assert [n for n, c in docs.items() if c > 1] == [], "an item was delivered twice"
    doc_names = {d["id"]: d["name"] for d in state["documents"]}
    landed = Counter(
        (doc_names[str(a["resource-id"])], a["file-name"]) for a in state["attachments"]
    )
    assert landed == Counter(reports.items()), "a file is missing, misplaced or doubled"
    for a in state["attachments"]:
        assert emulator.attachment_content(a["id"]) == feed.state.files[a["file-name"]][0]
    assert ledger_counts(tmp_path) == {"feed": {"done": ITEMS}}
