"""``itglue-ingest emulator``: serve the local IT Glue API emulator in the foreground.

Prints one JSON line ``{"base_url": ..., "ca_file": ...}`` when ready (``ca_file`` is
null with ``--no-tls``), then serves until SIGINT/SIGTERM and exits 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from itglue_emulator.cli import parse_rate_limit, serve
from itglue_emulator.faults import FaultConfigError, Faults


def _rate_limit(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, float]:
    try:
        return parse_rate_limit(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _faults(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        doc = json.loads(value)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}") from None
    try:
        Faults().configure(doc)  # validate now: a bad document is a usage error
    except FaultConfigError as e:
        raise click.BadParameter(str(e)) from None
    return doc


@click.command("emulator")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="TCP port on 127.0.0.1 (0: pick a free one).",
)
@click.option(
    "--api-key",
    envvar="ITGLUE_EMULATOR_API_KEY",
    default="test-key",
    help="The x-api-key clients must send [env ITGLUE_EMULATOR_API_KEY; default test-key].",
)
@click.option(
    "--tls/--no-tls",
    default=True,
    show_default=True,
    help="HTTPS with a fresh test CA (its PEM path is printed as ca_file).",
)
@click.option(
    "--rate-limit",
    default="3000/300",
    show_default=True,
    callback=_rate_limit,
    help="Sliding-window budget per API key: REQUESTS/SECONDS.",
)
@click.option("--retry-after", is_flag=True, help="Send Retry-After on 429 answers.")
@click.option(
    "--seed",
    type=click.Choice(["demo"]),
    default=None,
    help="Start with demo organizations, configurations and contacts.",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Load the store from FILE at start, save it on exit.",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(1),
    default=None,
    help="Answer 413 to request bodies larger than this (default 64 MiB).",
)
@click.option(
    "--faults",
    "faults",
    default=None,
    callback=_faults,
    help="Initial faults as JSON, e.g. '{\"error_rate\": 0.1}'.",
)
@click.option(
    "--random-seed", type=int, default=None, help="Seed the fault RNG for reproducible runs."
)
def emulator(
    port: int,
    api_key: str,
    tls: bool,
    rate_limit: tuple[int, float],
    retry_after: bool,
    seed: str | None,
    state_file: Path | None,
    max_body_bytes: int | None,
    faults: dict[str, Any] | None,
    random_seed: int | None,
) -> None:
    """Serve the IT Glue API emulator on 127.0.0.1 until SIGINT/SIGTERM."""
    try:
        code = serve(
            port=port,
            api_key=api_key,
            tls=tls,
            rate_limit=rate_limit,
            retry_after=retry_after,
            seed=seed,
            state_file=state_file,
            max_body_bytes=max_body_bytes,
            faults=faults,
            random_seed=random_seed,
        )
    except OSError as e:  # port in use, unreadable state file...
        raise click.ClickException(f"emulator: {e}") from None
    except ValueError as e:  # a corrupt --state file
        raise click.ClickException(f"emulator: invalid state or option: {e}") from None
    raise SystemExit(code)


COMMANDS = (emulator,)
