"""The OOXML zip-bomb guard: DOCX, XLSX and PPTX are zip files, checked before parsing.

A few kilobytes of zip can inflate to gigabytes; the parsers (mammoth, openpyxl,
python-pptx) would inflate whole members into memory. The zip's central directory states
every member's compressed and uncompressed size, so the check reads no member at all: the
total uncompressed size (``max_unzipped_bytes``) and each member's ratio
(``max_zip_ratio``) are capped. A stated size cannot lie its way past the check: the
stdlib ``zipfile``, which all three parsers read through, never inflates a member beyond
its stated size.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from pipeline import ExtractionError, ExtractLimits

# Members this small are never ratio-checked: a 200-byte XML part of zeros compresses
# 1000:1 legitimately and cannot hurt.
_SMALL_MEMBER = 1 << 20


def check_zip(path: Path, limits: ExtractLimits) -> None:
    """Raise :class:`ExtractionError` when ``path`` is not a readable zip or would
    inflate beyond the limits."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ExtractionError(f"not a readable Office file (broken zip: {e})") from e
    total = 0
    for info in members:
        total += info.file_size
        if total > limits.max_unzipped_bytes:
            raise ExtractionError(
                f"zip bomb suspected: more than {limits.max_unzipped_bytes:,} bytes"
                " unzipped ([transforms.extract] max_unzipped_bytes)"
            )
        if info.file_size > _SMALL_MEMBER:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_zip_ratio:
                raise ExtractionError(
                    f"zip bomb suspected: {info.filename[:80]!r} inflates {ratio:,.0f}:1"
                    f" (over {limits.max_zip_ratio}:1, [transforms.extract] max_zip_ratio)"
                )


def read_member(path: Path, name: str, limit: int = 10_000_000) -> bytes | None:
    """A member's bytes, at most ``limit`` (None when the zip has no such member)."""
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(name)
        except KeyError:
            return None
        with archive.open(info) as member:
            return member.read(limit)
