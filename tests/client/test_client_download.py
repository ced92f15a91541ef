"""Streamed attachment downloads against the emulator: to a path, to a file object, as bytes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from core_client import DownloadError

from .conftest import ClientFactory, requests_seen


@pytest.fixture
def attached(itglue_emulator: Any, make_client: ClientFactory, tmp_path: Path) -> Any:
    client = make_client(itglue_emulator)
    org = client.create_organization("Acme")
    doc = client.create_document(org.id, "Runbook")
    data = bytes(range(256)) * 9000  # > 2 MiB: several 1 MiB chunks
    src = tmp_path / "backup.bin"
    src.write_bytes(data)
    att = client.upload_attachment("documents", doc.id, path=src)
    return client, doc, att, data


def test_download_to_path_is_atomic_and_checked(attached: Any, tmp_path: Path) -> None:
    client, doc, att, data = attached
    dest = tmp_path / "out" / "backup.bin"
    dest.parent.mkdir()
    got = client.download_attachment_to("documents", doc.id, att, dest)
    assert dest.read_bytes() == data
    assert got.size == len(data) and got.path == dest
    import hashlib

    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["backup.bin"]  # no .part left


def test_download_to_file_object_and_bytes(attached: Any) -> None:
    client, doc, att, data = attached
    out = io.BytesIO(b"prefix:")
    out.seek(7)
    got = client.download_attachment_to("documents", doc.id, att.id, out)
    assert out.getvalue() == b"prefix:" + data and got.size == len(data)
    assert client.download_attachment("documents", doc.id, att) == data


def test_wrong_size_keeps_nothing_under_the_name(
    attached: Any, itglue_emulator: Any, tmp_path: Path
) -> None:
    client, doc, att, data = attached
    lying = att.model_copy(update={"attachment_file_size": len(data) + 1})
    dest = tmp_path / "backup.bin.copy"
    with pytest.raises(DownloadError, match="got"):
        client.download_attachment_to("documents", doc.id, lying, dest)
    assert not dest.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_a_failed_attempt_restarts_the_file_from_zero(
    attached: Any, itglue_emulator: Any, tmp_path: Path
) -> None:
    client, doc, att, data = attached
    itglue_emulator.set_faults(error_next=1, status=503, path_prefix="/_downloads")
    dest = tmp_path / "again.bin"
    client.download_attachment_to("documents", doc.id, att, dest)
    assert dest.read_bytes() == data
    assert requests_seen(itglue_emulator, "GET", status=503) == 1


def test_a_body_cut_halfway_is_downloaded_again_from_zero(
    attached: Any, itglue_emulator: Any, tmp_path: Path
) -> None:
    client, doc, att, data = attached
    itglue_emulator.set_faults(cut={"next": 1, "path_prefix": "/_downloads"})
    dest = tmp_path / "cut.bin"
    got = client.download_attachment_to("documents", doc.id, att, dest)
    assert dest.read_bytes() == data and got.size == len(data)
    assert requests_seen(itglue_emulator, "GET", route="/_downloads/:id/:token") == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]

    seekable = io.BytesIO()
    itglue_emulator.set_faults(cut={"next": 1, "path_prefix": "/_downloads"})
    client.download_attachment_to("documents", doc.id, att, seekable)
    assert seekable.getvalue() == data  # the half from the first attempt was dropped


class _Pipe(io.RawIOBase):
    """A write-only stream that cannot seek (a pipe, a socket)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        return len(b)


def test_a_cut_download_into_a_stream_that_cannot_rewind_is_an_error(
    attached: Any, itglue_emulator: Any
) -> None:
    client, doc, att, data = attached
    itglue_emulator.set_faults(cut={"next": 1, "path_prefix": "/_downloads"})
    with pytest.raises(DownloadError, match="cannot start over"):
        client.download_attachment_to("documents", doc.id, att, _Pipe())  # type: ignore[arg-type]
    pipe = _Pipe()
    client.download_attachment_to("documents", doc.id, att, pipe)  # type: ignore[arg-type]
    assert bytes(pipe.data) == data
