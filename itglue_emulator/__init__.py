"""A local IT Glue API emulator: a real HTTP(S) server on 127.0.0.1 for tests and the demo.

Written from the public API description (see the project docs), sharing no code with
``core_client``'s client, so that it catches the client's mistakes instead of mirroring
them. Start it with :func:`run_emulator` or ``itglue-ingest emulator``.
"""

from __future__ import annotations

from .runner import Emulator, EmulatorError, run_emulator

__all__ = ["Emulator", "EmulatorError", "run_emulator"]
