"""The process the crash tests SIGKILL: runs ``Engine.run_once`` over a configuration.

Usage: ``python -m tests.pipeline.pipeline_crash_runner SETTINGS_JSON [store|builtin]``.
``store`` uses the journaled SQLite test sink (pipeline_engine_helpers); ``builtin`` the
real plugins (the IT Glue sink against the emulator). Exit 0 when the run left nothing failed or
pending.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import parse_settings
from tests.pipeline.pipeline_engine_helpers import EnginePlugins, plugin_manager


def main() -> int:
    settings = parse_settings(json.loads(Path(sys.argv[1]).read_text()))
    kind = sys.argv[2] if len(sys.argv) > 2 else "store"
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("itglue_ingest.engine").setLevel(logging.INFO)  # "resuming ..." lines
    if kind == "store":
        pm = plugin_manager()
    else:
        pm = get_plugin_manager(
            load_entrypoints=False,
            block=("plugins.imap", "plugins.http_feed", "plugins.filesystem"),
            extra=[EnginePlugins()],  # the test's folder source
        )
    with Engine(settings, pm) as engine:
        summary = engine.run_once()
    print(json.dumps(summary.to_dict(), default=str))
    return 0 if summary.ok else 3


if __name__ == "__main__":
    sys.exit(main())
