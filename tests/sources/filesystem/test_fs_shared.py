"""One drop folder, several collectors (two hosts on one SMB/NFS share, each with its own
state): every file is claimed by exactly one of them, delivered once, and moved once."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.runner import Engine
from pipeline.settings import Settings
from plugins.filesystem import release_claims_command
from plugins.filesystem.claims import CLAIM_DIR, Claims
from plugins.filesystem.placement import dated_dir
from tests.sources.filesystem.fs_helpers import (
    Store,
    files_under,
    ledger_rows,
    make_engine,
    running,
    settings_for,
    sha,
)
from tests.waiting import wait_for

N = 200


def _left(drop: Path) -> list[Path]:
    return [p for p in files_under(drop) if "processed" not in p.relative_to(drop).parts]


@pytest.mark.parametrize("observer", ["native", "polling"])
def test_two_collectors_on_one_drop_folder_deliver_every_file_once(
    tmp_path: Path, observer: str
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    contents: dict[str, bytes] = {}

    def put(i: int) -> None:
        sub = ("Acme", "Globex")[i % 2]
        (drop / sub).mkdir(exist_ok=True)
        data = os.urandom(100) + str(i).encode()
        (drop / sub / f"scan-{i:03d}.pdf").write_bytes(data)
        contents[f"{sub}/scan-{i:03d}.pdf"] = data

    for i in range(N // 2):  # a backlog both find at start-up
        put(i)
    names = ("collector-a", "collector-b")
    settings = [
        settings_for(
            tmp_path / name,
            drop,
            observer=observer,
            poll_interval=0.1,
            stability_delay=0.3,
            organization_from="subfolder",
        )
        for name in names
    ]
    stores = [Store(tmp_path / name / "store.db") for name in names]
    with running(make_engine(settings[0])), running(make_engine(settings[1])):
        for i in range(N // 2, N):  # and files arriving while both watch
            put(i)
        wait_for(lambda: not _left(drop), timeout=90, message="every file taken and moved")
        wait_for(
            lambda: all(
                r["state"] in ("done", "duplicate") for s in settings for r in ledger_rows(s)
            ),
            message="every record settled",
        )
    rows = [r for store in stores for r in store.rows()]
    counts = Counter(r["source_ref"] for r in rows)
    assert set(counts) == set(contents), "a file was lost"
    assert max(counts.values()) == 1, sorted(k for k, v in counts.items() if v > 1)
    for r in rows:
        assert r["sha256"] == sha(contents[r["source_ref"]])
        assert r["organization"] == r["source_ref"].split("/")[0]
        assert r["relative_path"] == r["source_ref"]
    assert all(store.rows() for store in stores), "one collector took everything"
    moved = files_under(drop / "processed")
    assert len(moved) == N and not [p for p in moved if " (1)" in p.name]
    assert {p.relative_to(dated_dir(drop / "processed")).as_posix() for p in moved} == set(contents)


def _claiming_engine(tmp_path: Path) -> tuple[Path, Settings, Engine, Claims]:
    """A drop folder with ``Acme/``, the settings and engine of a source taking from it
    (organization from the sub-folder), and the engine's claim folder, made now."""
    drop = tmp_path / "drop"
    (drop / "Acme").mkdir(parents=True)
    settings = settings_for(tmp_path, drop, stability_delay=0.1, organization_from="subfolder")
    engine = make_engine(settings)
    claims = engine.sources["drop"]._claims_now()  # type: ignore[attr-defined]
    assert isinstance(claims, Claims)
    return drop, settings, engine, claims


def test_a_collector_resumes_its_claims_and_leaves_the_others(tmp_path: Path) -> None:
    """Files claimed before a crash are taken from the claim folder after the restart;
    another collector's claims are not touched until an admin releases them."""
    drop, settings, engine, claims = _claiming_engine(tmp_path)
    try:
        (drop / "Acme" / "mine.pdf").write_bytes(b"claimed, then the process died")
        st = os.stat(drop / "Acme" / "mine.pdf")
        from plugins.filesystem.versions import version_of

        assert claims.claim(str(drop / "Acme" / "mine.pdf"), "Acme/mine.pdf", version_of(st))
        gone = drop / CLAIM_DIR / "host-dead0001" / "1-2-3-4" / "Acme" / "theirs.pdf"
        gone.parent.mkdir(parents=True)
        gone.write_bytes(b"claimed by a collector that is gone")
        # and one it claimed in the layout of this release
        gone_new = drop / CLAIM_DIR / "host-dead0001" / "Globex" / "5-6-7-8~theirs too.pdf"
        gone_new.parent.mkdir(parents=True)
        gone_new.write_bytes(b"also claimed by it")
        assert engine.run_once().delivered == 1
    finally:
        engine.close()
    store = Store(tmp_path / "store.db")
    assert [(r["source_ref"], r["organization"]) for r in store.rows()] == [
        ("Acme/mine.pdf", "Acme")
    ]
    assert (dated_dir(drop / "processed") / "Acme" / "mine.pdf").exists()
    assert gone.exists() and gone_new.exists()
    assert not list((drop / CLAIM_DIR / claims.collector).iterdir())  # tidied

    # the admin's way out for a collector that is gone for good
    listed = CliRunner().invoke(release_claims_command, [str(drop)])
    assert listed.exit_code == 0 and "host-dead0001\t2 file(s)" in listed.output
    released = CliRunner().invoke(release_claims_command, [str(drop), "host-dead0001"])
    assert released.exit_code == 0 and "2 file(s)" in released.output
    assert (drop / "Acme" / "theirs.pdf").read_bytes() == b"claimed by a collector that is gone"
    assert (drop / "Globex" / "theirs too.pdf").read_bytes() == b"also claimed by it"
    assert not list((drop / CLAIM_DIR / "host-dead0001").iterdir())
    engine = make_engine(settings)
    try:
        assert engine.run_once().delivered == 2
    finally:
        engine.close()
    assert sorted(store.refs()) == ["Acme/mine.pdf", "Acme/theirs.pdf", "Globex/theirs too.pdf"]
    assert not _left(drop)


def test_claims_of_the_earlier_layout_are_resumed_after_an_upgrade(tmp_path: Path) -> None:
    """A release before this one claimed into ``<collector>/<version>/<rel>``: after the
    upgrade those files are delivered with the version they were claimed with, moved to
    processed/, and their folders go; new files take the new layout beside them."""
    from plugins.filesystem.versions import version_of

    drop, _settings, engine, claims = _claiming_engine(tmp_path)
    try:
        old = drop / "Acme" / "old.pdf"
        old.write_bytes(b"claimed by the release before")
        version = version_of(os.stat(old))
        claimed = Path(claims.legacy_path_of("Acme/old.pdf", version))
        claimed.parent.mkdir(parents=True)
        old.rename(claimed)  # what that release's claim did (keeps size and mtime)
        (drop / "Acme" / "new.pdf").write_bytes(b"arrives after the upgrade")
        assert engine.run_once().delivered == 2
    finally:
        engine.close()
    store = Store(tmp_path / "store.db")
    rows = {r["source_ref"]: r for r in store.rows()}
    assert sorted(rows) == ["Acme/new.pdf", "Acme/old.pdf"]
    assert rows["Acme/old.pdf"]["version"] == version
    processed = dated_dir(drop / "processed") / "Acme"
    assert (processed / "old.pdf").read_bytes() == b"claimed by the release before"
    assert (processed / "new.pdf").exists()
    assert not list((drop / CLAIM_DIR / claims.collector).iterdir())
