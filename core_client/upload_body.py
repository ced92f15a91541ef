"""A streamed JSON:API attachment body: ``{"data": ... "content": "<base64>" ...}``.

IT Glue takes attachments as strict base64 inside a JSON body (docs/itglue-api.md
section 5). Building that string in memory costs 1.33x the file, plus copies; for a
100 MB file that is hundreds of MB. This body is a file-like object that reads the
source in blocks of a multiple of 3 bytes (so each block encodes to whole base64
quanta with no padding except at the very end) and hands out the JSON prefix, the
encoded blocks and the suffix as ``requests``/``urllib3`` ask for them. Its length is
known in advance (``4 * ceil(size / 3)`` plus prefix and suffix), so the request has
a ``Content-Length`` and no chunked encoding; memory stays at a few blocks whatever
the size of the file.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import BinaryIO

BLOCK = 3 * 64 * 1024  # 192 KiB of source -> 256 KiB of base64


def encoded_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


class Base64JSONBody:
    """Readable once per instance; make a new one (after seeking the source) to resend."""

    def __init__(self, source: BinaryIO, size: int, file_name: str, *, block: int = BLOCK) -> None:
        if block % 3:
            raise ValueError("block must be a multiple of 3")
        self._source = source
        self._size = size
        self._left = size
        self._block = block
        attrs = json.dumps({"file_name": file_name}, ensure_ascii=True)[:-1]  # no closing }
        head = '{"data":{"type":"attachments","attributes":{"attachment":' + attrs
        self._prefix = (head + ', "content": "').encode("ascii")
        self._suffix = b'"}}}}'
        self._length = len(self._prefix) + encoded_length(size) + len(self._suffix)
        self._buffer = bytearray(self._prefix)
        self._pos = 0  # consumed bytes of _buffer (compacted when all is consumed)
        self._done = False

    def __len__(self) -> int:
        return self._length

    def _fill(self, want: int) -> None:
        while len(self._buffer) - self._pos < want and not self._done:
            if self._pos:
                del self._buffer[: self._pos]
                self._pos = 0
            if self._left > 0:
                raw = self._source.read(min(self._block, self._left))
                if not raw:
                    raise OSError(
                        f"the upload source ended {self._left} bytes early (file changed?)"
                    )
                # a short read may not be a multiple of 3: top up before encoding
                while len(raw) % 3 and len(raw) < self._left:
                    more = self._source.read(3 - len(raw) % 3)
                    if not more:
                        raise OSError("the upload source ended early (file changed?)")
                    raw += more
                self._left -= len(raw)
                self._buffer += base64.b64encode(raw)
            else:
                self._buffer += self._suffix
                self._done = True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._length
        self._fill(size)
        out = bytes(self._buffer[self._pos : self._pos + size])
        self._pos += len(out)
        return out

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self.read(self._block)
            if not chunk:
                return
            yield chunk
