"""Hostile and odd input in the drop folder: each gets a clear outcome (ingested,
skipped with a reason, or failed with a reason) and the engine keeps going. Checked for
the start-up scan (``run_once``) and for files arriving while the daemon watches."""

from __future__ import annotations

import logging
import os
import shutil
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

ELF = Path(shutil.which("true") or "/bin/true").read_bytes()
LIMIT = 300_000
WEIRD = 'a<b>:c|d?e*"f\\g\tnew\nline.pdf'
NON_UTF8 = os.fsdecode(b"caf\xe9 latin1.pdf")
DEEP = "/".join(f"level{i}" for i in range(60))


def populate(drop: Path, outside: Path) -> dict[str, bytes]:
    """Create every odd case; returns the files expected to be delivered (ref -> bytes)."""
    delivered: dict[str, bytes] = {}

    def put(rel: str, data: bytes, expect: bool = True) -> None:
        p = Path(os.path.join(str(drop), rel))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        if expect:
            delivered[rel] = data

    put("empty.pdf", b"", expect=False)
    for name in (
        "scan.pdf.part",
        "dl.crdownload",
        "x.tmp",
        "~$report.docx",
        ".~lock.a.odt#",
        ".hidden.pdf",
        "Thumbs.db",
        ".DS_Store",
        "desktop.ini",
        "@eaDir/a.pdf",
        "__MACOSX/b.pdf",
        "Acme/.cache/c.pdf",
    ):
        put(name, b"ignored", expect=False)
    os.mkfifo(drop / "pipe.pdf")
    (outside / "secret.pdf").write_bytes(b"outside the drop folder")
    (drop / "escape.pdf").symlink_to(outside / "secret.pdf")
    (drop / "escape-dir").symlink_to(outside)
    put("target.pdf", b"the link's target")
    (drop / "link-inside.pdf").symlink_to(drop / "target.pdf")
    put("日本語 ñ résumé.pdf", b"unicode")
    put(NON_UTF8, b"latin-1 name")
    put(WEIRD, b"weird characters")
    put(f"{DEEP}/deep.pdf", b"deep")
    put("big.bin", b"B" * (LIMIT + 1), expect=False)
    put("tool.exe", ELF, expect=False)
    return delivered


def check_outcome(
    tmp_path: Path, drop: Path, outside: Path, expected: dict[str, bytes], settings: Any
) -> None:
    store = Store(tmp_path / "store.db")
    rows = {r["source_ref"]: r for r in store.rows()}
    from plugins.filesystem.names import encode_ref

    assert set(rows) == {encode_ref(k) for k in expected}
    for rel, data in expected.items():
        row = rows[encode_ref(rel)]
        assert row["sha256"] == sha(data), rel
    # the non-UTF-8 name: exact bytes in the reference, a readable name for IT Glue
    assert rows["raw:caf%E9 latin1.pdf"]["file_name"] == "caf\ufffd latin1.pdf"
    assert rows[WEIRD]["file_name"] == 'a<b>:c|d?e*"f\\g_new_line.pdf'
    done = dated_dir(drop / "processed")
    assert (done / NON_UTF8).read_bytes() == b"latin-1 name"
    assert (done / WEIRD).exists()
    assert (done / DEEP / "deep.pdf").exists()
    # failed with reasons, beside the file in failed/
    failed = drop / "failed"
    assert (failed / "big.bin").stat().st_size == LIMIT + 1
    assert "too large" in (failed / "big.bin.error.txt").read_text()
    assert (failed / "tool.exe").read_bytes() == ELF
    note = (failed / "tool.exe.error.txt").read_text()
    assert "executable" in note and "Move the file back into the drop folder" in note
    states = {r["source_ref"]: (r["state"], r["reason"]) for r in ledger_rows(settings)}
    assert states["big.bin"][0] == "failed" and "too large" in states["big.bin"][1]
    assert states["tool.exe"][0] == "failed"
    # skipped or ignored: left exactly where they were, never in the ledger
    for name in (
        "empty.pdf",
        "scan.pdf.part",
        "~$report.docx",
        ".hidden.pdf",
        "Thumbs.db",
        "@eaDir/a.pdf",
        "__MACOSX/b.pdf",
        "Acme/.cache/c.pdf",
    ):
        assert (drop / name).exists(), name
        assert name not in states
    assert (drop / "pipe.pdf").is_fifo()
    assert (drop / "escape.pdf").is_symlink() and (drop / "link-inside.pdf").is_symlink()
    assert (outside / "secret.pdf").read_bytes() == b"outside the drop folder"
    assert "escape.pdf" not in states and "link-inside.pdf" not in states
    assert not any("secret" in r for r in states)


def test_odd_input_in_the_start_up_scan(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="itglue_ingest")
    drop, outside = tmp_path / "drop", tmp_path / "outside"
    drop.mkdir()
    outside.mkdir()
    expected = populate(drop, outside)
    settings = settings_for(
        tmp_path,
        drop,
        transforms=("mime", "orgid"),
        stability_delay=0.2,
        pipeline_opts={"max_file_size": LIMIT},
    )
    engine = make_engine(settings)
    try:
        summary = engine.run_once()
    finally:
        engine.close()
    assert (summary.delivered, summary.failed) == (len(expected), 2)
    check_outcome(tmp_path, drop, outside, expected, settings)
    assert "empty file" in caplog.text and "symbolic link" in caplog.text


@pytest.mark.parametrize("observer", ["native", "polling"])
def test_odd_input_arriving_while_watched(tmp_path: Path, observer: str) -> None:
    drop, outside = tmp_path / "drop", tmp_path / "outside"
    drop.mkdir()
    outside.mkdir()
    settings = settings_for(
        tmp_path,
        drop,
        transforms=("mime", "orgid"),
        stability_delay=0.3,
        observer=observer,
        poll_interval=0.1,
        pipeline_opts={"max_file_size": LIMIT},
    )
    store = Store(tmp_path / "store.db")
    with running(make_engine(settings)) as engine:
        wait_for(lambda: observer_started(engine), message="the observer")
        expected = populate(drop, outside)
        wait_for(lambda: len(store.rows()) == len(expected), timeout=30, message="deliveries")
        wait_for(
            lambda: (
                (drop / "failed" / "tool.exe.error.txt").exists()
                and (drop / "failed" / "big.bin.error.txt").exists()
            ),
            message="failures",
        )
        wait_for(lambda: not (drop / "target.pdf").exists(), message="moves")
    check_outcome(tmp_path, drop, outside, expected, settings)


def test_links_inside_the_folder_are_taken_when_enabled(tmp_path: Path) -> None:
    drop, outside = tmp_path / "drop", tmp_path / "outside"
    drop.mkdir()
    outside.mkdir()
    (outside / "secret.pdf").write_bytes(b"secret")
    (drop / "Acme").mkdir()
    (drop / "Acme" / "real.pdf").write_bytes(b"real")
    (drop / "link.pdf").symlink_to(drop / "Acme" / "real.pdf")
    (drop / "escape.pdf").symlink_to(outside / "secret.pdf")
    (drop / "relative-escape.pdf").symlink_to(Path("..") / "outside" / "secret.pdf")
    settings = settings_for(tmp_path, drop, follow_symlinks=True, stability_delay=0.1, after="keep")
    engine = make_engine(settings)
    try:
        engine.run_once()
    finally:
        engine.close()
    # the link is read (its content is the target's: the engine's dedupe sees a duplicate)
    states = sorted((r["source_ref"], r["state"]) for r in ledger_rows(settings))
    assert [ref for ref, _ in states] == ["Acme/real.pdf", "link.pdf"]
    assert sorted(state for _, state in states) == ["done", "duplicate"]
    assert [r["sha256"] for r in Store(tmp_path / "store.db").rows()] == [sha(b"real")]
    assert (outside / "secret.pdf").read_bytes() == b"secret"
    assert (drop / "escape.pdf").is_symlink() and (drop / "relative-escape.pdf").is_symlink()


def test_a_followed_link_is_moved_as_a_link(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    (drop / "store").mkdir(parents=True)
    (drop / "store" / "real.pdf").write_bytes(b"real")
    (drop / "link.pdf").symlink_to(Path("store") / "real.pdf")
    settings = settings_for(
        tmp_path, drop, follow_symlinks=True, stability_delay=0.1, exclude=["store/*"]
    )
    engine = make_engine(settings)
    try:
        engine.run_once()
    finally:
        engine.close()
    assert [r["source_ref"] for r in Store(tmp_path / "store.db").rows()] == ["link.pdf"]
    assert (dated_dir(drop / "processed") / "link.pdf").is_symlink()
    assert (drop / "store" / "real.pdf").read_bytes() == b"real"  # the target stays


def test_zero_byte_file_is_taken_once_it_has_content(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "placeholder.pdf").write_bytes(b"")
    settings = settings_for(tmp_path, drop, stability_delay=0.1)
    for _ in range(2):
        engine = make_engine(settings)
        try:
            engine.run_once()
        finally:
            engine.close()
        assert (drop / "placeholder.pdf").exists()
        assert Store(tmp_path / "store.db").rows() == []
    (drop / "placeholder.pdf").write_bytes(b"now with content")
    engine = make_engine(settings)
    try:
        engine.run_once()
    finally:
        engine.close()
    assert [r["sha256"] for r in Store(tmp_path / "store.db").rows()] == [sha(b"now with content")]
    assert files_under(drop / "processed")


def test_include_exclude_and_non_recursive(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    for rel in ("a.pdf", "b.PDF", "c.txt", "draft-d.pdf", "Archive/e.pdf", "Acme/f.pdf"):
        (drop / rel).parent.mkdir(parents=True, exist_ok=True)
        (drop / rel).write_bytes(rel.encode())
    settings = settings_for(
        tmp_path,
        drop,
        stability_delay=0.1,
        include=["*.pdf"],
        exclude=["draft-*", "Archive/*"],
        after="keep",
    )
    once_engine = make_engine(settings)
    try:
        once_engine.run_once()
    finally:
        once_engine.close()
    assert sorted(Store(tmp_path / "store.db").refs()) == ["Acme/f.pdf", "a.pdf", "b.PDF"]

    flat = settings_for(tmp_path / "flat", drop, stability_delay=0.1, recursive=False, after="keep")
    flat_engine = make_engine(flat)
    try:
        flat_engine.run_once()
    finally:
        flat_engine.close()
    assert sorted(Store(tmp_path / "flat" / "store.db").refs()) == [
        "a.pdf",
        "b.PDF",
        "c.txt",
        "draft-d.pdf",
    ]
