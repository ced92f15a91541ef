"""The table ``once --dry-run`` prints: one line per record, what would happen to it."""

from __future__ import annotations

from collections.abc import Sequence

import click

from itglue_common import escape_controls
from pipeline.runner.dry_run import Planned

COLUMNS = ("record", "would", "organization", "document", "files", "why")
WIDEST = 48  # characters per cell: a long subject or path must not hide the rest


def print_plan(plan: Sequence[Planned]) -> None:
    if not plan:
        click.echo("nothing to do: no new record in any source")
        return
    rows = [
        [
            f"{p.source}:{p.source_ref}",
            p.action,
            p.organization,
            p.name,
            p.files,
            p.detail,
        ]
        for p in plan
    ]
    # names, subjects and reasons come from outside: escaped, then cut to a cell
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(c[i]) for c in [list(COLUMNS), *cells]) for i in range(len(COLUMNS))]
    click.echo("  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    click.echo(f"{len(plan)} record(s)")


def _cell(value: str) -> str:
    text = escape_controls(value)
    return text if len(text) <= WIDEST else text[: WIDEST - 1] + "…"
