"""Every bench script still runs and prints its figures (smallest sizes, no timing checks).

The benches import the engine, the client and the test helpers like any caller; a
refactor that breaks one would otherwise go unnoticed until someone measures. Each
script runs in a child process, as a user runs it; the figures are not judged here.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.child_process import REPO_ROOT, child_env

BENCH_DIR = REPO_ROOT / "bench"
NUMBER = r"[\d,.]+"

# script -> runs: (smallest arguments, lines it must print, as regular expressions)
SMOKE_RUNS: dict[str, list[tuple[list[str], list[str]]]] = {
    "bench_backlog": [
        (
            ["--files", "40", "--only", "window"],
            [
                rf"backlog, 300 s window +{NUMBER} files/s .* peak RSS +{NUMBER}",
                rf"backlog, 1 s window +{NUMBER} files/s .* peak RSS +{NUMBER}",
                rf"ratio 300 s / 1 s window: {NUMBER}",
            ],
        ),
        (
            ["--files", "40", "--only", "commit"],
            [
                rf"sqlite +all-duplicate re-run +on +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}",
                rf"speed-up \(sqlite\): backlog {NUMBER}x, all-duplicate re-run {NUMBER}x",
            ],
        ),
        (
            ["--files", "40", "--only", "commit", "--backend", "postgresql"],
            [
                rf"postgresql +backlog +off +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}",
                rf"postgresql +all-duplicate re-run +on +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}",
            ],
        ),
    ],
    "bench_cache": [
        (
            ["--rows", "2000", "--lookups", "200", "--scans", "10"],
            [
                rf"find_documents_by_hash +p50 +{NUMBER} ms",
                rf"ratio \(baseline p50 / cache p50\): organizations {NUMBER}x, "
                rf"documents {NUMBER}x",
                r'\{"org_by_name_p95_ms": ',
            ],
        )
    ],
    "bench_cache_search": [
        (
            ["--records", "2000", "--queries", "100", "--scans", "10"],
            [
                rf"search, wall clock +p50 +{NUMBER} ms",
                *(
                    rf"{name} +p50 +{NUMBER} ms +p95 +{NUMBER} ms +max +{NUMBER} ms"
                    for name in ("selective", "common words", "prefix", "multi-word")
                ),
                rf"ranking every match +p50 +{NUMBER} ms .* -> {NUMBER}x",
                rf"LIKE %word%, wall clock +p50 +{NUMBER} ms",
                rf"ratio \(baseline p50 / search p50\): {NUMBER}x",
                r'\{"backend": "sqlite", "search_p95_ms": ',
            ],
        ),
        (
            ["--records", "600", "--queries", "40", "--scans", "4", "--backend", "postgresql"],
            [
                rf"search, wall clock +p50 +{NUMBER} ms",
                *(
                    rf"{name} +p50 +{NUMBER} ms +p95 +{NUMBER} ms +max +{NUMBER} ms"
                    for name in ("selective", "common words", "prefix", "multi-word")
                ),
                r"target p95 < 10 ms at 600 records on postgresql",
                r'\{"backend": "postgresql", "search_p95_ms": ',
            ],
        ),
    ],
    "bench_client_rate": [
        (
            # (so short a run makes unaware-shared's share meaningless, even negative: the
            # other integration's first burst is most of what it used)
            ["--requests", "20"],
            [
                rf"{name}: 20 requests, {NUMBER} failed, {NUMBER} s; -?{NUMBER}% of "
                for name in ("configured", "unaware", "unaware-shared")
            ],
        ),
        (
            ["--only", "cost", "--acquires", "2000"],
            [rf"limiter cost \(file\), 2,000 acquires / 4 threads: 300 s window {NUMBER}/s"],
        ),
        (
            ["--only", "configured", "--requests", "20", "--backend", "postgresql"],
            [rf"configured: 20 requests, 0 failed, {NUMBER} s; {NUMBER}% of the ceiling"],
        ),
        (
            ["--only", "fleet", "--collectors", "1", "--windows", "1", "--fleet-window", "2"],
            [rf"fleet, 1 collector: {NUMBER} of 20 requests \({NUMBER}% of the budget\), 429s"],
        ),
    ],
    "bench_client_download_memory": [
        (
            ["--mb", "2"],
            [
                rf"download into memory \(baseline\): +{NUMBER} MB",
                rf"streamed download to a file: +{NUMBER} MB +\({NUMBER}% of the baseline",
                r"downloaded content identical \(sha256, size\): True",
            ],
        )
    ],
    "bench_client_upload_memory": [
        (
            ["--mb", "2"],
            [
                rf"read into memory \(baseline\): +{NUMBER} MB",
                rf"streamed upload \(client\): +{NUMBER} MB +\({NUMBER}% of the baseline",
                r"uploaded content identical: True",
            ],
        )
    ],
    "bench_emulator": [
        (
            ["--seconds", "0.3", "--threads", "2"],
            [
                rf"{mode} +emulator +{NUMBER} req/s +baseline .* ratio {NUMBER}"
                for mode in ("tls", "plain")
            ],
        )
    ],
    "bench_filesystem": [
        (
            ["--files", "2", "--backlog", "8", "--null-backlog", "4", "--burst", "2"],
            [
                rf"burst: 2 one-file documents .*: the last delivered -?{NUMBER} s after the"
                " stability delay",
                *(
                    rf"{observer} +last write -> delivered, minus the delay: p50 +-?{NUMBER} ms"
                    for observer in ("native", "polling")
                ),
                rf"source \+ engine, null sink +{NUMBER} files/s +\({NUMBER}x the baseline",
                rf"source \+ engine \+ IT Glue emulator +{NUMBER} files/s +\({NUMBER}x",
            ],
        )
    ],
    "bench_http_feed": [
        (
            ["10", "--big-mib", "4", "--parse-scale", "0.02"],
            [
                rf"parse_page {NUMBER} ms \({NUMBER}x\)",
                rf"http_feed through the engine: +{NUMBER} s .* {NUMBER}x the baseline",
                rf"re-poll of the unchanged feed: +{NUMBER} s \({NUMBER}x the first poll",
                rf"peak Python heap during the poll {NUMBER} MiB \({NUMBER}x the file size\)",
            ],
        )
    ],
    "bench_imap": [
        (
            ["--messages", "20", "--rounds", "2"],
            [
                rf"the pipeline takes {NUMBER}x the transfer floor",
                rf"round trips: {NUMBER} \(every poll\)",
                rf"ratio pipeline/baseline {NUMBER}",
            ],
        )
    ],
    "bench_ocr": [
        (
            ["--pages", "1", "--workers", "1", "--sample", "rendered"],
            [rf"workers 1: {NUMBER} pages/min \(1\.00x one worker\), word score {NUMBER}%"],
        )
    ],
    "bench_metrics_scrape": [
        (
            ["--records", "1000", "--scrapes", "5"],
            [
                r"ledger of 1,000 records filled in",
                rf"collector alone: p50 {NUMBER} ms, p95 {NUMBER} ms",
                rf"HTTP scrape of /metrics \({NUMBER} bytes\): p50 {NUMBER} ms, p95 {NUMBER} ms",
            ],
        )
    ],
    "bench_pdf_text": [
        (
            ["--pages", "5", "--huge", "100", "--max-pages", "10"],
            [
                rf"text PDF, 5 pages: extractor {NUMBER} pages/s .* pdfminer extract_text"
                rf" \(baseline\) {NUMBER} pages/s",
                rf"100-page PDF, max_pages 10: capped result in {NUMBER} s \(pages 100;",
                rf"real-world sample 2b.pdf: {NUMBER} s",
            ],
        )
    ],
    "bench_pipeline": [
        (
            ["--records", "10", "--workers", "2"],
            [
                rf"direct client \(baseline\) +{NUMBER} docs/s",
                rf"engine \+ itglue sink +{NUMBER} rec/s .* {NUMBER} requests/doc",
                rf"pipeline vs direct client +{NUMBER}x the time",
            ],
        )
    ],
    "soak": [
        (
            ["--minutes", "0.25", "--interval", "3", "--warmup", "5", "--storm-every", "5"],
            [rf"RSS +[+-]{NUMBER} MB/h", r"every item landed exactly once"],
        )
    ],
    "bench_extract": [
        (
            ["--docs", "2"],
            [rf"txt +2 +{NUMBER} +{NUMBER} +{NUMBER}", rf"html +2 +{NUMBER} +{NUMBER} +{NUMBER}"],
        )
    ],
    "bench_takeover": [
        (
            ["--kills", "1", "--files", "30", "--lease", "2"],
            [
                rf"kill -> standby holds the lease: median {NUMBER} s, max {NUMBER} s",
                rf"kill -> first delivery by the standby: (median {NUMBER} s, max {NUMBER} s|n/a)",
                r"landed 30 files: 0 twice, 0 lost",
            ],
        )
    ],
    "bench_sink": [
        (
            ["10"],
            [
                rf"sink / bare client: +{NUMBER}x",
                rf"requests for 3 files \+ 2 sections \+ publish: {NUMBER}",
                rf"with 20% of creates answer-lost: {NUMBER} requests/document",
            ],
        )
    ],
}


def test_every_bench_script_has_a_smoke_run() -> None:
    scripts = {p.stem for p in BENCH_DIR.glob("*.py")}
    assert scripts == set(SMOKE_RUNS), "add the new bench to SMOKE_RUNS (or remove a stale one)"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "index"),  # one test per run: each has the whole per-test timeout
    [(script, i) for script in sorted(SMOKE_RUNS) for i in range(len(SMOKE_RUNS[script]))],
)
def test_bench_runs_and_prints_its_figures(script: str, index: int) -> None:
    for args, expected in SMOKE_RUNS[script][index : index + 1]:
        run = subprocess.run(
            [sys.executable, str(BENCH_DIR / f"{script}.py"), *args],
            cwd=REPO_ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=110,
        )
        shown = f"{script} {' '.join(args)}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"
        assert run.returncode == 0, shown
        missing = [line for line in expected if not re.search(line, run.stdout)]
        assert not missing, f"figures not printed: {missing}\n{shown}"


def test_a_pass_reports_its_own_peak_rss_not_its_parents() -> None:
    """bench_backlog's passes are children of the process running the emulator; Linux
    carries a parent's peak RSS (``ru_maxrss``) across fork and exec, so a re-run after a
    100,000-file backlog reported the emulator's 290-330 MiB as its own."""
    ballast = b"x" * (256 * 2**20)  # written, so resident in this (the parent) process
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import bench_backlog;"
        " print(bench_backlog.peak_rss_mib())"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, str(BENCH_DIR)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(ballast) and 0 < float(run.stdout) < 128, run.stdout
