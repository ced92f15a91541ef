"""A process that runs one never-ending extraction in an ExtractionPool and prints the
worker's pid (for tests/extract/test_extract_pool.py, which SIGKILLs this process)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from pipeline import ExtractLimits
from plugins.extract.pool import ExtractionPool
from tests.extract.extract_plugins import extract_description


def main() -> None:
    pool = ExtractionPool(workers=1, timeout=600, memory_limit=512 * 1024 * 1024)
    job = threading.Thread(
        target=pool.run, args=(extract_description, Path(sys.argv[1]), ExtractLimits())
    )
    job.start()
    while not pool.pids():
        time.sleep(0.05)
    print(pool.pids()[0], flush=True)
    job.join()


if __name__ == "__main__":
    main()
