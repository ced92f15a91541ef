"""Run the engine over a drop folder in a child process (crash and permission tests).

Usage: ``python -m tests.sources.filesystem.fs_child SPEC.json`` where the JSON holds
``tmp``, ``drop``, ``mode`` (``once`` or ``run``), and optional ``source`` / ``pipeline``
options and ``sink_delay``.
``run`` watches until SIGTERM; ``once`` exits 0 (all delivered) or 3 (some failed).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path

from tests.sources.filesystem.fs_helpers import make_engine, settings_for


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = settings_for(
        Path(spec["tmp"]),
        Path(spec["drop"]),
        sink_delay=spec.get("sink_delay", 0.0),
        pipeline_opts=spec.get("pipeline"),
        **spec.get("source", {}),
    )
    engine = make_engine(settings)
    try:
        if spec["mode"] == "once":
            summary = engine.run_once()
            print(
                json.dumps(
                    {
                        "delivered": summary.delivered,
                        "failed": summary.failed,
                        "duplicate": summary.duplicate,
                    }
                ),
                flush=True,
            )
            return 3 if summary.failed else 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        engine.run(stop)
        return 0
    finally:
        engine.close()


if __name__ == "__main__":
    sys.exit(main())
