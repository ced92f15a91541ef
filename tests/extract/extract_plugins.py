"""Test extractors registered through ``ingest_register_extractors`` like a third-party
plugin's (``[plugins] modules = ["tests.extract.extract_plugins"]`` in a daemon's
configuration, or ``plugins=[...]`` of ``run_once``).

JSON files (libmagic: ``application/json``) are read as a small document description;
their ``"hostile"`` key makes the extractor misbehave the way a broken parser does.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from pipeline import (
    Extracted,
    ExtractionError,
    ExtractLimits,
    Heading,
    Html,
    Picture,
    hookimpl,
)

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def picture(seed: int) -> bytes:
    """A distinct small PNG per seed (a trailing chunk after IEND keeps it a PNG)."""
    return PNG_1X1 + f"seed {seed}".encode()


def extract_description(path: Path, limits: ExtractLimits) -> Extracted:
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    hostile = spec.get("hostile")
    if spec.get("started"):  # tell a test that the job runs
        Path(spec["started"]).touch()
    if hostile == "loop":
        while True:  # a parser stuck on a malformed file
            time.sleep(0.01)
    if hostile == "refuse":
        raise ExtractionError("the file is encrypted")
    if hostile == "allocate":
        hoard = []
        while True:  # a decompression bomb in a parser
            hoard.append(bytearray(16 * 1024 * 1024))
    blocks: list[Heading | Html | Picture] = []
    for i, part in enumerate(spec.get("parts", [])):
        blocks.append(Heading(part["heading"], 2))
        blocks.append(Html(f"<p>{part['text']}</p>"))
        if part.get("picture"):
            blocks.append(Picture(picture(i), "image/png", f"figure-{i}.png", alt=part["heading"]))
    text = " ".join(f"{p['heading']} {p['text']}" for p in spec.get("parts", []))
    return Extracted(blocks=tuple(blocks), text=text, title=spec.get("title"))


@hookimpl
def ingest_register_extractors(register: Any) -> None:
    register(["application/json"], extract_description, name="test-description")
