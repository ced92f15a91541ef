"""Byte counts for people to read."""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def human_size(n: int) -> str:
    """``512 bytes``, ``1.5 KiB``, ``3.0 MiB`` ... (binary units, one decimal; never
    ``1024.0 KiB``)."""
    if abs(n) < 1024:
        return "1 byte" if n == 1 else f"{n} bytes"
    size = float(n)
    for unit in _UNITS:
        size /= 1024
        if abs(round(size, 1)) < 1024 or unit == _UNITS[-1]:
            break
    return f"{size:.1f} {unit}"
