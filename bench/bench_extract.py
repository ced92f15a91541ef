"""What extraction costs: API requests per document per format, and files per second.

Drop folder -> the real engine -> the emulator (HTTPS on 127.0.0.1), once without the
``extract`` transform (``mime, route, title``: the file attached, nothing else) and once
with it (the default ``mime, extract, route, title``). Counts only the requests about
documents (create, sections, images, attachments, publish), not the metadata cache's.

Formats: plain text, Markdown and HTML (generated here); more formats are measured when
their sample files are given with ``--files DIR`` (every file in it is one document).

Run: .venv/bin/python bench/bench_extract.py [--docs N] [--files DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))  # the test helpers: ``tests`` is not installed

from itglue_emulator import run_emulator
from pipeline.runner import Engine
from pipeline.testing import emulator_settings, with_sections
from pipeline.testing.builders import API_KEY_ENV

ORG = "Bench Org"


def samples(n: int) -> dict[str, dict[str, bytes]]:
    """format -> file name -> bytes, ``n`` distinct files of each."""
    out: dict[str, dict[str, bytes]] = {"txt": {}, "md": {}, "html": {}}
    for i in range(n):
        para = f"Firewall {i} reviewed. " * 20
        out["txt"][f"notes-{i}.txt"] = f"{para}\n\n{para}\n".encode()
        out["md"][f"runbook-{i}.md"] = (
            f"# Runbook {i}\n\n{para}\n\n## Restore\n\n1. stop\n2. restore\n".encode()
        )
        out["html"][f"page-{i}.html"] = (
            f"<html><head><title>Page {i}</title></head><body><h1>Switch {i}</h1>"
            f"<p>{para}</p><table><tr><td>port</td><td>{i}</td></tr></table></body></html>"
        ).encode()
    return out


def run(files: dict[str, bytes], transforms: list[str], tmp: Path) -> tuple[float, float]:
    """(requests per document, files per second) of one engine run on ``files``."""
    drop = tmp / "drop"
    drop.mkdir(parents=True)
    for name, data in files.items():
        (drop / name).write_bytes(data)
    with run_emulator(api_key="bench-key", tls=True) as emu:
        os.environ[API_KEY_ENV] = emu.api_key
        settings = with_sections(
            emulator_settings(emu, tmp / "state"),
            pipeline={"transforms": transforms, "workers": 2},
            sources=[
                {
                    "name": "drop",
                    "type": "filesystem",
                    "path": str(drop),
                    "organization": ORG,
                    "stability_delay": 0,
                }
            ],
        )
        with Engine(settings) as engine:
            engine.context.itglue().create_organization(ORG)
            before = counted(emu)
            start = time.monotonic()
            summary = engine.run_once()
            elapsed = time.monotonic() - start
        assert summary.delivered == len(files), summary
        used = counted(emu) - before
    return used / len(files), len(files) / elapsed


def counted(emu: Any) -> int:
    """Requests about documents so far (create, sections, images, attachments, publish)."""
    total = 0
    for r in emu.state()["requests"]:
        route = r["route"]
        if "/_emulator" in route or (route.startswith("/organizations") and route.count("/") == 1):
            continue
        if "documents" in route or "document_images" in route or "attachments" in route:
            total += r["count"]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20, help="documents per format")
    parser.add_argument("--files", type=Path, help="a folder of sample files (one doc each)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    formats = samples(args.docs)
    if args.files:
        extra: dict[str, dict[str, bytes]] = defaultdict(dict)
        for path in sorted(args.files.iterdir()):
            if path.is_file():
                extra[path.suffix.lstrip(".").lower() or "other"][path.name] = path.read_bytes()
        formats.update(extra)
    print(
        f"{'format':8} {'docs':>5} {'requests/doc before':>20} {'after':>8} {'files/s after':>14}"
    )
    for fmt, files in formats.items():
        with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
            before, _ = run(files, ["mime", "route", "title"], Path(tmp) / "before")
            after, rate = run(files, ["mime", "extract", "route", "title"], Path(tmp) / "after")
        print(f"{fmt:8} {len(files):>5} {before:>20.2f} {after:>8.2f} {rate:>14.2f}")


if __name__ == "__main__":
    main()
