"""Helpers shared by the CLI command modules: loading the configuration, building the client.

``config_option`` gives every command the same ``-c/--config FILE`` behaviour: the file is
read and validated by :func:`pipeline.settings.load_settings`; a bad file is one clean
message (naming the key) and exit code 2, never a traceback. ``settings_options`` adds
the same option plus a few overrides (``--instance``, ``--base-url``, ...) so that
commands like ``health`` also work without a file. ``build_client`` (from
:mod:`pipeline.clients`) maps the ``[itglue]`` table onto the client constructor, so every
command and the engine build it the same way.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from pipeline.clients import build_client as build_client  # the commands' import
from pipeline.settings import ConfigError, Settings, load_settings, parse_settings

CONFIG_ENVVAR = "ITGLUE_INGEST_CONFIG"

F = TypeVar("F", bound=Callable[..., Any])


class ConfigFileError(click.ClickException):
    """A configuration problem: printed as ``Error: <message>``, exit code 2."""

    exit_code = 2


def load_config(path: Path) -> Settings:
    """``load_settings`` with :class:`ConfigError` turned into a clean CLI error."""
    try:
        return load_settings(path)
    except ConfigError as e:
        raise ConfigFileError(str(e)) from None


def _load_callback(ctx: click.Context, param: click.Parameter, value: Path | None) -> Any:
    if value is None:
        return None
    return load_config(value)


def config_option(f: F) -> F:
    """``-c/--config FILE`` (or ``$ITGLUE_INGEST_CONFIG``), required; passes ``settings``."""
    return click.option(
        "-c",
        "--config",
        "settings",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=CONFIG_ENVVAR,
        required=True,
        callback=_load_callback,
        help=f"TOML configuration file (or ${CONFIG_ENVVAR}).",
    )(f)


def settings_options(f: F) -> F:
    """``-c/--config FILE`` (optional) plus overrides; passes one ``settings: Settings``.

    Without a file the defaults apply (keyring key of instance ``default``, US region,
    the per-user state folder); the options override the file's ``[itglue]`` and
    ``[state]`` values either way.
    """

    @click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=CONFIG_ENVVAR,
        help=f"TOML configuration file (or ${CONFIG_ENVVAR}).",
    )
    @click.option("--instance", help="IT Glue instance name (keyring entry, state database).")
    @click.option("--base-url", help="API base URL (instead of --region).")
    @click.option("--region", type=click.Choice(["us", "eu", "au"]), help="API region.")
    @click.option(
        "--ca-bundle",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="Trust this CA certificate bundle (PEM).",
    )
    @click.option("--api-key-env", help="Read the API key from this environment variable.")
    @click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="State folder (database of the instance).",
    )
    @functools.wraps(f)
    def wrapper(
        *args: Any,
        config_path: Path | None,
        instance: str | None,
        base_url: str | None,
        region: str | None,
        ca_bundle: Path | None,
        api_key_env: str | None,
        state_dir: Path | None,
        **kwargs: Any,
    ) -> Any:
        overrides = {
            "instance": instance,
            "base_url": base_url,
            "region": region,
            "ca_bundle": str(ca_bundle) if ca_bundle else None,
            "api_key_env": api_key_env,
        }
        kwargs["settings"] = resolve_settings(
            config_path, {k: v for k, v in overrides.items() if v is not None}, state_dir
        )
        return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def resolve_settings(
    config_path: Path | None, itglue_overrides: dict[str, Any], state_dir: Path | None = None
) -> Settings:
    """The file's settings (or the defaults) with command-line overrides applied, validated."""
    base = load_config(config_path) if config_path is not None else Settings()
    if not itglue_overrides and state_dir is None:
        return base
    overrides = dict(itglue_overrides)
    data = base.model_dump(mode="json", exclude_unset=False)
    # with [itglue.instances.NAME], --instance selects one and the rest override its table
    selected = overrides.pop("instance", None) if base.itglue.instances else None
    table = data["itglue"]
    if base.itglue.instances:
        name = selected or base.itglue.default_name
        table = data["itglue"]["instances"].get(name, {})
    if "base_url" in overrides:
        table["region"] = None
    if "region" in overrides:
        table["base_url"] = None
    if "api_key_env" in overrides:  # the command line names where the key is
        table["api_key_file"] = None
    table.update(overrides)
    if state_dir is not None:
        data["state"]["dir"] = str(state_dir)
    try:
        origin = str(config_path) if config_path else "<command line>"
        settings = parse_settings(data, origin, config_dir=base.config_dir)
        if selected is not None:
            settings.select_instance(selected)
        return settings
    except ConfigError as e:
        raise ConfigFileError(str(e)) from None


@contextmanager
def client_errors() -> Iterator[None]:
    """Turn the client's configuration errors (no key, insecure URL) into clean CLI errors.

    Operational errors (API down, auth refused) are left to the command, which knows
    whether they mean "unhealthy" or "failed".
    """
    from core_client.exceptions import ConfigurationError

    try:
        yield
    except ConfigurationError as e:
        raise ConfigFileError(str(e)) from None


def is_tty() -> bool:
    """Whether stderr is an interactive terminal (rich progress) or a pipe/log (plain lines)."""
    try:
        return os.isatty(2)
    except OSError:
        return False
