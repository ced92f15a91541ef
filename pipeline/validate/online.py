"""``validate --online``: does IT Glue accept the key, do the sources' servers answer."""

from __future__ import annotations

import socket

from itglue_common import escape_controls

from ..clients import build_client
from ..settings import Settings
from ..sources import SourceOptions

CONNECT_TIMEOUT = 5.0  # seconds per source server


def itglue_problems(settings: Settings) -> list[str]:
    """The health check of ``itglue-ingest health`` (one cheap authenticated request),
    of each instance."""
    from core_client.exceptions import ConfigurationError

    from .secrets import instance_key

    problems = []
    for name, it in settings.itglue.named.items():
        key = instance_key(settings, name)
        try:
            client = build_client(settings, name)
        except ConfigurationError as e:
            problems.append(f"{key}: {e}")
            continue
        try:
            report = client.health_check().as_dict()
        finally:
            client.close()
        if report.get("status") != "healthy":
            why = escape_controls(str(report.get("error") or report.get("status")))
            problems.append(f"{key}: {it.base_url or client.base_url} is not usable: {why}")
    return problems


def endpoint_problems(key: str, options: SourceOptions) -> list[str]:
    """A line for each server of the source that does not accept a TCP connection."""
    problems = []
    for host, port in options.endpoints():
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
        except OSError as e:
            why = e.strerror or type(e).__name__
            problems.append(f"{key}: cannot connect to {host}:{port}: {why}")
    return problems
