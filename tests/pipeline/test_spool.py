"""The spool: streaming hash, permissions, content addressing, size limit, cleanup."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path

import pytest

from pipeline.spool import CHUNK, Spool, SpoolTooLarge


class CountingStream(io.RawIOBase):
    """A stream that produces ``size`` bytes and remembers the largest read asked for."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.max_read = 0
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            raise AssertionError("the spool must never read a whole stream at once")
        self.max_read = max(self.max_read, n)
        n = min(n, self.left)
        data = bytes((self.left + i) % 251 for i in range(min(n, 4096))) * (n // 4096 + 1)
        data = data[:n]
        self.left -= n
        self.hash.update(data)
        return data


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_streams_in_chunks_and_hashes_while_copying(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    stream = CountingStream(5 * CHUNK + 123)
    spooled = spool.store(stream, limit=10 * CHUNK)
    assert stream.max_read <= CHUNK
    assert spooled.size == 5 * CHUNK + 123
    assert spooled.sha256 == stream.hash.hexdigest()
    assert spooled.path == tmp_path / "spool" / spooled.sha256[:2] / spooled.sha256
    assert hashlib.sha256(spooled.path.read_bytes()).hexdigest() == spooled.sha256


def test_files_0600_and_folders_0700(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        spool = Spool(tmp_path / "spool")
        spooled = spool.store(io.BytesIO(b"secret scan"), limit=100)
    finally:
        os.umask(old)
    assert mode(spooled.path) == 0o600
    assert mode(spooled.path.parent) == 0o700
    assert mode(tmp_path / "spool") == 0o700
    assert mode(tmp_path / "spool" / "tmp") == 0o700


def test_same_content_is_stored_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    a = spool.store(io.BytesIO(b"same bytes"), limit=100)
    b = spool.store(io.BytesIO(b"same bytes"), limit=100)
    c = spool.store(io.BytesIO(b"other bytes"), limit=100)
    assert a.path == b.path and a.sha256 == b.sha256
    assert c.path != a.path
    assert sorted(spool.hashes()) == sorted({a.sha256, c.sha256})
    assert list(spool.tmp.iterdir()) == []


def test_size_limit_aborts_the_copy_and_keeps_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    with pytest.raises(SpoolTooLarge) as e:
        spool.store(CountingStream(3 * CHUNK), limit=CHUNK + 10)
    assert "too large" in str(e.value) and f"limit {CHUNK + 10}" in str(e.value)
    assert "max_file_size" in str(e.value)
    assert list(spool.hashes()) == [] and list(spool.tmp.iterdir()) == []
    with pytest.raises(SpoolTooLarge, match="too large: 500 bytes > limit 100"):
        spool.stage(io.BytesIO(b""), 100, expected_size=500)


def test_exactly_at_the_limit_is_fine(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert spool.store(io.BytesIO(b"x" * 100), limit=100).size == 100


def test_free_and_sweep(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    a = spool.store(io.BytesIO(b"a"), limit=10)
    b = spool.store(io.BytesIO(b"b"), limit=10)
    assert spool.free(a.sha256) is True
    assert not a.path.exists()
    assert spool.free(a.sha256) is False
    (spool.tmp / "partial.part").write_bytes(b"left by a crash")
    assert spool.clean_tmp() == 1
    assert spool.sweep(lambda sha: sha == a.sha256) == 1
    assert not b.path.exists()
    assert spool.usage() == (0, 0)


def test_a_committed_file_is_not_freed_before_its_row_exists(tmp_path: Path) -> None:
    """The engine commits a file, then inserts the row that references it, then unpins:
    meanwhile a record that finished with the same content must not free the file (the
    spool lock no longer covers the commit's fsync and the insert)."""
    spool = Spool(tmp_path / "spool")
    first = spool.commit(spool.stage(io.BytesIO(b"same"), limit=10))
    second = spool.commit(spool.stage(io.BytesIO(b"same"), limit=10))  # pinned twice
    assert not spool.free(first.sha256) and first.path.exists()
    spool.unpin(first.sha256)
    assert not spool.free(first.sha256), "still pinned by the second commit"
    spool.unpin(second.sha256)
    assert spool.sweep(lambda sha: False) == 1 and not first.path.exists()


def test_a_failing_stream_leaves_no_partial_file(tmp_path: Path) -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            raise OSError(5, "Input/output error")

    spool = Spool(tmp_path / "spool")
    with pytest.raises(OSError):
        spool.store(Broken(), limit=10)
    assert list(spool.tmp.iterdir()) == []
