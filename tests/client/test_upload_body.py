"""The streamed base64 JSON body: exact length, valid JSON, identical bytes."""

from __future__ import annotations

import base64
import io
import json

import pytest

from core_client.upload_body import Base64JSONBody, encoded_length


class TrickleReader(io.RawIOBase):
    """A source that returns at most ``step`` bytes per read (like a pipe or socket)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._step if n < 0 else min(n, self._step)
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 6, 7, 100, 3 * 17 + 1, 10_000])
@pytest.mark.parametrize("block", [3, 6, 9, 3 * 1024])
def test_body_is_valid_and_identical(size: int, block: int) -> None:
    data = bytes((i * 7 + 3) % 256 for i in range(size))
    body = Base64JSONBody(io.BytesIO(data), size, 'na"me,ü.pdf', block=block)
    out = b"".join(iter(body))
    assert len(out) == len(body)
    doc = json.loads(out)
    att = doc["data"]["attributes"]["attachment"]
    assert doc["data"]["type"] == "attachments"
    assert att["file_name"] == 'na"me,ü.pdf'
    assert base64.b64decode(att["content"], validate=True) == data


@pytest.mark.parametrize("step", [1, 2, 4, 5])
def test_short_reads_still_encode_whole_quanta(step: int) -> None:
    data = bytes(range(256)) * 3 + b"xy"
    body = Base64JSONBody(TrickleReader(data, step), len(data), "f", block=9)  # type: ignore[arg-type]
    out = b""
    while chunk := body.read(7):
        out += chunk
    assert len(out) == len(body)
    content = json.loads(out)["data"]["attributes"]["attachment"]["content"]
    assert base64.b64decode(content, validate=True) == data


def test_source_shorter_than_announced_is_an_error() -> None:
    body = Base64JSONBody(io.BytesIO(b"abc"), 10, "f")
    with pytest.raises(OSError, match="early"):
        body.read()


def test_encoded_length() -> None:
    for n in range(50):
        assert encoded_length(n) == len(base64.b64encode(b"x" * n))


def test_block_must_be_multiple_of_three() -> None:
    with pytest.raises(ValueError):
        Base64JSONBody(io.BytesIO(b""), 0, "f", block=1000)
