"""``itglue-ingest export``: an organization's documents and attachments against the
emulator: the tree and its manifest, re-runs that fetch only what changed, and a run
killed mid-download (SIGKILL, in a child process) that resumes to a correct tree."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from core_client import ITGlueClient
from core_client.cache import MetadataCache
from pipeline.commands.export import export
from tests.child_process import child_env, python_module
from tests.conftest import DatabaseFactory
from tests.waiting import wait_for

DOWNLOAD = "/_downloads/:id/:token"
SECTIONS = "/documents/:doc_id/relationships/sections"
KEY_ENV = "ITGLUE_EXPORT_TEST_KEY"


def seen(emu: Any, route: str) -> int:
    """GET requests the emulator answered on ``route``."""
    return sum(
        int(r["count"])
        for r in emu.state()["requests"]
        if r["route"] == route and r["method"] == "GET"
    )


@pytest.fixture
def config(itglue_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(KEY_ENV, itglue_emulator.api_key)
    path = tmp_path / "export.toml"
    path.write_text(
        "[itglue]\n"
        f'base_url = "{itglue_emulator.base_url}"\n'
        f'ca_bundle = "{itglue_emulator.ca_file}"\n'
        f'api_key_env = "{KEY_ENV}"\n'
        "[state]\n"
        f'dir = "{tmp_path / "state"}"\n'
    )
    return path


@pytest.fixture
def config_on_state(config: Path, state_backend: str, state_location: str) -> Path:
    """``config`` with its ``[state]`` on this test's backend: the organization's name
    is resolved through the metadata cache there (checked after the export)."""
    if state_backend == "postgresql":
        config.write_text(
            config.read_text() + f'backend = "postgresql"\ndsn = "{state_location}"\n'
        )
    return config


def _client(emu: Any, tmp_path: Path) -> ITGlueClient:
    return ITGlueClient.from_instance(
        "setup",
        base_url=emu.base_url,
        api_key=emu.api_key,
        ca_bundle=emu.ca_file,
        state_dir=tmp_path / "setup-state",
    )


def _attach(client: ITGlueClient, tmp: Path, kind: str, rid: str, name: str, data: bytes) -> str:
    src = tmp / "src" / f"{kind}-{rid}" / name
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    return client.upload_attachment(kind, rid, path=src).id


@pytest.fixture
def acme(itglue_emulator: Any, tmp_path: Path) -> dict[str, Any]:
    """Acme: three documents (two with attachments, one named like a path), a
    configuration, a password and a flexible asset with attachments; Other: a document
    and an attached flexible asset not to export."""
    with _client(itglue_emulator, tmp_path) as c:
        org = c.create_organization("Acme")
        other = c.create_organization("Other")
        c.create_document(other.id, "Not Acme's")
        atts: dict[str, bytes] = {}
        docs = []
        for i, title in enumerate(["Runbook", "Backups", "../etc/passwd"]):
            doc = c.create_document(org.id, title)
            docs.append(doc)
            c.create_document_section(doc.id, "Document::Heading", f"Part {i}", level=2)
            c.create_document_section(
                doc.id, "Document::Text", f"<p>text {i}</p><script>alert(1)</script>"
            )
            if i < 2:
                for n in range(2):
                    data = os.urandom(50_000 + n)
                    atts[_attach(c, tmp_path, "documents", doc.id, f"file{n}.bin", data)] = data
        server = c.configuration_types.create(name="Server")
        cfg = c.create_configuration(org.id, "dc01", configuration_type_id=server.id)
        data = b"config backup" * 1000
        atts[_attach(c, tmp_path, "configurations", cfg.id, "dc01.cfg", data)] = data
        pw = c.passwords.create(organization_id=org.id, name="root", password="s3cret-value")
        data = b"recovery codes"
        atts[_attach(c, tmp_path, "passwords", pw.id, "codes.txt", data)] = data
        kind = c.flexible_asset_types.create(
            name="Network",
            flexible_asset_fields=[{"order": 1, "name": "Name", "kind": "Text", "required": True}],
        )
        lan = c.create_flexible_asset(org.id, kind.id, {"name": "Corp LAN"})
        data = b"<svg>network diagram</svg>"
        atts[_attach(c, tmp_path, "flexible_assets", lan.id, "lan.svg", data)] = data
        elsewhere = c.create_flexible_asset(other.id, kind.id, {"name": "Other LAN"})
        _attach(c, tmp_path, "flexible_assets", elsewhere.id, "other.svg", b"not Acme's")
    return {"org": org, "docs": docs, "attachments": atts}


def _check_tree(root: Path, attachments: dict[str, bytes]) -> dict[str, Any]:
    """Every manifest entry matches its file (sha256, size); nothing else is there."""
    manifest = json.loads((root / "manifest.json").read_text())
    files = manifest["files"]
    for entry in files.values():
        data = (root / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["size"]
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert on_disk == {e["path"] for e in files.values()} | {"manifest.json"}
    for att_id, data in attachments.items():
        entry = files[f"attachments/{att_id}"]
        assert (root / entry["path"]).read_bytes() == data
    return manifest  # type: ignore[no-any-return]


def test_export_writes_documents_and_attachments_and_a_rerun_fetches_nothing(
    config_on_state: Path,
    itglue_emulator: Any,
    acme: dict[str, Any],
    tmp_path: Path,
    state_backend: str,
    make_database: DatabaseFactory,
) -> None:
    config = config_on_state
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(export, ["-c", str(config), "--organization", "Acme", str(out)])
    assert result.exit_code == 0, result.output
    manifest = _check_tree(out, acme["attachments"])
    assert manifest["organization"]["name"] == "Acme"
    docs = [e for e in manifest["files"].values() if e["kind"] == "document"]
    assert sorted(e["title"] for e in docs) == ["../etc/passwd", "Backups", "Runbook"]
    assert all(e["path"].startswith("documents/") and "/" not in e["path"][10:] for e in docs)
    runbook = next(e for e in docs if e["title"] == "Runbook")
    page = (out / runbook["path"]).read_text()
    assert "<title>Runbook</title>" in page and "<h2>Part 0</h2>" in page
    assert "<p>text 0</p>" in page and "script" not in page
    assert "Not Acme" not in json.dumps(manifest)
    att = manifest["files"][f"attachments/{next(iter(acme['attachments']))}"]
    assert att["source_id"] and att["updated_at"] and att["resource_type"] == "documents"
    assert seen(itglue_emulator, DOWNLOAD) == len(acme["attachments"]) == 7
    assert (out / "manifest.json").stat().st_mode & 0o077 == 0
    assert (out / att["path"]).stat().st_mode & 0o077 == 0
    assert seen(itglue_emulator, SECTIONS) == 3

    result = runner.invoke(export, ["-c", str(config), "--organization", "Acme", str(out)])
    assert result.exit_code == 0, result.output
    assert "0 files fetched" in result.output and "10 unchanged" in result.output
    assert seen(itglue_emulator, DOWNLOAD) == 7  # nothing downloaded again
    assert seen(itglue_emulator, SECTIONS) == 3  # no document read again
    assert json.loads((out / "manifest.json").read_text()) == manifest
    if state_backend == "postgresql":  # the name was resolved in the shared cache
        with MetadataCache(make_database("cache")) as cache:
            assert cache.find_organization_by_name("acme") is not None


def test_a_changed_attachment_and_document_are_fetched_again(
    config: Path, itglue_emulator: Any, acme: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["-c", str(config), "--organization", "Acme", str(out)]
    assert runner.invoke(export, args).exit_code == 0
    changed = next(iter(acme["attachments"]))
    acme["attachments"][changed] = b"a new version of the file"
    itglue_emulator.replace_attachment_content(changed, acme["attachments"][changed])
    with _client(itglue_emulator, tmp_path) as c:
        doc = acme["docs"][1]
        section = next(iter(c.list_document_sections(doc.id)))
        c.document_sections.within(doc.id).update(section.id, content="Renamed part")
    downloads, reads = seen(itglue_emulator, DOWNLOAD), seen(itglue_emulator, SECTIONS)

    result = runner.invoke(export, args)
    assert result.exit_code == 0, result.output
    assert "2 files fetched" in result.output
    assert seen(itglue_emulator, DOWNLOAD) == downloads + 1
    assert seen(itglue_emulator, SECTIONS) == reads + 1  # only the edited document
    manifest = _check_tree(out, acme["attachments"])
    page = next(e for e in manifest["files"].values() if e.get("title") == "Backups")
    assert "Renamed part" in (out / page["path"]).read_text()


def test_an_unknown_organization_is_a_clear_error(
    config: Path, acme: dict[str, Any], tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        export, ["-c", str(config), "--organization", "Acme Corp", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "Acme" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_a_killed_export_resumes_to_a_correct_tree(
    config: Path, itglue_emulator: Any, acme: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    # each download waits before its answer: the kill lands while one is under way
    itglue_emulator.set_faults(latency={"ms": 400, "path_prefix": "/_downloads"})
    cmd = python_module("pipeline", "export", "-c", config, "--organization", "Acme", out)
    env = child_env(**{KEY_ENV: itglue_emulator.api_key})
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def mid_download() -> bool:
            manifest = out / "manifest.json"
            if not manifest.exists() or '"attachments/' not in manifest.read_text():
                return False
            return any(out.rglob(".*.part"))

        wait_for(mid_download, timeout=60, message="a download under way after one done")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert any(out.rglob(".*.part"))  # killed mid-download: the half file is not renamed
    done = json.loads((out / "manifest.json").read_text())["files"]
    fetched = sum(1 for k in done if k.startswith("attachments/"))
    assert 0 < fetched < len(acme["attachments"])
    for p in out.rglob("*"):  # whatever has a final name is whole
        if p.is_file() and p.name != "manifest.json" and not p.name.endswith(".part"):
            entry = next((e for e in done.values() if e["path"] == str(p.relative_to(out))), None)
            if entry is not None:
                assert hashlib.sha256(p.read_bytes()).hexdigest() == entry["sha256"]

    itglue_emulator.set_faults()
    downloads = seen(itglue_emulator, DOWNLOAD)
    result = CliRunner().invoke(export, ["-c", str(config), "--organization", "Acme", str(out)])
    assert result.exit_code == 0, result.output
    _check_tree(out, acme["attachments"])  # the .part leftovers are gone too
    # at most the one renamed in place just before the kill is fetched twice
    assert seen(itglue_emulator, DOWNLOAD) - downloads <= len(acme["attachments"]) - fetched + 1


def test_a_file_that_fails_is_reported_and_the_others_are_kept(
    config: Path, itglue_emulator: Any, acme: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    bad = next(iter(acme["attachments"]))
    with itglue_emulator.app.store.lock:  # the API announces a size the bytes do not have
        itglue_emulator.app.store.get("attachments", int(bad))["attachment-file-size"] += 1
    args = ["-c", str(config), "--organization", "Acme", str(out)]
    result = CliRunner().invoke(export, args)
    assert result.exit_code == 1
    assert f"failed: attachment {bad} (file0.bin)" in result.output
    assert "bytes, the attachment has" in result.output and "Traceback" not in result.output
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert f"attachments/{bad}" not in files
    del acme["attachments"][bad]
    _check_tree(out, acme["attachments"])  # the others are whole; no half file is left
