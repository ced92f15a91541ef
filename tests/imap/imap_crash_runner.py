"""The process the crash test kills: ``Engine.run_once`` that dies (``os._exit``) right
after the first record is delivered and recorded, before the source's post-action.

Usage: ``python -m tests.imap.imap_crash_runner SETTINGS_JSON``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pipeline
from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import parse_settings
from tests.imap.imap_helpers import BUILTINS_BUT_IMAP, RecordingPlugin


class DieAfterDelivery:
    @pipeline.hookimpl
    def ingest_record_delivered(self, record: object, result: object) -> None:
        os._exit(17)  # as abrupt as SIGKILL: no cleanup, no ack


def main() -> int:
    settings = parse_settings(json.loads(Path(sys.argv[1]).read_text()))
    pm = get_plugin_manager(
        load_entrypoints=False,
        block=BUILTINS_BUT_IMAP,
        extra=[RecordingPlugin(), DieAfterDelivery()],
    )
    with Engine(settings, pm) as engine:
        engine.run_once()
    return 0


if __name__ == "__main__":
    sys.exit(main())
