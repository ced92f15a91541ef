"""``itglue-ingest run|once|status|retry|plugins``: the engine from the command line.

``once`` exits with a status of :class:`pipeline.exit_codes.ExitCode` (the table is in
its ``--help``) -- always with a message, never a traceback. On a terminal it shows a
progress bar (rich); otherwise plain log lines.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click

from itglue_common import escape_controls as esc
from pipeline.exit_codes import ExitCode, exit_code_table, once_exit_code
from pipeline.ledger import ALL_STATES, Ledger, LedgerEntry
from pipeline.observability.heartbeat import Heartbeat
from pipeline.runner import Engine, Progress, RunSummary
from pipeline.settings import ConfigError, Settings
from pipeline.state_database import describe_state, open_state_database, state_exists

from .common import (
    CONFIG_ENVVAR,
    ConfigFileError,
    client_errors,
    config_option,
    is_tty,
    load_config,
)
from .daemon_status import (
    daemon_dict,
    daemon_lines,
    other_collector_lines,
    read_heartbeats,
    sources_in_trouble,
)
from .lease_status import lease_dict, lease_lines, read_leases
from .plan_table import print_plan

log = logging.getLogger("itglue_ingest.engine")


def _build_engine(settings: Settings, *, dry_run: bool = False) -> Engine:
    try:
        engine = Engine(settings, dry_run=dry_run)
    except ConfigError as e:
        raise ConfigFileError(str(e)) from None
    if settings.pipeline.sink == "itglue":
        # fail fast (exit 2) on a missing key or an insecure URL rather than per record,
        # of every instance (readiness and the prober then see each one)
        try:
            with client_errors():
                for name in engine.context.instances:
                    engine.context.itglue(name)
        except BaseException:
            engine.close()
            raise
    return engine


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM (the engine then shuts down gracefully)."""
    stop = threading.Event()
    received: list[str] = []
    done = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        # no logging here: a handler interrupts the main thread, maybe inside a log call
        received.append(signal.Signals(signum).name)
        stop.set()
        for s in (signal.SIGINT, signal.SIGTERM):  # a second signal ends the process
            signal.signal(s, signal.SIG_DFL)

    def announce() -> None:  # a log line (JSON under --log-format json), not a print
        while not received and not done.wait(0.1):
            pass
        if received:
            log.warning(
                "%s: stopping (finishing the deliveries in flight; signal again to stop"
                " at once -- the journal makes that safe)",
                received[0],
                extra={"signal": received[0]},
            )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    announcer = threading.Thread(target=announce, name="signal-announcer", daemon=True)
    announcer.start()
    try:
        yield stop
    finally:
        done.set()
        announcer.join()
        for s, h in previous.items():
            signal.signal(s, h)


@click.command()
@config_option
def run(settings: Settings) -> None:
    """Run as a daemon: watch every source and deliver until SIGINT/SIGTERM.

    With [observability] listen it serves /metrics, /healthz and /readyz; it writes a
    heartbeat to the state database that `status` reads.
    """
    with _build_engine(settings) as engine, _stop_on_signals() as stop:
        try:
            engine.run(stop)
        except ConfigError as e:  # the listen address cannot be bound
            raise ConfigFileError(str(e)) from None


_ONCE_HELP = f"""Process every source's current backlog, wait for it to finish, exit.

\b
Exit status:
{exit_code_table()}
"""


@click.command(help=_ONCE_HELP)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Scan, route, extract and dedupe (against the ledger and the cache), then print"
    " what would be created where; nothing is uploaded, moved, flagged or recorded.",
)
def once(settings: Settings, as_json: bool, dry_run: bool) -> None:
    if dry_run:
        _dry_run(settings, as_json)
        return
    with _build_engine(settings) as engine, _stop_on_signals() as stop:
        if sys.stdout.isatty() and is_tty() and not as_json:
            summary = once_with_progress(engine, stop)
        else:
            summary = engine.run_once(stop)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        _print_summary(summary)
    code = once_exit_code(summary)
    if code is not ExitCode.OK:
        sys.exit(code)


def _dry_run(settings: Settings, as_json: bool) -> None:
    """``once --dry-run``: the run on a private copy of the state (see
    :mod:`pipeline.runner.dry_run`), then its decisions as a table."""
    from pipeline.runner.dry_run import dry_run_settings, planned, refuse_shared_state

    try:
        refuse_shared_state(settings)
    except ConfigError as e:
        raise ConfigFileError(str(e)) from None
    with (
        dry_run_settings(settings) as private,
        _build_engine(private, dry_run=True) as engine,
        _stop_on_signals() as stop,
    ):
        started = time.time()
        summary = engine.run_once(stop)
        plan = planned(engine.ledger, started)
    if as_json:
        rows = [dataclasses.asdict(p) for p in plan]
        out = {"dry_run": True, "records": rows, "summary": summary.to_dict()}
        click.echo(json.dumps(out, indent=2, default=str))
    else:
        print_plan(plan)
        for source, reason in sorted(summary.source_errors.items()):
            click.echo(f"source {source} could not scan: {esc(reason)}")
        if summary.key_refused:
            click.echo(f"stopped: {esc(summary.key_refused)}")
        click.echo("dry run: nothing was uploaded, moved, flagged or recorded")
    code = once_exit_code(summary)
    if code is not ExitCode.OK:
        sys.exit(code)


def once_with_progress(engine: Engine, stop: threading.Event) -> RunSummary:
    """``engine.run_once`` under a rich progress bar (used by ``once`` and ``demo``)."""
    # per-record INFO lines would tear the bar apart; warnings and errors still show
    engine_log = logging.getLogger("itglue_ingest.engine")
    previous_level = engine_log.level
    if logging.getLogger().getEffectiveLevel() >= logging.INFO:
        engine_log.setLevel(logging.WARNING)
    try:
        return _run_with_bar(engine, stop)
    finally:
        engine_log.setLevel(previous_level)


def _run_with_bar(engine: Engine, stop: threading.Event) -> RunSummary:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar
    from rich.progress import Task as BarTask
    from rich.text import Text

    from pipeline.logs import logs_through

    class Rate(ProgressColumn):
        def render(self, task: BarTask) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.1f}/s" if speed else "-/s")

    # one console for the bar and the log lines: they print above the bar
    console = Console(stderr=True)
    with (
        Bar(
            TextColumn("[bold]ingesting"),
            BarColumn(),
            MofNCompleteColumn(),
            Rate(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console,
        ) as bar,
        logs_through(console),
    ):
        task = bar.add_task("ingest", total=None, detail="")

        def update(p: Progress) -> None:
            bar.update(
                task,
                total=max(p.received, 1),
                completed=p.finished,
                detail=f"{p.delivered} delivered, {p.duplicate} duplicate, {p.failed} failed",
            )

        return engine.run_once(stop, on_progress=update)


def _print_summary(s: RunSummary) -> None:
    head = (
        f"{s.delivered} delivered, {s.duplicate} duplicate, {s.failed} failed,"
        f" {s.pending} pending in {s.elapsed:.1f} s"
    )
    if s.interrupted:
        head += " (interrupted)"
    if s.timed_out:
        head += " (once_timeout reached; pending records are retried on the next run)"
    if s.max_duration_reached:
        head += " (once_max_duration reached; the rest is delivered on the next run)"
    click.echo(head)
    # source references and reasons carry file names, subjects and feed fields: escaped
    for source, counts in sorted(s.by_source.items()):
        click.echo(f"  {source}: " + ", ".join(f"{n} {state}" for state, n in counts.items() if n))
    for source, reason in sorted(s.source_errors.items()):
        click.echo(f"  source {source} could not scan: {esc(reason)}")
    for source, reason in sorted(s.deferred.items()):
        click.echo(f"  source {source} left work for the next run: {esc(reason)}")
    if s.key_refused:
        click.echo(
            f"  stopped: {esc(s.key_refused)}\n  nothing was failed: once"
            " `itglue-ingest health` accepts the key, run again"
        )
    for f in s.failures[:50]:
        ref, reason = esc(str(f["source_ref"])), esc(str(f["reason"]))
        click.echo(f"  failed #{f['id']} {f['source']}:{ref}: {reason}")
    if len(s.failures) > 50:
        click.echo(f"  ... and {len(s.failures) - 50} more (itglue-ingest status)")


@contextmanager
def _ledger(settings: Settings) -> Iterator[Ledger]:
    ledger = Ledger(open_state_database(settings, "ledger"))
    try:
        yield ledger
    finally:
        ledger.close()


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--limit", default=50, show_default=True, help="Failed (and waiting) records to list."
)
@click.option(
    "--records",
    "recent",
    default=0,
    show_default=True,
    help="Also list the N records changed last: state, organization and why it went there.",
)
def status(settings: Settings, as_json: bool, limit: int, recent: int) -> None:
    """The daemon (running, not running, stale heartbeat) and each source's state,
    counts per state and source, the failed records with their reasons.

    \b
    Exit status:
      0  nothing failed; the daemon runs, stopped cleanly, or never ran here
      3  failed records are in the ledger (retry requeues them), or the running
         daemon reports a source it cannot reach
      7  stale heartbeat: the daemon stopped beating without stopping cleanly
         (crashed, killed or hung); 7 wins over 3
      2  usage or configuration error
    """
    where = describe_state(settings)
    if not state_exists(settings):
        if as_json:
            click.echo(json.dumps({"database": where, "sources": {}}))
        else:
            click.echo(f"no state yet ({where} does not exist)")
        return
    with _ledger(settings) as ledger:
        counts = ledger.counts()
        by_collector = ledger.counts_by_collector()
        outcomes = ledger.transform_outcomes()
        failed = ledger.failed(limit=limit)
        waiting = ledger.waiting(limit=limit)
        records = ledger.recent(limit=recent) if recent > 0 else []
    heartbeat, others = read_heartbeats(settings)
    leases = read_leases(settings)
    collector = settings.state.collector
    code = _status_code(counts, heartbeat)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "database": where,
                    "daemon": daemon_dict(heartbeat),
                    **({"owners": lease_dict(leases, collector)} if leases is not None else {}),
                    "other_collectors": {n: daemon_dict(hb) for n, hb in sorted(others.items())},
                    "sources": counts,
                    "collectors": by_collector,
                    "transform_outcomes": outcomes,
                    "failed": [e.to_dict() for e in failed],
                    "waiting": [
                        {**e.to_dict(), "next_attempt_at": e.next_attempt_at} for e in waiting
                    ],
                    **({"records": [_routed(e) for e in records]} if recent > 0 else {}),
                    **(
                        {"instances": _instances(settings, waiting)}
                        if settings.itglue.instances
                        else {}
                    ),
                },
                indent=2,
                default=str,
            )
        )
        sys.exit(code)
    click.echo(f"state: {where}")
    lines = [*daemon_lines(heartbeat), *other_collector_lines(others)]
    for line in [*lines, *lease_lines(leases, collector)]:
        click.echo(line)
    if settings.itglue.instances:
        click.echo("instances:")
        for name, inst in _instances(settings, waiting).items():
            default = " (default)" if inst["default"] else ""
            why = f": {esc(str(inst['reason']))}" if inst["reason"] else ""
            click.echo(f"  {name}{default}: {inst['endpoint']}, {inst['waiting']} waiting{why}")
    if not counts:
        click.echo("no records yet")
        sys.exit(code)
    # several collectors share this ledger: group by collector, say whose each record is
    # (a SQLite ledger is one collector's, whatever host names it had over time)
    several = settings.state.backend == "postgresql" and len(by_collector) > 1
    _print_counts(counts, by_collector if several else {})

    def who(e: LedgerEntry) -> str:
        return f"[{esc(e.collector)}] " if several else ""

    for name in sorted(outcomes):
        told = ", ".join(f"{k} {n}" for k, n in sorted(outcomes[name].items()))
        click.echo(f"{name}: {told}")
    if waiting:
        click.echo("\nwaiting for a retry:")
        for e in waiting:
            click.echo(
                f"  #{e.id} {who(e)}{e.source}:{esc(e.source_ref)} attempt {e.attempts},"
                f" next at {_when(e.next_attempt_at)}: {esc(str(e.reason))}"
            )
    if failed:
        click.echo("\nfailed (itglue-ingest retry requeues them):")
        for e in failed:
            click.echo(
                f"  #{e.id} {who(e)}{e.source}:{esc(e.source_ref)} ({_when(e.updated_at)}):"
                f" {esc(str(e.reason))}"
            )
    if records:
        click.echo("\nlatest records (where each went and why):")
        for e in records:
            r = _routed(e)
            where = r["organization"] or (
                f"organization {r['organization_id']}" if r["organization_id"] else "-"
            )
            why = f": {esc(str(r['routing_reason']))}" if r["routing_reason"] else ""
            click.echo(
                f"  #{e.id} {who(e)}{e.source}:{esc(e.source_ref)} {e.state}"
                f" -> {esc(str(where))}{why}"
            )
    sys.exit(code)


def _instances(settings: Settings, waiting: list[LedgerEntry]) -> dict[str, dict[str, Any]]:
    """Each IT Glue instance: its endpoint, the records waiting for it and the latest
    reason one waits (a refused key names its instance there)."""
    out: dict[str, dict[str, Any]] = {}
    for name, it in settings.itglue.named.items():
        # a record not routed yet counts for its source's instance, if any (routing, which
        # failed, chooses the rest: its reason names the instance)
        mine = [e for e in waiting if _instance_of(e) == name]
        out[name] = {
            "default": name == settings.itglue.default_name,
            "endpoint": it.base_url or f"region {it.region or 'us'}",
            "cache": str(settings.state.dir / f"{name}.db"),
            "waiting": len(mine),
            "reason": max(mine, key=lambda e: e.updated_at).reason if mine else None,
        }
    return out


def _instance_of(e: LedgerEntry) -> str | None:
    try:
        return e.record().instance
    except ValueError:  # a row this version cannot read: counted nowhere
        return None


def _print_counts(
    counts: dict[str, dict[str, int]], by_collector: dict[str, dict[str, dict[str, int]]]
) -> None:
    """Records per source and state; per collector and source when ``by_collector``
    names several collectors."""
    states = [s for s in ALL_STATES if any(s in c for c in counts.values())]
    if len(by_collector) <= 1:
        rows = [([source], counts[source]) for source in sorted(counts)]
        heads = ["source"]
    else:
        rows = [
            ([esc(collector or "(unnamed)"), source], sources[source])
            for collector, sources in sorted(by_collector.items())
            for source in sorted(sources)
        ]
        heads = ["collector", "source"]
    widths = [max(len(names[i]) for names, _ in rows) + 2 for i in range(len(heads))]
    if len(heads) > 1:  # (one column: as it always was, the names set the width)
        widths = [max(w, len(h) + 2) for w, h in zip(widths, heads, strict=True)]
    click.echo(
        "".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))
        + "".join(s.rjust(12) for s in states)
    )
    for names, per_state in rows:
        click.echo(
            "".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
            + "".join(str(per_state.get(s, 0)).rjust(12) for s in states)
        )


def _routed(e: LedgerEntry) -> dict[str, Any]:
    routed = e.routed()
    return {
        **e.to_dict(),
        "organization": routed["organization"],
        "routing_reason": routed["reason"],
    }


def _status_code(counts: dict[str, dict[str, int]], heartbeat: Heartbeat | None) -> int:
    if heartbeat is not None and heartbeat.daemon_state() == "stale":
        return ExitCode.STALE_HEARTBEAT
    if any(states.get("failed", 0) for states in counts.values()):
        return ExitCode.FAILED
    if sources_in_trouble(heartbeat):
        return ExitCode.FAILED
    return ExitCode.OK


class UnknownRecordError(click.ClickException):
    """``retry --id N`` with an N the ledger does not know."""

    exit_code = ExitCode.USAGE


@click.command()
@config_option
@click.option("--source", "source", help="Requeue the failed records of this source.")
@click.option("--all-failed", is_flag=True, help="Requeue every failed record.")
@click.option("--id", "ids", type=int, multiple=True, help="Requeue this record (repeatable).")
def retry(settings: Settings, source: str | None, all_failed: bool, ids: tuple[int, ...]) -> None:
    """Requeue failed records (attempts reset); a running daemon picks them up.

    Records waiting for a transient retry that match are made due now as well.
    """
    if not (source or all_failed or ids):
        raise click.UsageError("say which records: --all-failed, --source S or --id N")
    with _ledger(settings) as ledger:
        entries = {i: ledger.get(i) for i in ids}
        unknown = [i for i, e in entries.items() if e is None]
        if unknown:
            raise UnknownRecordError(
                f"no record {', '.join(f'#{i}' for i in unknown)} in {describe_state(settings)}"
                " (itglue-ingest status lists the failed ones); nothing was requeued"
            )
        n = ledger.requeue(source=source, ids=ids, all_failed=all_failed)
    for i, e in entries.items():
        if e is not None and e.state not in ("failed", "received", "ready", "delivering"):
            click.echo(f"record #{i} is {e.state}: nothing to requeue")
    click.echo(f"requeued {n} record(s)")


@click.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=CONFIG_ENVVAR,
    help="TOML configuration (its [plugins] block and modules apply).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(config_path: Path | None, as_json: bool) -> None:
    """Every plugin with its hooks and distribution."""
    from pipeline.plugins import describe_plugins
    from pipeline.runner import plugin_manager_for

    settings = load_config(config_path) if config_path is not None else Settings()
    try:
        described = describe_plugins(plugin_manager_for(settings))
    except ConfigError as e:
        raise ConfigFileError(str(e)) from None
    except Exception as e:  # a broken third-party plugin: say which, no traceback
        raise ConfigFileError(f"cannot load plugins: {type(e).__name__}: {e}") from None
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    for p in described:
        hooks: Any = p["hooks"]
        click.echo(f"{p['name']}  [{p['distribution']}]")
        click.echo("  " + (", ".join(hooks) if hooks else "(no hooks)"))


COMMANDS: tuple[click.Command, ...] = (run, once, status, retry, plugins)
