"""The claim folder's layout: one rename per claim into reused sub-folders, paths that
read one way only, claims of the earlier layout still found, and one winner of a race."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from plugins.filesystem.claims import CLAIM_DIR, Claims, release_claims
from plugins.filesystem.placement import DatedFolder, dated_dir, move_aside
from plugins.filesystem.versions import version_of

V = "512-1733000000000000000-1234-1733000000000000001"


def _drop(root: Path, rel: str, data: bytes = b"x") -> tuple[str, str]:
    """A file at ``rel`` in the drop folder ``root``: its path and version."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path), version_of(os.stat(path))


def test_a_claim_is_one_name_carrying_its_version(tmp_path: Path) -> None:
    claims = Claims(str(tmp_path), "host-1a2b")
    path, v = _drop(tmp_path, "Acme Corp/invoice.pdf")
    won = claims.claim(path, "Acme Corp/invoice.pdf", v)
    assert won == os.path.join(tmp_path, CLAIM_DIR, "host-1a2b", "Acme Corp", f"{v}~invoice.pdf")
    assert claims.owned(won) == ("Acme Corp/invoice.pdf", v)
    # a second version of the same name while the first is in flight: beside it
    path, v2 = _drop(tmp_path, "Acme Corp/invoice.pdf", b"newer")
    assert v2 != v
    second = claims.claim(path, "Acme Corp/invoice.pdf", v2)
    assert second is not None and claims.owned(second) == ("Acme Corp/invoice.pdf", v2)
    assert sorted(f.path for f in claims.files()) == sorted([won, second])
    # at the top of the drop folder: straight in the collector's folder
    path, v3 = _drop(tmp_path, "top.pdf")
    assert claims.claim(path, "top.pdf", v3) == os.path.join(claims.base, f"{v3}~top.pdf")


@pytest.mark.parametrize(
    "rel",
    [
        "2024-06/scan.pdf",  # a sub-folder named like a two-field (legacy) version
        "2024-06/2024-07/scan.pdf",
        "Acme/a~b~c.pdf",  # "~" in the name
        "a~b/x.pdf",  # and in a sub-folder
        f"Acme/{V}~x.pdf",  # a name that looks like a claimed one
        "Acme/2024-06-01-12 scan.pdf",  # a name starting with digits and dashes
        "1-2-3-4",  # a name that is a version
        "1-2-3-4/x.pdf",  # a sub-folder named like a version: the earlier layout
        "Acme/1-2-3-4/x.pdf",  # ... below the top: the new one
        "Acme/" + "n" * 240 + ".pdf",  # too long with its version: the earlier layout
        "Acme/\u00e9t\u00e9 ~ 2024.pdf",
        os.fsdecode(b"Acme/caf\xe9.pdf"),  # not UTF-8
    ],
)
def test_every_claimed_path_reads_back_as_its_rel_and_version(tmp_path: Path, rel: str) -> None:
    claims = Claims(str(tmp_path), "host-a")
    path, v = _drop(tmp_path, rel)
    claimed = claims.claim(path, rel, v)
    assert claimed is not None and os.path.exists(claimed) and not os.path.lexists(path)
    assert claimed == claims.path_of(rel, v)
    assert claims.owned(claimed) == (rel, v)
    assert [claims.owned(f.path) for f in claims.files()] == [(rel, v)]
    name = rel.rpartition("/")[2]
    long_name = len(os.fsencode(f"{v}~{name}")) > 255
    legacy = long_name or rel.startswith("1-2-3-4/")
    assert (claimed == claims.legacy_path_of(rel, v)) is legacy


def test_claims_of_the_earlier_layout_are_read_as_they_were_made(tmp_path: Path) -> None:
    """``<collector>/<version>/<rel>``, whatever the name looks like (a release before
    this one claimed so; its claims are resumed after an upgrade)."""
    claims = Claims(str(tmp_path), "host-a")
    for rel in ("Acme/a.pdf", "top.pdf", f"Acme/{V}~x.pdf", f"{V}~y.pdf", "2024-06/z.pdf"):
        path = claims.legacy_path_of(rel, "1-2-3-4")
        assert path == os.path.join(claims.base, "1-2-3-4", *rel.split("/"))
        assert claims.owned(path) == (rel, "1-2-3-4")
    # not claims: a stray file, a two-field version folder, another collector's
    assert claims.owned(os.path.join(claims.base, "notes.txt")) is None
    assert claims.owned(os.path.join(claims.base, "1-2", "a.pdf")) is None
    assert claims.owned(os.path.join(claims.base, "12-34~a.pdf")) is None
    other = Claims(str(tmp_path), "host-b")
    assert claims.owned(other.path_of("Acme/a.pdf", V)) is None
    assert claims.owned(str(tmp_path / "Acme" / f"{V}~a.pdf")) is None


def test_a_claim_remakes_its_sub_folder_and_an_old_one_is_tidied_per_file(
    tmp_path: Path,
) -> None:
    claims = Claims(str(tmp_path), "host-a")
    path, v = _drop(tmp_path, "Acme/deep/a.pdf")
    first = claims.claim(path, "Acme/deep/a.pdf", v)
    assert first is not None
    os.unlink(first)
    assert claims.tidy_empty() == 2 and os.listdir(claims.base) == []
    path, v = _drop(tmp_path, "Acme/deep/b.pdf")
    assert claims.claim(path, "Acme/deep/b.pdf", v) == claims.path_of("Acme/deep/b.pdf", v)
    # an earlier-layout claim: its version folder goes with its file
    old = Path(claims.legacy_path_of("Globex/c.pdf", V))
    old.parent.mkdir(parents=True)
    old.write_bytes(b"c")
    old.unlink()
    claims.tidy(str(old))
    assert sorted(os.listdir(claims.base)) == ["Acme"]
    # a gone source: None, and no folder made for it
    assert claims.claim(str(tmp_path / "Initech" / "gone.pdf"), "Initech/gone.pdf", V) is None
    assert sorted(os.listdir(claims.base)) == ["Acme"]


def test_tidy_empty_keeps_what_holds_files(tmp_path: Path) -> None:
    claims = Claims(str(tmp_path), "host-a")
    for folder in ("a/b/c", "a/d", "e"):
        os.makedirs(os.path.join(claims.base, folder))
    Path(claims.base, "a", "d", f"{V}~x.pdf").write_bytes(b"x")
    assert claims.tidy_empty() == 3  # a/b/c, a/b, e
    assert sorted(os.listdir(claims.base)) == ["a"]
    assert os.listdir(os.path.join(claims.base, "a")) == ["d"]
    assert Claims(str(tmp_path), "host-b").tidy_empty() == 0  # no claim folder yet


def _race(rivals: tuple[Claims, Claims], path: str, rel: str, v: str) -> list[str | None]:
    """Both claim ``path`` at once (a barrier lines them up); what each got."""
    results: list[str | None] = [None, None]
    start = threading.Barrier(2)

    def take(k: int) -> None:
        start.wait()
        results[k] = rivals[k].claim(path, rel, v)

    threads = [threading.Thread(target=take, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize(
    "rel",
    ["Acme/a.pdf", "top.pdf", "Acme/" + "n" * 240 + ".pdf", "1-2-3-4/a.pdf"],
    ids=["sub-folder", "top", "long-name", "version-named-folder"],
)
def test_one_of_two_collectors_racing_for_a_file_wins(tmp_path: Path, rel: str) -> None:
    """Both rename at once, each into its own (missing, then reused) folders: exactly
    one gets the file, the other None, and no file is lost or doubled."""
    a, b = Claims(str(tmp_path), "host-a"), Claims(str(tmp_path), "host-b")
    for i in range(30):
        path, v = _drop(tmp_path, rel, b"%d" % i)
        results = _race((a, b), path, rel, v)
        won = [r for r in results if r is not None]
        assert len(won) == 1, results
        assert Path(won[0]).read_bytes() == b"%d" % i and not os.path.lexists(path)
        winner = a if results[0] else b
        assert winner.owned(won[0]) == (rel, v)
        os.unlink(won[0])
        if i % 3 == 0:  # the folders go now and then: made again by the next claim
            winner.tidy(won[0])
            winner.tidy_empty()


def test_release_claims_hands_back_both_layouts_under_their_names(tmp_path: Path) -> None:
    dead = Claims(str(tmp_path), "host-dead")
    path, v = _drop(tmp_path, "Acme/new.pdf", b"new layout")
    assert dead.claim(path, "Acme/new.pdf", v) is not None
    old = Path(dead.legacy_path_of("Globex/old.pdf", V))
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old layout")
    (tmp_path / "Acme" / "new.pdf").write_bytes(b"arrived meanwhile")
    moved = release_claims(tmp_path, "host-dead")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in moved) == [
        "Acme/new (1).pdf",
        "Globex/old.pdf",
    ]
    assert (tmp_path / "Acme" / "new (1).pdf").read_bytes() == b"new layout"
    assert (tmp_path / "Globex" / "old.pdf").read_bytes() == b"old layout"
    assert os.listdir(dead.base) == []


def test_the_dated_folder_and_a_move_into_a_missing_folder(tmp_path: Path) -> None:
    today = DatedFolder(tmp_path / "processed")
    assert today.today() == str(dated_dir(tmp_path / "processed")) == today.today()
    src = tmp_path / "a.pdf"
    src.write_bytes(b"a")
    target = os.path.join(today.today(), "Acme", "Sub")
    assert move_aside(str(src), target, "a.pdf") == os.path.join(target, "a.pdf")
    src.write_bytes(b"b")
    st = os.lstat(src)
    assert move_aside(str(src), target, "a.pdf", st) == os.path.join(target, "a (1).pdf")
    with pytest.raises(FileNotFoundError):
        move_aside(str(src), os.path.join(target, "missing"), "a.pdf")
    assert not os.path.exists(os.path.join(target, "missing"))
