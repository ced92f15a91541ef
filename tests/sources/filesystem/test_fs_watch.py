"""The drop folder watched by the real engine (``Engine.run``), with real inotify and with
the polling observer: drops, slow copies, renames, sub-folder routing, the after modes,
files in flight, and a folder that disappears and comes back."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from plugins.filesystem.placement import dated_dir
from tests.sources.filesystem.fs_helpers import (
    Store,
    files_under,
    ledger_rows,
    make_engine,
    observer_started,
    running,
    settings_for,
    sha,
)
from tests.waiting import wait_for

STABILITY = 0.5


@pytest.fixture(params=["native", "polling"])
def observer(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    d = tmp_path / "drop"
    d.mkdir()
    return d


def daemon_settings(tmp_path: Path, drop: Path, observer: str, **opts: Any) -> Any:
    opts.setdefault("stability_delay", STABILITY)
    return settings_for(tmp_path, drop, observer=observer, poll_interval=0.1, **opts)


def processed(drop: Path) -> Path:
    return dated_dir(drop / "processed")


def test_dropped_file_is_delivered_once_and_moved(
    tmp_path: Path, drop: Path, observer: str
) -> None:
    store = Store(tmp_path / "store.db")
    settings = daemon_settings(tmp_path, drop, observer, organization="Acme")
    with running(make_engine(settings)) as engine:
        wait_for(lambda: observer_started(engine), message="the observer")
        data = os.urandom(50_000)
        (drop / "invoice.pdf").write_bytes(data)
        wait_for(lambda: (processed(drop) / "invoice.pdf").exists(), message="moved to processed")
        rows = store.rows()
        assert [(r["source_ref"], r["sha256"], r["organization"]) for r in rows] == [
            ("invoice.pdf", sha(data), "Acme")
        ]
        assert (processed(drop) / "invoice.pdf").read_bytes() == data
        assert not (drop / "invoice.pdf").exists()
    assert [r["state"] for r in ledger_rows(settings)] == ["done"]


def test_slow_copy_is_taken_once_and_complete(tmp_path: Path, drop: Path, observer: str) -> None:
    store = Store(tmp_path / "store.db")
    # chunks 0.2 s apart against a 0.8 s delay: margin for a loaded CI machine
    settings = daemon_settings(tmp_path, drop, observer, stability_delay=0.8)
    chunks = [os.urandom(20_000) for _ in range(10)]
    with running(make_engine(settings)) as engine:
        wait_for(lambda: observer_started(engine), message="the observer")
        target = drop / "big scan.pdf"
        with target.open("wb") as f:
            for chunk in chunks:  # ~2 s of writing, 0.2 s apart (< the stability delay)
                f.write(chunk)
                f.flush()
                time.sleep(0.2)  # deliberate: a slow writer, pausing below the stability delay
                assert store.rows() == [], "taken before it was complete"
        wait_for(lambda: store.rows(), message="delivery")
        wait_for(lambda: (processed(drop) / "big scan.pdf").exists(), message="move")
        time.sleep(1.6)  # deliberate: nothing more may come (no second delivery)
    rows = store.rows()
    assert len(rows) == 1
    assert rows[0]["sha256"] == sha(b"".join(chunks))
    assert rows[0]["size"] == 200_000


def test_file_renamed_into_the_folder_is_taken_once(
    tmp_path: Path, drop: Path, observer: str
) -> None:
    store = Store(tmp_path / "store.db")
    settings = daemon_settings(tmp_path, drop, observer)
    outside = tmp_path / "staging"
    outside.mkdir()
    with running(make_engine(settings)) as engine:
        wait_for(lambda: observer_started(engine), message="the observer")
        # 1. written elsewhere on the same filesystem, renamed in
        (outside / "a.pdf").write_bytes(b"A" * 1000)
        os.rename(outside / "a.pdf", drop / "a.pdf")
        # 2. written under a temporary name inside, then renamed (browsers, scanners)
        with (drop / "b.pdf.part").open("wb") as f:
            f.write(b"B" * 1000)
        os.rename(drop / "b.pdf.part", drop / "b.pdf")
        # 3. a whole folder moved in
        (outside / "Globex").mkdir()
        (outside / "Globex" / "c.pdf").write_bytes(b"C" * 1000)
        (outside / "Globex" / "d.pdf").write_bytes(b"D" * 1000)
        os.rename(outside / "Globex", drop / "Globex")
        wait_for(lambda: len(store.rows()) >= 4, message="four deliveries")
        wait_for(lambda: not files_under(drop / "Globex"), message="moves")
        time.sleep(STABILITY * 2)  # deliberate: no late event may deliver a file twice
    assert sorted(store.refs()) == ["Globex/c.pdf", "Globex/d.pdf", "a.pdf", "b.pdf"]
    assert sorted(p.name for p in files_under(processed(drop))) == [
        "a.pdf",
        "b.pdf",
        "c.pdf",
        "d.pdf",
    ]


def test_subfolder_names_the_organization(tmp_path: Path, drop: Path, observer: str) -> None:
    store = Store(tmp_path / "store.db")
    settings = daemon_settings(
        tmp_path, drop, observer, organization="Fallback Org", organization_from="subfolder"
    )
    (drop / "Acme Corp" / "2024").mkdir(parents=True)
    with running(make_engine(settings)) as engine:
        wait_for(lambda: observer_started(engine), message="the observer")
        (drop / "Acme Corp" / "invoice.pdf").write_bytes(b"1")
        (drop / "Acme Corp" / "2024" / "report.pdf").write_bytes(b"2")
        (drop / "Initech").mkdir()
        (drop / "Initech" / "tps.pdf").write_bytes(b"3")
        (drop / "top.pdf").write_bytes(b"4")
        wait_for(lambda: len(store.rows()) == 4, message="four deliveries")
        wait_for(lambda: len(files_under(drop / "processed")) == 4, message="moves")
    orgs = {r["source_ref"]: r["organization"] for r in store.rows()}
    assert orgs == {
        "Acme Corp/invoice.pdf": "Acme Corp",
        "Acme Corp/2024/report.pdf": "Acme Corp",
        "Initech/tps.pdf": "Initech",
        "top.pdf": "Fallback Org",
    }
    # the sub-folders are kept below the dated folder
    assert (processed(drop) / "Acme Corp" / "2024" / "report.pdf").read_bytes() == b"2"
    assert (drop / "Acme Corp").is_dir()  # the user's folders stay


@pytest.mark.parametrize("after", ["move", "delete", "keep"])
def test_after_modes(tmp_path: Path, drop: Path, observer: str, after: str) -> None:
    store = Store(tmp_path / "store.db")
    settings = daemon_settings(tmp_path, drop, observer, after=after)
    with running(make_engine(settings)) as engine:
        wait_for(lambda: observer_started(engine), message="the observer")
        (drop / "a.pdf").write_bytes(b"first")
        wait_for(
            lambda: ledger_rows(settings) and ledger_rows(settings)[0]["state"] == "done",
            message="done",
        )
        if after == "move":
            assert (processed(drop) / "a.pdf").read_bytes() == b"first"
            assert not (drop / "a.pdf").exists()
        elif after == "delete":
            assert not (drop / "a.pdf").exists()
            assert not (drop / "processed").exists()
        else:
            assert (drop / "a.pdf").read_bytes() == b"first"
            assert not (drop / "processed").exists()
        # same name again, new content: a new version, delivered too
        (drop / "a.pdf").write_bytes(b"second version")
        wait_for(lambda: len(store.rows()) == 2, message="second version")
        wait_for(lambda: all(r["state"] == "done" for r in ledger_rows(settings)), message="done")
        if after == "move":
            wait_for(lambda: (processed(drop) / "a (1).pdf").exists(), message="numbered move")
            assert (processed(drop) / "a (1).pdf").read_bytes() == b"second version"
        # a rescan (here: forced) finds nothing new
        src = engine.sources["drop"]
        src.scan()
        time.sleep(STABILITY * 2)  # deliberate: nothing new may be delivered meanwhile
    assert [r["sha256"] for r in store.rows()] == [sha(b"first"), sha(b"second version")]


@pytest.mark.parametrize("after", ["move", "keep"])
def test_second_event_for_a_file_in_flight_does_nothing(
    tmp_path: Path, drop: Path, observer: str, after: str
) -> None:
    store = Store(tmp_path / "store.db")
    settings = daemon_settings(tmp_path, drop, observer, sink_delay=1.5, after=after)
    with running(make_engine(settings)) as engine:
        wait_for(lambda: observer_started(engine), message="the observer")
        (drop / "slow.pdf").write_bytes(b"x" * 100)
        wait_for(lambda: ledger_rows(settings), message="received")
        for _ in range(5):  # events that change nothing (opened for writing, closed), rescans
            p = _where(drop, "slow.pdf")
            if p is None:
                break
            with contextlib.suppress(FileNotFoundError):
                open(p, "r+b").close()
            engine.sources["drop"].scan()
            time.sleep(STABILITY / 2)  # deliberate: events spread over the delivery
        wait_for(lambda: ledger_rows(settings)[0]["state"] == "done", message="delivery")
    assert len(ledger_rows(settings)) == 1
    assert len(store.rows()) == 1


def test_folder_that_disappears_is_reported_and_watching_resumes(
    tmp_path: Path, drop: Path, observer: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="itglue_ingest")
    store = Store(tmp_path / "store.db")
    settings = daemon_settings(tmp_path, drop, observer, missing_retry_interval=0.2)
    with running(make_engine(settings)) as engine:
        wait_for(lambda: observer_started(engine), message="the observer")
        (drop / "before.pdf").write_bytes(b"1")
        wait_for(lambda: len(store.rows()) == 1, message="first delivery")
        away = tmp_path / "unmounted"
        os.rename(drop, away)  # the share goes away
        wait_for(lambda: "is not available" in caplog.text, message="warning")
        time.sleep(0.5)  # deliberate: several retries (0.2 s apart), and still no crash
        os.rename(away, drop)  # and comes back
        wait_for(lambda: "available again" in caplog.text, message="recovery")
        (drop / "after.pdf").write_bytes(b"2")
        wait_for(lambda: len(store.rows()) == 2, message="delivery after recovery")
        # replaced by a new, empty folder (a remount): watched anew
        shutil.rmtree(drop)
        drop.mkdir()
        # deliberate: the source first sees the new folder empty. Nothing says when: the new
        # folder may reuse the old one's inode (no restart of the observer to wait for),
        # and a file created at once may reuse a deleted folder's inode, which the polling
        # snapshot reads as that folder moved here
        time.sleep(0.3)
        (drop / "remount.pdf").write_bytes(b"3")
        wait_for(lambda: len(store.rows()) == 3, message="delivery after remount")
        assert engine.sources["drop"] is not None
    assert sorted(store.refs()) == ["after.pdf", "before.pdf", "remount.pdf"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_files_that_vanish_or_are_replaced_before_they_are_stable(
    tmp_path: Path, drop: Path, observer: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="itglue_ingest")
    store = Store(tmp_path / "store.db")
    settings = daemon_settings(tmp_path, drop, observer, stability_delay=1.0)
    staging = tmp_path / "staging"
    staging.mkdir()
    with running(make_engine(settings)) as engine:
        wait_for(lambda: observer_started(engine), message="the observer")
        (drop / "gone.pdf").write_bytes(b"here for a moment")
        (drop / "replaced.pdf").write_bytes(b"first draft")
        time.sleep(0.15)  # deliberate: both are seen, then change before they are stable
        (drop / "gone.pdf").unlink()
        (staging / "final.pdf").write_bytes(b"the final version, longer")
        os.rename(staging / "final.pdf", drop / "replaced.pdf")  # atomically replaced
        wait_for(lambda: store.rows(), message="delivery")
        time.sleep(1.0)  # deliberate: nothing more may come (gone.pdf, the first draft)
    assert [(r["source_ref"], r["sha256"]) for r in store.rows()] == [
        ("replaced.pdf", sha(b"the final version, longer"))
    ]
    assert [r["source_ref"] for r in ledger_rows(settings)] == ["replaced.pdf"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_folder_missing_at_start_is_waited_for(
    tmp_path: Path, observer: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="itglue_ingest")
    # a non-UTF-8 folder name too: it appears in metadata and in failure notes
    drop = Path(os.fsdecode(bytes(tmp_path) + b"/share-\xe9/drop"))
    store = Store(tmp_path / "store.db")
    settings = daemon_settings(
        tmp_path, drop, observer, missing_retry_interval=0.2, pipeline_opts={"max_file_size": 10}
    )
    with running(make_engine(settings)):
        wait_for(lambda: "is not available" in caplog.text, message="warning")
        drop.mkdir(parents=True)  # the share is mounted
        (drop / "late.pdf").write_bytes(b"late")
        (drop / "too-big.pdf").write_bytes(b"x" * 11)
        wait_for(lambda: store.rows(), message="delivery")
        wait_for(lambda: (drop / "failed" / "too-big.pdf.error.txt").exists(), message="failure")
    assert store.refs() == ["late.pdf"]
    note = (drop / "failed" / "too-big.pdf.error.txt").read_text()
    assert "share-\ufffd" in note and "too large" in note


def _where(drop: Path, name: str) -> Path | None:
    """The file ``name`` wherever the source keeps it now (the drop folder or a claim)."""
    found = [p for p in files_under(drop) if p.name == name and "processed" not in p.parts]
    return found[0] if found else None


@pytest.mark.parametrize("replace", ["in place", "renamed over"])
@pytest.mark.parametrize("after", ["move", "keep"])
def test_file_replaced_in_flight_with_same_size_and_mtime_is_delivered(
    tmp_path: Path, drop: Path, observer: str, after: str, replace: str
) -> None:
    """``cp -p`` (rewrites in place) or ``rsync -t`` (renames a new file over it) of a
    same-size file with the same mtime while the first one is being delivered: the new
    content is delivered too and nothing is moved away unread (issue 10, defect 4)."""
    store = Store(tmp_path / "store.db")
    settings = daemon_settings(tmp_path, drop, observer, after=after, sink_delay=1.5)
    first, second = b"A" * 4000, b"B" * 4000
    with running(make_engine(settings)) as engine:
        wait_for(lambda: observer_started(engine), message="the observer")
        p = drop / "report.pdf"
        p.write_bytes(first)
        st = os.stat(p)
        wait_for(lambda: ledger_rows(settings), message="the first version taken")
        if replace == "in place":  # cp -p: truncate, write, copy the times
            with open(p, "wb") as f:
                f.write(second)
        else:  # rsync -t: a temporary file renamed over the original
            (drop / ".report.pdf.tmp").write_bytes(second)
            os.utime(drop / ".report.pdf.tmp", ns=(st.st_atime_ns, st.st_mtime_ns))
            os.rename(drop / ".report.pdf.tmp", p)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert (os.stat(p).st_size, os.stat(p).st_mtime_ns) == (st.st_size, st.st_mtime_ns)
        wait_for(lambda: len(store.rows()) == 2, timeout=20, message="the second version delivered")
        wait_for(lambda: all(r["state"] == "done" for r in ledger_rows(settings)), message="done")
        if after == "move":
            wait_for(lambda: _where(drop, "report.pdf") is None, message="moved")
    assert sorted(r["sha256"] for r in store.rows()) == [sha(first), sha(second)]
    if after == "move":
        moved = [p.read_bytes() for p in files_under(processed(drop))]
        assert second in moved and set(moved) <= {first, second}
    else:
        assert (drop / "report.pdf").read_bytes() == second
