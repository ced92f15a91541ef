"""The exit statuses of ``itglue-ingest once`` (and ``retry``, ``status``), in one table.

``once --help`` and docs/admin.md show the codes of ``once``; a test checks that both
list every one. A cron job or a systemd timer decides from the status alone what to do
next.
"""

from __future__ import annotations

import textwrap
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runner.outcomes import RunSummary


class ExitCode(IntEnum):
    OK = 0
    USAGE = 2
    FAILED = 3
    WORK_LEFT = 4
    KEY_REFUSED = 5
    MAX_DURATION = 6
    STALE_HEARTBEAT = 7  # status only: the daemon stopped beating without a clean stop

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "every record delivered or found to be a duplicate",
    ExitCode.USAGE: "usage or configuration error (an unknown record id for retry too)",
    ExitCode.FAILED: "some records failed (status shows why, retry requeues them), or a"
    " source could not scan (unreachable feed or mailbox, missing drop folder)",
    ExitCode.WORK_LEFT: "work left for the next run: interrupted (SIGINT/SIGTERM), records"
    " still failing transiently at once_timeout, a scan that did not finish, or items a"
    " source deferred to its next scan",
    ExitCode.KEY_REFUSED: "IT Glue refused the API key (wrong, revoked, or another"
    " region): the run stopped at once; nothing was failed",
    ExitCode.MAX_DURATION: "once_max_duration ended the run with records left (the next"
    " run goes on)",
    ExitCode.STALE_HEARTBEAT: "(status) the daemon's heartbeat is stale: crashed, killed or hung",
}

ONCE_CODES = tuple(c for c in ExitCode if c is not ExitCode.STALE_HEARTBEAT)


def once_exit_code(summary: RunSummary) -> ExitCode:
    """The status of a ``once`` run; the first that applies, in the table's order of
    urgency: a refused key, failures, the duration cap, work left."""
    if summary.key_refused:
        return ExitCode.KEY_REFUSED
    if summary.failed or summary.source_errors:
        return ExitCode.FAILED
    if summary.max_duration_reached:
        return ExitCode.MAX_DURATION
    if summary.pending or summary.interrupted or summary.timed_out or summary.deferred:
        return ExitCode.WORK_LEFT
    return ExitCode.OK


def exit_code_table(width: int = 78) -> str:
    """The codes of ``once`` as text, one entry per code (``once --help``)."""
    return "\n".join(
        textwrap.fill(
            code.meaning, width, initial_indent=f"{code.value}  ", subsequent_indent="   "
        )
        for code in ONCE_CODES
    )
