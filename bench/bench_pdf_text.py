"""Text-layer PDF extraction: pages per second, and what a 5,000-page file costs.

* the extractor (``plugins.extract.pdf.extract_pdf_text``: pdfminer.six layout analysis,
  paragraphs, headings by font size) on a generated report of ``--pages`` pages (a
  heading every fifth page, eight paragraphs a page);
* baseline: pdfminer.six's own ``extract_text`` on the same file (the same layout
  analysis, plain text out): the extractor's own work is the difference;
* a file of ``--huge`` one-line pages with ``max_pages`` = ``--max-pages``: seconds until
  the capped result (the page count comes from the page tree, not from reading pages);
* the real-world sample ``tests/data/corpus/pdfminer.six/2b.pdf`` (a bank statement).

Run: .venv/bin/python bench/bench_pdf_text.py [--pages 200] [--huge 5000] [--max-pages 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).parents[1]))  # the test helpers: ``tests`` is not installed

from pdfminer.high_level import extract_text

from pipeline import ExtractLimits, Heading
from plugins.extract.pdf import extract_pdf_text
from tests.extract.pdf_samples import report_pages, text_pdf

T = TypeVar("T")
CORPUS_PDF = Path(__file__).parents[1] / "tests/data/corpus/pdfminer.six/2b.pdf"


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--huge", type=int, default=5000)
    parser.add_argument("--max-pages", type=int, default=500)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-pdf-") as tmp:
        report = Path(tmp, "report.pdf")
        report.write_bytes(text_pdf(report_pages(args.pages), title="Bench report"))
        limits = ExtractLimits(max_pages=max(args.pages, args.max_pages))
        ours, got = timed(lambda: extract_pdf_text(report, limits, seconds=1e9))
        base, _ = timed(lambda: extract_text(str(report)))
        heads = sum(isinstance(b, Heading) for b in got.blocks)
        print(
            f"text PDF, {args.pages:,} pages: extractor {args.pages / ours:,.1f} pages/s"
            f" ({ours:.2f} s, {heads} headings); pdfminer extract_text (baseline)"
            f" {args.pages / base:,.1f} pages/s; ratio {ours / base:.2f}x the baseline's time"
        )

        huge = Path(tmp, "huge.pdf")
        huge.write_bytes(text_pdf([[(11, f"Page {i}")] for i in range(1, args.huge + 1)]))
        capped, result = timed(
            lambda: extract_pdf_text(huge, ExtractLimits(max_pages=args.max_pages))
        )
        print(
            f"{args.huge:,}-page PDF, max_pages {args.max_pages:,}: capped result in"
            f" {capped:.2f} s (pages {result.pages:,}; note: {result.note})"
        )

    real, sample = timed(lambda: extract_pdf_text(CORPUS_PDF, ExtractLimits()))
    print(
        f"real-world sample {CORPUS_PDF.name}: {real:.2f} s for {sample.pages} page(s),"
        f" {len(sample.text):,} characters"
    )


if __name__ == "__main__":
    main()
