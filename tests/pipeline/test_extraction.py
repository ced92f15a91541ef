"""The extractor registry and the extraction data types (pure logic, in-process)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from pipeline import (
    Extracted,
    ExtractLimits,
    ExtractorRegistry,
    Heading,
    Html,
    Picture,
    RegisterExtractor,
)


def one(path: Path, limits: ExtractLimits) -> Extracted:
    return Extracted(blocks=(Html("<p>one</p>"),), text="one")


def two(path: Path, limits: ExtractLimits) -> Extracted:
    return Extracted(blocks=(), text="two")


def test_an_exact_type_wins_over_a_pattern_and_parameters_are_ignored() -> None:
    reg = ExtractorRegistry()
    register = RegisterExtractor(reg)
    register(["image/*"], one, name="images")
    register(["Image/PNG"], two, name="png")
    png = reg.lookup("image/png; charset=binary")
    jpeg = reg.lookup("image/jpeg")
    assert png is not None and png.name == "png"
    assert jpeg is not None and jpeg.name == "images"
    assert reg.lookup("application/pdf") is None and reg.lookup(None) is None
    assert reg.types() == {"image/*": "images", "image/png": "png"}


def test_registering_a_type_twice_names_both_extractors() -> None:
    reg = ExtractorRegistry()
    reg.register(["text/plain"], one, name="text")
    with pytest.raises(ValueError, match="'text' and 'other'"):
        reg.register(["text/plain"], two, name="other")


@pytest.mark.parametrize("bad", ["text/plain", ["plain"]])
def test_a_malformed_registration_is_refused(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        ExtractorRegistry().register(bad, one, name="x")  # type: ignore[arg-type]


def test_results_and_limits_cross_a_process_boundary() -> None:
    """What a worker process returns and is given must pickle."""
    result = Extracted(
        blocks=(Heading("Title", 2), Html("<p>x</p>"), Picture(b"\x89PNG", "image/png", "a.png")),
        text="Title x",
        title="Title",
    )
    limits = ExtractLimits(ocr_languages=("eng", "deu"))
    for value in (result, limits):
        assert pickle.loads(pickle.dumps(value)) == value  # noqa: S301 (our own bytes)
    assert pickle.loads(pickle.dumps(one)) is one  # noqa: S301


def test_a_heading_level_outside_1_to_6_is_refused() -> None:
    with pytest.raises(ValueError, match="between 1 and 6"):
        Heading("x", 7)
