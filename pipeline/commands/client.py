"""``itglue-ingest auth|cache|health``: the key, the metadata cache, the API's health.

``auth`` manages the instance's key in the system keyring (never printed, prompted
without echo). ``cache`` inspects, refreshes, searches and compacts the metadata cache.
``health`` asks IT Glue (through the resilient client) and reports the breaker, the
rate limiter and the cache; it exits non-zero when unhealthy, so monitors can call it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from itglue_common import escape_controls, human_size
from pipeline.settings import Settings
from pipeline.state_database import state_exists

from .common import (
    ConfigFileError,
    build_client,
    client_errors,
    is_tty,
    resolve_settings,
    settings_options,
)
from .daemon_status import daemon_dict, daemon_lines, read_heartbeat

if TYPE_CHECKING:
    from core_client.cache import MetadataCache
    from core_client.client import ITGlueClient

KINDS = ("organizations", "configurations", "contacts", "documents")


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


# -- auth ------------------------------------------------------------------------------


def _auth_settings(config_path: Path | None, instance: str | None) -> Settings:
    return resolve_settings(config_path, {"instance": instance} if instance else {})


_config_opt = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="ITGLUE_INGEST_CONFIG",
    help="TOML configuration (its [itglue] instance, api_key_env and api_key_file).",
)
_instance_opt = click.option(
    "--instance",
    help="Instance name (keyring entry). Default: the config's (its default_instance with"
    " [itglue.instances.NAME] tables), else 'default'.",
)


@click.group()
def auth() -> None:
    """Store, remove or check the IT Glue API key of an instance (system keyring)."""


@auth.command("set")
@_config_opt
@_instance_opt
@click.option(
    "--stdin", "from_stdin", is_flag=True, help="Read the key from standard input (scripts)."
)
def auth_set(config_path: Path | None, instance: str | None, from_stdin: bool) -> None:
    """Prompt for the key (not echoed) and store it in the keyring."""
    from core_client.auth import set_api_key
    from core_client.exceptions import ConfigurationError

    name = _auth_settings(config_path, instance).selected_instance
    if from_stdin:
        value = sys.stdin.readline().strip()
    else:
        value = click.prompt(
            f"IT Glue API key for instance {name!r}",
            hide_input=True,
            confirmation_prompt=True,
            err=True,
        )
    try:
        set_api_key(name, value)
    except ConfigurationError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"API key stored in the keyring for instance {name!r}.")


@auth.command("delete")
@_config_opt
@_instance_opt
def auth_delete(config_path: Path | None, instance: str | None) -> None:
    """Remove the instance's key from the keyring."""
    from core_client.auth import delete_api_key
    from core_client.exceptions import ConfigurationError

    name = _auth_settings(config_path, instance).selected_instance
    try:
        deleted = delete_api_key(name)
    except ConfigurationError as e:
        raise click.ClickException(str(e)) from None
    if deleted:
        click.echo(f"API key of instance {name!r} deleted from the keyring.")
    else:
        click.echo(f"No API key stored in the keyring for instance {name!r}.")


@auth.command("status")
@_config_opt
@_instance_opt
@click.option("--api-key-env", help="Also check this environment variable.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def auth_status(
    config_path: Path | None, instance: str | None, api_key_env: str | None, as_json: bool
) -> None:
    """Whether a key is stored for the instance / an env variable is set (never the key).

    Exits 1 when the client would find no key.
    """
    from core_client.auth import DEFAULT_ENV, api_key_status

    settings = _auth_settings(config_path, instance)
    name = settings.selected_instance
    table = settings.itglue.named[name]
    env = api_key_env or table.api_key_env
    key_file = table.api_key_file
    keyring_status = api_key_status(name)
    stored = keyring_status["source"] == "keyring"
    env_status = api_key_status(name, api_key_env=env) if env else None
    file_status = api_key_status(name, api_key_file=key_file) if key_file else None
    effective = file_status or env_status or keyring_status
    report = {
        "instance": name,
        "keyring_available": keyring_status["keyring_available"],
        "keyring_key_stored": stored,
        "api_key_env": env,
        "api_key_env_set": bool(env_status and env_status["configured"]),
        "api_key_file": key_file,
        "api_key_file_usable": bool(file_status and file_status["configured"]),
        "default_env": DEFAULT_ENV,
        "default_env_set": keyring_status["source"] == f"env:{DEFAULT_ENV}",
        "configured": bool(effective["configured"]),
        "source": effective["source"],
        "problem": effective["problem"] or keyring_status["problem"],
    }
    if as_json:
        _echo_json(report)
    else:
        click.echo(f"instance:        {name}")
        if not report["keyring_available"]:
            click.echo(f"keyring:         unavailable ({keyring_status['problem']})")
        else:
            click.echo(f"keyring:         {'key stored' if stored else 'no key stored'}")
        if env:
            click.echo(
                f"api_key_env:     {env} ({'set' if report['api_key_env_set'] else 'NOT set'})"
            )
        else:
            click.echo("api_key_env:     not configured")
        if file_status is not None:
            state = (
                "usable" if file_status["configured"] else f"NOT usable: {file_status['problem']}"
            )
            click.echo(f"api_key_file:    {key_file} ({state})")
        if report["configured"]:
            click.echo(f"the client uses: {report['source']}")
        else:
            hint = (
                "configure api_key_env or api_key_file (no keyring on this machine)"
                if not report["keyring_available"]
                else f"run `itglue-ingest auth set --instance {name}`"
            )
            click.echo(f"the client uses: nothing -- no key found; {hint}")
    if not report["configured"]:
        sys.exit(1)


# -- cache -----------------------------------------------------------------------------


@click.group()
def cache() -> None:
    """Inspect, refresh and compact the metadata cache (organizations, documents, ...)."""


@contextmanager
def _open_cache(settings: Settings) -> Iterator[MetadataCache]:
    from core_client.cache import MetadataCache

    from ..state_database import open_cache_database

    c = MetadataCache(open_cache_database(settings))
    try:
        yield c
    finally:
        c.close()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _print_stats(stats: dict[str, Any]) -> None:
    click.echo(f"database:        {stats['database_path']} ({human_size(stats['size_bytes'])})")
    for k, info in stats["kinds"].items():
        if k not in KINDS and not info["count"] and info["last_refresh"] is None:
            continue  # an empty lookup table: not worth a line
        if info["last_refresh"] is None:
            refreshed = "never refreshed"
        else:
            refreshed = (
                f"refreshed {info['last_refresh']} ({_age(info['refresh_age_seconds'])} ago,"
                f" {info['refresh_mode']})"
            )
        rows = (
            f"; rows {_age(info['newest_row_seconds'])} to {_age(info['oldest_row_seconds'])} old"
            if info["count"]
            else ""
        )
        click.echo(f"{k + ':':<24} {info['count']:>8}  {refreshed}{rows}")
    click.echo(f"{'relationships:':<24} {stats['relationship_count']:>8}")
    click.echo(f"documents with content hash: {stats['documents_with_hash']}")
    click.echo(
        f"search index: {stats['search_entries']} records, {stats['document_texts']} document texts"
    )
    click.echo(f"written through: {stats['written']} rows (what the client read or wrote)")
    click.echo(
        f"lookups: hit ratio {stats['cache_hit_rate']:.1%} ({stats['hits']} hits,"
        f" {stats['misses']} misses); stale answers served: {stats['stale_served']}"
    )


@cache.command("stats")
@settings_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cache_stats(settings: Settings, as_json: bool) -> None:
    """Counts per kind, size, refresh times and hit rate (no API call, no key needed)."""
    with _open_cache(settings) as c:
        stats = c.get_statistics()
    if as_json:
        _echo_json(stats)
    else:
        _print_stats(stats)


class _Progress:
    """Counts records as they stream: a rich progress line on a TTY, plain lines otherwise."""

    def __init__(self) -> None:
        self._rich: Any = None
        if is_tty():
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._rich = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TextColumn("{task.completed:>8} records"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )

    def __enter__(self) -> _Progress:
        if self._rich is not None:
            self._rich.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.__exit__(*exc)

    def track(self, kind: str) -> Callable[[int], None]:
        if self._rich is not None:
            task = self._rich.add_task(kind, total=None)

            def update_rich(count: int) -> None:
                self._rich.update(task, completed=count)

            return update_rich
        last = [0.0]

        def update_plain(count: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 2.0:  # a line every 2 s at most
                last[0] = now
                click.echo(f"{kind}: {count} records...", err=True)

        return update_plain


def _with_organization(docs: Iterable[Any], org_id: str) -> Iterator[dict[str, Any]]:
    """Documents of one organization's listing, each carrying its organization id."""
    from core_client.cache.records import flatten

    for doc in docs:
        data = flatten(doc)
        if not data.get("organization-id"):
            data["organization-id"] = org_id
        yield data


def _all_documents(client: ITGlueClient, org_ids: list[str]) -> Iterator[dict[str, Any]]:
    for org_id in org_ids:
        yield from _with_organization(client.list_documents(org_id), org_id)


def _refresh_documents(
    client: ITGlueClient,
    c: MetadataCache,
    all_organizations: bool,
    max_age_hours: float | None,
    progress: Callable[[int], None],
) -> str:
    """Refresh documents; returns the summary line.

    IT Glue lists documents per organization only, so a refresh costs at least one
    request per organization. By default only the organizations the cache holds
    documents of (uploaded by the pipeline, or seen by an earlier full refresh) are
    listed, each swapped in on its own; ``--all-organizations`` lists every cached
    organization as one full refresh.
    """
    started = time.monotonic()
    if all_organizations:
        org_ids = c.ids("organizations")
        count = c.refresh("documents", _all_documents(client, org_ids), progress=progress)
        return (
            f"documents: {count} records from {len(org_ids)} organizations "
            f"in {time.monotonic() - started:.1f} s"
        )
    org_ids = c.document_organizations()
    if not org_ids:
        return (
            "documents: none cached yet, nothing to refresh (--all-organizations lists "
            "every organization's, one request each at least)"
        )
    if max_age_hours is not None:
        org_ids = [
            o
            for o in org_ids
            if c.is_stale("documents", max_age_hours=max_age_hours, organization_id=o)
        ]
        if not org_ids:
            return f"documents: fresh (refreshed within {max_age_hours:g} h), skipped"
    total = 0
    for org_id in org_ids:
        done = total

        def report(n: int, done: int = done) -> None:
            progress(done + n)

        total += c.refresh(
            "documents",
            _with_organization(client.list_documents(org_id), org_id),
            organization_id=org_id,
            progress=report,
        )
    return (
        f"documents: {total} records from {len(org_ids)} organizations with cached documents "
        f"in {time.monotonic() - started:.1f} s"
    )


@cache.command("refresh")
@settings_options
@click.option(
    "--kind",
    "kinds",
    type=click.Choice(KINDS),
    multiple=True,
    help="Refresh only this kind (repeatable). Default: all.",
)
@click.option(
    "--max-age",
    "max_age_hours",
    type=click.FloatRange(min=0),
    help="Skip what was refreshed less than this many hours ago.",
)
@click.option(
    "--all-organizations",
    is_flag=True,
    help="Documents: list every organization's (one request per organization at least), "
    "not only those the cache holds documents of.",
)
def cache_refresh(
    settings: Settings,
    kinds: tuple[str, ...],
    max_age_hours: float | None,
    all_organizations: bool,
) -> None:
    """Re-read organizations, configurations, contacts and documents from IT Glue.

    Each kind is streamed from the paginated listing (1,000 per request) and swapped in
    atomically; a failure leaves that kind's cached data as it was (exit code 1).
    """
    from core_client.cache.incremental import CacheRefresher
    from core_client.exceptions import ITGlueError

    selected = [k for k in KINDS if k in kinds] if kinds else list(KINDS)
    with client_errors():
        client = build_client(settings)
    failed = False
    try:
        c = client.cache
        with _Progress() as progress:
            for k in selected:
                whole_kind = k != "documents" or all_organizations
                if (
                    whole_kind
                    and max_age_hours is not None
                    and not c.is_stale(k, max_age_hours=max_age_hours)
                ):
                    click.echo(f"{k}: fresh (refreshed within {max_age_hours:g} h), skipped")
                    continue
                started = time.monotonic()
                try:
                    if k == "documents":
                        line = _refresh_documents(
                            client, c, all_organizations, max_age_hours, progress.track(k)
                        )
                    else:
                        listed = CacheRefresher(client, c).refresh(
                            k, full=True, progress=progress.track(k)
                        )
                        count = listed.records
                        line = f"{k}: {count} records in {time.monotonic() - started:.1f} s"
                except ITGlueError as e:
                    failed = True
                    click.echo(
                        f"{k}: refresh failed, cached data kept: {escape_controls(str(e))}",
                        err=True,
                    )
                    continue
                click.echo(line)
    finally:
        client.close()
    if failed:
        sys.exit(1)


SEARCHED = ("organizations", "configurations", "contacts", "locations", "documents")


@cache.command("search")
@settings_options
@click.argument("query")
@click.option(
    "--kind",
    "kinds",
    type=click.Choice(SEARCHED),
    multiple=True,
    help="Only this kind (repeatable). Default: all.",
)
@click.option("--organization", help="Only this organization's records (its name or id).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cache_search(
    settings: Settings,
    query: str,
    kinds: tuple[str, ...],
    organization: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Full-text search of the cache: names, serials, hostnames, IPs, notes, document
    names and the text of delivered documents; best match first. No API call.

    Every word must match (as a prefix: "back" finds "backup"); "quoted words" match
    as a phrase. Works while IT Glue is slow or down.
    """
    with _open_cache(settings) as c:
        org_id: str | None = None
        if organization is not None:
            found = None if organization.isdigit() else c.find_organization_by_name(organization)
            org_id = organization if found is None else found.id
            if found is None and not organization.isdigit():
                raise click.ClickException(
                    f"no cached organization is called {escape_controls(organization)!r}"
                )
        hits = c.search(query, kinds=kinds or None, organization_id=org_id, limit=limit)
    if not hits.complete:
        # ranked among a bounded set (names, then identifying fields, then the most
        # recently cached): say so rather than let the list pass for every match
        more = (
            f"first {len(hits)} of at least {hits.total:,} matches, names and identifying"
            " fields first; add a word, --kind or --organization to rank them all"
        )
    elif hits.total > len(hits):
        more = f"{len(hits)} of {hits.total:,} matches; --limit shows more"
    else:
        more = ""
    if as_json:
        _echo_json([hit.__dict__ for hit in hits])
        if more:
            click.echo(more, err=True)  # stdout stays one JSON document
        return
    if not hits:
        click.echo("nothing found")
        return
    for hit in hits:
        where = f" ({escape_controls(hit.organization)})" if hit.organization else ""
        click.echo(f"{hit.kind[:-1]} {hit.id}: {escape_controls(hit.name)}{where}")
        click.echo(f"    {escape_controls(' '.join(hit.snippet.split()))}")
    if more:
        click.echo(more)


@cache.command("vacuum")
@settings_options
def cache_vacuum(settings: Settings) -> None:
    """Compact the cache's storage: on SQLite the instance database (cache and ledger),
    truncating its WAL; on PostgreSQL VACUUM (ANALYZE) of the cache's tables."""
    with _open_cache(settings) as c:
        result = c.vacuum()
        where, dialect = c.db.describe(), c.db.dialect
    click.echo(
        f"vacuumed {where}: {human_size(result['size_before'])} -> "
        f"{human_size(result['size_after'])}"
    )
    if dialect == "postgresql":
        click.echo(
            "PostgreSQL reuses the space freed; it returns it to the system only with"
            " VACUUM FULL (locks the tables: for the database's administrator)"
        )


# -- health ----------------------------------------------------------------------------


def _print_health(report: dict[str, Any]) -> None:
    click.echo(f"status:          {report.get('status')}")
    for key in ("instance", "base_url", "api_key_valid", "response_time_ms", "error"):
        if key in report and report[key] is not None:
            # the error is the server's or the network's words: printed escaped
            click.echo(f"{key + ':':<16} {escape_controls(str(report[key]))}")
    for section in ("circuit_breaker", "rate_limiter"):
        value = report.get(section)
        if isinstance(value, dict):
            click.echo(f"{section}:")
            for k, v in sorted(value.items()):
                click.echo(f"  {k}: {v}")
    stats = report.get("cache")
    if isinstance(stats, dict) and "organization_count" in stats:
        click.echo("cache:")
        click.echo(
            f"  organizations {stats['organization_count']}, configurations "
            f"{stats['configuration_count']}, contacts {stats['contact_count']}, documents "
            f"{stats['document_count']}; hit rate {stats['cache_hit_rate']:.1%}; "
            f"{human_size(stats['size_bytes'])}"
        )


@click.command()
@settings_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for monitors).")
def health(settings: Settings, as_json: bool) -> None:
    """Check IT Glue reachability and the key; exit 1 when unhealthy, 2 when misconfigured.

    It also says whether the daemon of this state folder runs (its heartbeat; `status`
    has the rest), which does not change the exit status.
    """
    # with [itglue.instances.NAME] and no --instance: each instance, healthy when all are
    several = bool(settings.itglue.instances) and not settings.instance_selected
    names = list(settings.itglue.named) if several else [settings.selected_instance]
    reports = {name: _instance_health(settings, name, as_json) for name in names}
    if several:
        healthy = all(r.get("status") == "healthy" for r in reports.values())
        report: dict[str, Any] = {
            "status": "healthy" if healthy else "unhealthy",
            "instances": reports,
        }
    else:
        (report,) = reports.values()
    # this command made its own client: say whether the daemon runs, and how it is
    daemon: list[str] = []
    try:
        heartbeat = read_heartbeat(settings) if state_exists(settings) else None
        report["daemon"] = daemon_dict(heartbeat)
        daemon = daemon_lines(heartbeat)
    except Exception as e:  # not this user's database, a server down: the rest still counts
        report["daemon"] = {"state": "unknown", "error": f"{type(e).__name__}: {e}"}
    if as_json:
        _echo_json(report)
    else:
        for i, (name, one) in enumerate(reports.items()):
            if several:
                if i:
                    click.echo()
                click.echo(f"instance {name}:")
            _print_health(one)
        for line in daemon:
            click.echo(line)
    if report.get("status") != "healthy":
        sys.exit(1)


def _instance_health(settings: Settings, name: str, as_json: bool) -> dict[str, Any]:
    """The health report of one instance (exit 2 when its client cannot be built)."""
    try:
        with client_errors():
            client = build_client(settings, name)
    except ConfigFileError as e:
        message = f"instance {name!r}: {e.message}" if settings.itglue.instances else e.message
        if as_json:
            _echo_json({"status": "unhealthy", "error": message})
            sys.exit(e.exit_code)
        raise ConfigFileError(message) from None
    try:
        report: dict[str, Any] = client.health_check().as_dict()
        try:
            report["cache"] = client.cache.get_statistics()
        except Exception as e:  # a broken cache makes the report worse, not absent
            report["cache"] = {"error": f"{type(e).__name__}: {e}"}
    finally:
        client.close()
    return report


COMMANDS = (auth, cache, health)
