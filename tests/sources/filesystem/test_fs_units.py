"""The drop-folder source's pure logic, in-process: names, filters, stability, moves,
the streaming walk and the safe reader (all on a real filesystem, no engine)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from plugins.filesystem.claims import Claims, new_collector_id, valid_collector_id
from plugins.filesystem.names import (
    PathFilter,
    decode_ref,
    display_name,
    encode_ref,
    organization_of,
)
from plugins.filesystem.options import FilesystemOptions
from plugins.filesystem.placement import dated_dir, error_text, move_no_clobber, write_exclusive
from plugins.filesystem.reader import ChangedWhileReading, NotARegularFile, open_checked
from plugins.filesystem.stability import StabilityTracker, signature
from plugins.filesystem.versions import matches, parse, version_of
from plugins.filesystem.walk import walk

# ---------------------------------------------------------------- references and names


@pytest.mark.parametrize(
    "rel",
    [
        "invoice.pdf",
        "Acme Corp/2024/scan 001.pdf",
        "Ünïcødé/日本語.pdf",
        os.fsdecode(b"latin1/caf\xe9.pdf"),
        os.fsdecode(b"\xff\xfe.bin"),
        "raw:looks-like-a-prefix.pdf",
        "100% sure.pdf",
    ],
)
def test_refs_round_trip_and_are_storable_text(rel: str) -> None:
    ref = encode_ref(rel)
    assert decode_ref(ref) == rel
    ref.encode("utf-8")  # storable as SQLite text: no lone surrogates


def test_valid_utf8_refs_stay_readable_and_raw_refs_are_distinct() -> None:
    assert encode_ref("Acme Corp/invoice.pdf") == "Acme Corp/invoice.pdf"
    raw = encode_ref(os.fsdecode(b"caf\xe9.pdf"))
    assert raw == "raw:caf%E9.pdf"
    # a real file literally named like an escaped reference cannot collide with it
    assert encode_ref("raw:caf%E9.pdf") != raw


def test_display_name_is_printable() -> None:
    assert display_name(os.fsdecode(b"caf\xe9.pdf")) == "caf\ufffd.pdf"
    assert display_name("a\nb\tc\x7f.pdf") == "a_b_c_.pdf"
    assert display_name("e\u0301.pdf") == "\u00e9.pdf"  # NFC
    assert display_name("   ") == "unnamed"


def test_organization_from_first_subfolder() -> None:
    assert organization_of("Acme Corp/invoice.pdf") == "Acme Corp"
    assert organization_of("Acme Corp/2024/03/invoice.pdf") == "Acme Corp"
    assert organization_of("invoice.pdf") is None


@pytest.mark.parametrize(
    "rel",
    [
        "scan.pdf.part",
        "setup.exe.crdownload",
        "x.tmp",
        "~$report.docx",
        ".~lock.report.odt#",
        ".hidden.pdf",
        "Thumbs.db",
        "THUMBS.DB",
        ".DS_Store",
        "desktop.ini",
        "@eaDir/scan.pdf",
        "__MACOSX/scan.pdf",
        "Acme/.git/config",
        "Acme/@eaDir/x.pdf@SynoEAStream",
    ],
)
def test_temporary_and_metadata_names_are_ignored(rel: str) -> None:
    assert not PathFilter().accepts_file(rel)


def test_include_and_exclude_patterns() -> None:
    f = PathFilter(include=["*.pdf", "*.docx"], exclude=["*draft*", "Archive/*"])
    assert f.accepts_file("a.pdf")
    assert f.accepts_file("A.PDF")  # case-insensitive
    assert f.accepts_file("Acme/b.docx")
    assert not f.accepts_file("c.txt")
    assert not f.accepts_file("my draft.pdf")
    assert not f.accepts_file("Archive/2020/old.pdf")
    assert f.skip_dir("Archive")
    assert not f.skip_dir("Acme")
    assert PathFilter(exclude=["Private"]).skip_dir("Acme/Private")


def test_options_defaults_and_validation(tmp_path: Path) -> None:
    o = FilesystemOptions.model_validate({"path": str(tmp_path)})
    assert o.processed == tmp_path / "processed"
    assert o.failed == tmp_path / "failed"
    assert (o.after, o.on_failure, o.observer, o.recursive) == ("move", "move", "native", True)
    assert (o.stability_delay, o.rescan_interval) == (2.0, 300.0)
    keep = FilesystemOptions.model_validate({"path": str(tmp_path), "after": "keep"})
    assert keep.on_failure == "keep"
    rel = FilesystemOptions.model_validate({"path": str(tmp_path), "processed_dir": "done"})
    assert rel.processed == tmp_path / "done"
    with pytest.raises(ValidationError, match="must not be the drop folder"):
        FilesystemOptions.model_validate({"path": str(tmp_path), "failed_dir": "."})
    with pytest.raises(ValidationError):
        FilesystemOptions.model_validate({"path": str(tmp_path), "after": "archive"})
    with pytest.raises(ValidationError):
        FilesystemOptions.model_validate({"path": str(tmp_path), "typo": 1})


# ---------------------------------------------------------------- stability


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_tracker_takes_a_file_only_after_it_stays_unchanged(tmp_path: Path) -> None:
    clock = Clock()
    t = StabilityTracker(2.0, clock)
    p = tmp_path / "a.pdf"
    p.write_bytes(b"x")

    def sig(path: str) -> tuple[int, int, int] | None:
        try:
            return signature(os.lstat(path))
        except OSError:
            return None

    t.touch(str(p), sig(str(p)))
    assert t.due(sig) == []
    clock.now += 1.9
    assert t.due(sig) == []
    # grows without an event (a polling observer may not have noticed yet)
    with p.open("ab") as f:
        f.write(b"more")
    os.utime(p, ns=(0, os.stat(p).st_mtime_ns + 1))
    clock.now += 0.2
    assert t.due(sig) == []  # changed: waits again
    clock.now += 1.0
    t.touch(str(p), sig(str(p)))  # an event restarts the wait
    clock.now += 1.5
    assert t.due(sig) == []
    clock.now += 0.6
    assert t.due(sig) == [(str(p), sig(str(p)))]
    assert len(t) == 0


def test_tracker_forgets_vanished_and_deleted_files(tmp_path: Path) -> None:
    clock = Clock()
    t = StabilityTracker(1.0, clock)
    t.touch(str(tmp_path / "gone.pdf"), (1, 1, 1))
    t.touch(str(tmp_path / "sub" / "x.pdf"), (1, 1, 2))
    t.touch(str(tmp_path / "sub" / "y" / "z.pdf"), (1, 1, 3))
    t.touch(str(tmp_path / "kept.pdf"), (1, 1, 4))
    t.forget_under(str(tmp_path / "sub"))
    assert len(t) == 2
    clock.now += 5
    assert t.next_due_in() == 0.0
    assert t.due(lambda p: None) == []  # vanished: dropped quietly
    assert len(t) == 0
    assert t.next_due_in() is None


def test_tracker_is_safe_across_threads(tmp_path: Path) -> None:
    t = StabilityTracker(0.0)
    paths = [str(tmp_path / f"{i}.pdf") for i in range(500)]

    def feed() -> None:
        for p in paths:
            t.touch(p, (1, 1, hash(p)))

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for th in threads:
        th.start()
    taken: set[str] = set()
    while any(th.is_alive() for th in threads) or len(t):
        taken.update(p for p, _ in t.due(lambda p: (1, 1, hash(p))))
    for th in threads:
        th.join()
    assert taken == set(paths)


# ---------------------------------------------------------------- moving aside


def test_move_never_overwrites_and_numbers_clashes(tmp_path: Path) -> None:
    dest = tmp_path / "processed"
    results = []
    for content in (b"one", b"two", b"three"):
        src = tmp_path / "invoice.pdf"
        src.write_bytes(content)
        results.append(move_no_clobber(str(src), dest, "invoice.pdf"))
    assert [p.name for p in results] == ["invoice.pdf", "invoice (1).pdf", "invoice (2).pdf"]
    assert [p.read_bytes() for p in results] == [b"one", b"two", b"three"]
    src = tmp_path / "README"
    src.write_bytes(b"r")
    move_no_clobber(str(src), dest, "README")
    src.write_bytes(b"r2")
    assert move_no_clobber(str(src), dest, "README").name == "README (1)"
    with pytest.raises(FileNotFoundError):
        move_no_clobber(str(tmp_path / "missing.pdf"), dest, "missing.pdf")


def test_move_keeps_non_utf8_names(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.pdf")
    src = os.path.join(str(tmp_path), name)
    Path(src).write_bytes(b"x")
    moved = move_no_clobber(src, tmp_path / "out", name)
    assert os.fsencode(moved.name) == b"caf\xe9.pdf"


def test_dated_dir_and_error_file(tmp_path: Path) -> None:
    when = time.mktime((2024, 3, 9, 12, 0, 0, 0, 0, -1))
    assert dated_dir(tmp_path, when) == tmp_path / "2024" / "03" / "09"
    text = error_text(
        source="scans",
        rel="Acme/x.exe",
        folder="/drop",
        reason="type not allowed",
        retry_hint="hint",
    )
    assert "Acme/x.exe" in text and "type not allowed" in text
    assert "Move the file back into the drop folder" in text
    first = write_exclusive(tmp_path / "x.pdf.error.txt", "a")
    second = write_exclusive(tmp_path / "x.pdf.error.txt", "b")
    assert (first.read_text(), second.read_text()) == ("a", "b")
    assert second.name == "x.pdf.error (1).txt"


# ---------------------------------------------------------------- walking


def test_walk_streams_prunes_and_never_follows_links(tmp_path: Path) -> None:
    root = tmp_path / "drop"
    (root / "a" / "b").mkdir(parents=True)
    (root / "processed" / "2024").mkdir(parents=True)
    (root / "top.pdf").write_bytes(b"1")
    (root / "a" / "b" / "deep.pdf").write_bytes(b"2")
    (root / "processed" / "2024" / "old.pdf").write_bytes(b"3")
    (root / "loop").symlink_to(root)  # a folder link: listed as a link, not entered
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.pdf").write_bytes(b"s")
    (root / "escape").symlink_to(outside)

    it = walk(str(root), recursive=True, prune=lambda p, rel: rel == "processed")
    assert iter(it) is it  # a generator: nothing is listed up front
    found = {f.rel for f in it}
    assert found == {"top.pdf", "a/b/deep.pdf", "loop", "escape"}
    flat = {f.rel for f in walk(str(root), recursive=False, prune=lambda p, r: False)}
    assert flat == {"top.pdf", "loop", "escape"}


def test_walk_handles_deep_trees(tmp_path: Path) -> None:
    root = tmp_path / "drop"
    deep = root
    for i in range(120):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "bottom.pdf").write_bytes(b"x")
    found = list(walk(str(root), recursive=True, prune=lambda p, r: False))
    assert len(found) == 1 and found[0].rel.endswith("/d119/bottom.pdf")


# ---------------------------------------------------------------- reading


def test_reader_reads_a_stable_file(tmp_path: Path) -> None:
    p = tmp_path / "a.pdf"
    p.write_bytes(b"x" * 3_000_000)
    with open_checked(str(p), signature(os.stat(p)), "a.pdf") as f:
        assert f.read() == b"x" * 3_000_000


def test_an_open_file_holds_a_small_buffer(tmp_path: Path) -> None:
    """Every file taken gets its own buffer (counted by ``sys.getsizeof``), barely used
    by the spool's big reads: it must stay small, however big the file (a 1 MiB buffer
    is an mmap and munmap of its own for every file)."""
    p = tmp_path / "a.pdf"
    p.write_bytes(b"x" * 3_000_000)
    with open_checked(str(p), signature(os.stat(p)), "a.pdf") as f:
        assert sys.getsizeof(f) <= 128 * 1024
        assert f.read(1024 * 1024) == b"x" * (1024 * 1024)  # big reads go past the buffer
        assert f.read() == b"x" * (3_000_000 - 1024 * 1024)


def test_reader_notices_a_file_that_changes_while_read(tmp_path: Path) -> None:
    p = tmp_path / "a.pdf"
    p.write_bytes(b"x" * 100)
    f = open_checked(str(p), signature(os.stat(p)), "a.pdf")
    with f:
        f.read(10)
        with p.open("ab") as w:
            w.write(b"appended")
        with pytest.raises(ChangedWhileReading):
            f.read()
    with pytest.raises(ChangedWhileReading):  # changed between "stable" and open
        open_checked(str(p), (100, 1, 1), "a.pdf")


def test_reader_refuses_fifos_without_blocking_and_links(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFile, match="not a regular file"):
        open_checked(str(fifo), signature(os.lstat(fifo)), "pipe.pdf")  # returns at once
    target = tmp_path / "t.pdf"
    target.write_bytes(b"t")
    link = tmp_path / "l.pdf"
    link.symlink_to(target)
    with pytest.raises(NotARegularFile, match="symbolic link"):
        open_checked(str(link), signature(os.stat(link)), "l.pdf")
    with open_checked(str(link), signature(os.stat(link)), "l.pdf", follow_symlinks=True) as f:
        assert f.read() == b"t"
    with pytest.raises(FileNotFoundError):
        open_checked(str(tmp_path / "gone.pdf"), (1, 1, 1), "gone.pdf")


def test_move_finishes_a_move_interrupted_between_link_and_unlink(tmp_path: Path) -> None:
    src = tmp_path / "a.pdf"
    src.write_bytes(b"x")
    dest = tmp_path / "processed"
    dest.mkdir()
    os.link(src, dest / "a.pdf")  # the state a crash after the link leaves behind
    assert move_no_clobber(str(src), dest, "a.pdf") == dest / "a.pdf"
    assert not src.exists()
    assert sorted(p.name for p in dest.iterdir()) == ["a.pdf"]


def test_walk_holds_no_listing_in_memory(tmp_path: Path) -> None:
    import tracemalloc

    root = tmp_path / "drop"
    root.mkdir()
    for i in range(5_000):
        (root / f"scan-{i:06d}-with-a-longish-name.pdf").touch()
    tracemalloc.start()
    try:
        n = 0
        for _ in walk(str(root), recursive=True, prune=lambda p, r: False):
            n += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 5_000
    # os.walk/listdir would hold all 5,000 names (~0.5 MB of str objects) at once
    assert peak < 128 * 1024, peak


# ---------------------------------------------------------------- versions and claims


def test_version_changes_with_what_cp_p_and_rsync_t_cannot_carry_over(tmp_path: Path) -> None:
    p = tmp_path / "a.pdf"
    p.write_bytes(b"A" * 100)
    before = os.stat(p)
    v1 = version_of(before)
    p.write_bytes(b"B" * 100)  # same size, the mtime copied back: only the ctime differs
    os.utime(p, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(p)
    assert after.st_mtime_ns == before.st_mtime_ns and version_of(after) != v1
    assert not matches(v1, after) and matches(version_of(after), after)
    # a file moved since (claimed, put in failed/): size and mtime (the hash decides)
    assert matches(v1, after, renamed=True)
    # a version of an earlier release: size and mtime
    assert matches(f"{before.st_size}-{before.st_mtime_ns}", after)
    assert parse("not-a-version") is None and parse(v1 + "#2") == parse(v1)


def test_one_of_two_collectors_wins_a_claim(tmp_path: Path) -> None:
    (tmp_path / "Acme").mkdir()
    p = tmp_path / "Acme" / "a.pdf"
    p.write_bytes(b"x")
    v = version_of(os.stat(p))
    a, b = Claims(str(tmp_path), "host-a"), Claims(str(tmp_path), "host-b")
    won = a.claim(str(p), "Acme/a.pdf", v)
    assert won == a.path_of("Acme/a.pdf", v)
    assert b.claim(str(p), "Acme/a.pdf", v) is None  # ENOENT: taken by the other one
    assert a.owned(won) == ("Acme/a.pdf", v) and b.owned(won) is None
    assert [f.path for f in a.files()] == [won] and not list(b.files())
    os.unlink(won)
    a.tidy(won)
    assert os.listdir(a.base) == ["Acme"]  # the sub-folder is reused by the next claims
    assert a.tidy_empty() == 1
    assert os.listdir(a.base) == []  # at a quiet moment it goes, the collector's stays
    with pytest.raises(ValueError):
        Claims(str(tmp_path), "../escape")
    assert valid_collector_id(new_collector_id())
