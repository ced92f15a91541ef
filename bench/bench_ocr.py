"""OCR throughput: scanned pages per minute with N worker processes.

Each job is one scanned PDF page through the OCR extractor (``plugins.extract.ocr``:
render with pypdfium2 at 300 dpi, Tesseract with OMP_THREAD_LIMIT=1), as the extract
transform's worker processes run it. The sample is the real scan in tests/data/ocr
(``linn.pdf``, a dense two-column brochure page) or, for a quick run, a short page
rendered from a known text. Prints pages per minute per worker count and the word score
of the output against the sample's reference text.

The baseline is one worker: with N workers on N cores the figure should grow about N
times; on a busy machine it shows what is left.

Run: .venv/bin/python bench/bench_ocr.py [--pages 6] [--workers 1,2] [--sample scan]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))  # the test helpers: ``tests`` is not installed

from pipeline import ExtractLimits
from plugins.extract.ocr import extract_pdf, tesseract_problem
from tests.plugins.ocr_samples import (
    ENGLISH,
    REAL_SCAN,
    REAL_SCAN_TEXT,
    render_page,
    save_pages,
    word_score,
)


def ocr_page(path: str) -> str:
    return extract_pdf(Path(path), ExtractLimits()).text


def sample(kind: str, folder: Path) -> tuple[Path, str, str]:
    if kind == "scan":
        return REAL_SCAN, REAL_SCAN_TEXT.read_text("utf-8"), "linn.pdf (real scan, A4, 300 dpi)"
    path = save_pages([render_page(ENGLISH[:200])], folder / "rendered.pdf")
    return path, ENGLISH[:200], "a short page rendered from a known text"


def run(workers: int, pages: int, path: Path, reference: str) -> tuple[float, float]:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(ocr_page, [str(path)] * workers))  # warm up: imports, language data
        started = time.perf_counter()
        texts = list(pool.map(ocr_page, [str(path)] * pages))
        elapsed = time.perf_counter() - started
    score = min(word_score(reference, t) for t in texts)
    return pages / elapsed * 60, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=6, help="pages per worker count")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--sample", choices=("scan", "rendered"), default="scan")
    args = parser.parse_args()
    problem = tesseract_problem()
    if problem is not None:
        sys.exit(problem)
    with tempfile.TemporaryDirectory() as tmp:
        path, reference, label = sample(args.sample, Path(tmp))
        print(f"sample: {label}; {args.pages} pages per run")
        baseline = None
        for workers in (int(w) for w in args.workers.split(",")):
            per_minute, score = run(workers, args.pages, path, reference)
            baseline = baseline or per_minute
            print(
                f"workers {workers}: {per_minute:,.1f} pages/min"
                f" ({per_minute / baseline:.2f}x one worker), word score {score:.1%}"
            )


if __name__ == "__main__":
    main()
