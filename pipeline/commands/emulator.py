"""``itglue-ingest emulator``: serve the local IT Glue API emulator in the foreground.

Prints one JSON line ``{"base_url": ..., "ca_file": ...}`` when ready (``ca_file`` is
null with ``--no-tls``), then serves until SIGINT/SIGTERM and exits 0.

``--state-dir DIR`` serves the emulator an :class:`EmulatorHome` keeps (what ``demo
--state-dir DIR`` leaves): its data, test CA, port and key, so that ``DIR/config.toml``
works again as it is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from itglue_emulator.cli import parse_rate_limit, serve
from itglue_emulator.faults import FaultConfigError, Faults

DEFAULT_KEY = "test-key"  # the emulator's documented default; it guards nothing real


@dataclass(frozen=True)
class EmulatorHome:
    """A folder keeping one emulator between runs: ``emulator.json`` (its data),
    ``emulator/`` (its test CA and port) and ``api-key`` (owner-only)."""

    folder: Path

    @property
    def store(self) -> Path:
        return self.folder / "emulator.json"

    @property
    def ca_dir(self) -> Path:
        return self.folder / "emulator"

    @property
    def ca_file(self) -> Path:
        return self.ca_dir / "ca.pem"

    @property
    def key_file(self) -> Path:
        return self.folder / "api-key"

    @property
    def _port_file(self) -> Path:
        return self.ca_dir / "port"

    def port(self) -> int:
        """The port the emulator had (0: none yet, pick a free one)."""
        try:
            return int(self._port_file.read_text().strip())
        except (OSError, ValueError):
            return 0

    def api_key(self) -> str | None:
        try:
            return self.key_file.read_text().strip() or None
        except OSError:
            return None

    def remember(self, port: int, api_key: str) -> None:
        """Keep the port and the key for the next start (the key file owner-only)."""
        self.ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._port_file.write_text(f"{port}\n")
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(api_key + "\n")


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
    "--state-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Serve the emulator kept in DIR (by `itglue-ingest demo --state-dir DIR`): its"
    " data, test CA, port and key, so that DIR/config.toml works as it is.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="TCP port on 127.0.0.1 (default: the --state-dir's, else 0: pick a free one).",
)
@click.option(
    "--api-key",
    envvar="ITGLUE_EMULATOR_API_KEY",
    default=None,
    help="The x-api-key clients must send [env ITGLUE_EMULATOR_API_KEY; default: the"
    " --state-dir's, else test-key].",
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
    state_dir: Path | None,
    port: int | None,
    api_key: str | None,
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
    home = EmulatorHome(state_dir.resolve()) if state_dir is not None else None
    if home is not None:
        port = home.port() if port is None else port
        api_key = api_key or home.api_key()
        state_file = state_file or home.store
    try:
        code = serve(
            port=port or 0,
            api_key=api_key or DEFAULT_KEY,
            tls=tls,
            rate_limit=rate_limit,
            retry_after=retry_after,
            seed=seed,
            state_file=state_file,
            max_body_bytes=max_body_bytes,
            faults=faults,
            random_seed=random_seed,
            ca_dir=home.ca_dir if home is not None and tls else None,
        )
    except OSError as e:  # port in use, unreadable state file...
        raise click.ClickException(f"emulator: {e}") from None
    except ValueError as e:  # a corrupt --state file
        raise click.ClickException(f"emulator: invalid state or option: {e}") from None
    raise SystemExit(code)


COMMANDS = (emulator,)
