"""Human-readable sizes (itglue_common.sizes)."""

from __future__ import annotations

import pytest

from itglue_common import human_size


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1023 bytes"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024 * 1024 - 1, "1.0 MiB"),  # not "1024.0 KiB"
        (64 * 1024**2, "64.0 MiB"),
        (3 * 1024**3 + 1024**3 // 2, "3.5 GiB"),
        (5 * 1024**4, "5.0 TiB"),
        (2048 * 1024**4, "2048.0 TiB"),  # the largest unit keeps counting
    ],
)
def test_sizes(n: int, text: str) -> None:
    assert human_size(n) == text


def test_every_size_has_at_most_four_digits_before_the_point() -> None:
    for exponent in range(0, 42):
        for n in (2**exponent - 1, 2**exponent, 2**exponent + 1):
            number = human_size(n).split()[0]
            assert len(number.split(".")[0]) <= 4, (n, human_size(n))
