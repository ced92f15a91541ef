"""Streamed attachment uploads: byte-identical content for paths and streams."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from itglue_emulator import run_emulator
from tests.client.conftest import ClientFactory, requests_seen


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    p = tmp_path / "random.bin"
    p.write_bytes(os.urandom(3 * 1024 * 1024 + 2))  # not a multiple of 3, several blocks
    return p


def test_upload_from_path_is_byte_identical(
    itglue_emulator: Any, make_client: ClientFactory, blob: Path
) -> None:
    client = make_client(itglue_emulator)
    org = client.create_organization("Acme")
    doc = client.create_document(org.id, "Blob")
    att = client.upload_attachment("documents", doc.id, path=blob)
    assert att.name == "random.bin" and att.attachment_file_size == blob.stat().st_size
    assert itglue_emulator.attachment_content(att.id) == blob.read_bytes()


def test_upload_from_seekable_stream_from_its_position(
    itglue_emulator: Any, make_client: ClientFactory, blob: Path
) -> None:
    client = make_client(itglue_emulator)
    org = client.create_organization("Acme")
    doc = client.create_document(org.id, "Blob")
    with open(blob, "rb") as fh:
        fh.seek(10)
        att = client.upload_attachment("documents", doc.id, stream=fh, file_name="tail.bin")
    assert itglue_emulator.attachment_content(att.id) == blob.read_bytes()[10:]


def test_upload_from_a_pipe(itglue_emulator: Any, make_client: ClientFactory, blob: Path) -> None:
    """A non-seekable stream (a child's stdout) is spooled, then streamed."""
    client = make_client(itglue_emulator)
    org = client.create_organization("Acme")
    conf_type = client.request(
        "POST",
        "/configuration_types",
        json={"data": {"type": "configuration-types", "attributes": {"name": "Server"}}},
    ).body
    conf = client.create_configuration(org.id, "srv", configuration_type_id=conf_type["data"]["id"])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,shutil; shutil.copyfileobj(open(sys.argv[1],'rb'), sys.stdout.buffer)",
            str(blob),
        ],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        att = client.upload_attachment(
            "configurations", conf.id, stream=proc.stdout, file_name="piped.bin"
        )
    finally:
        proc.stdout.close()
        proc.wait()
    data = itglue_emulator.attachment_content(att.id)
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(blob.read_bytes()).hexdigest()
    assert [a.id for a in client.list_attachments("configurations", conf.id)] == [att.id]


def test_upload_is_resent_whole_after_429(make_client: ClientFactory, blob: Path) -> None:
    with run_emulator(retry_after=True) as emu:
        client = make_client(emu)
        org = client.create_organization("Acme")
        doc = client.create_document(org.id, "Blob")
        emu.set_faults(storm={"next": 2})
        att = client.upload_attachment("documents", doc.id, path=blob)
        assert emu.attachment_content(att.id) == blob.read_bytes()
        assert requests_seen(emu, "POST", status=429) == 2
        assert len(emu.state()["records"]["attachments"]) == 1


def test_rename_and_delete(itglue_emulator: Any, make_client: ClientFactory) -> None:
    client = make_client(itglue_emulator)
    org = client.create_organization("Acme")
    doc = client.create_document(org.id, "D")
    a = client.upload_attachment("documents", doc.id, stream=io.BytesIO(b"1"), file_name="a.txt")
    b = client.upload_attachment("documents", doc.id, stream=io.BytesIO(b"22"), file_name="b.txt")
    renamed = client.rename_attachment("documents", doc.id, a.id, "renamed.txt")
    assert renamed is None or renamed.name == "renamed.txt"
    assert client.get_attachment("documents", doc.id, a.id).name == "renamed.txt"
    client.delete_attachments("documents", doc.id, [a.id, b.id])
    assert list(client.list_attachments("documents", doc.id)) == []
    with pytest.raises(ValueError):
        client.upload_attachment("organizations", org.id, stream=io.BytesIO(b"x"), file_name="x")
    with pytest.raises(ValueError):
        client.upload_attachment("documents", doc.id)
