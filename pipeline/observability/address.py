"""The ``[observability] listen`` address."""

from __future__ import annotations


def parse_listen(value: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"``, ``"[::1]:9464"`` or ``":9464"`` (every interface) ->
    (host, port). :raises ValueError: not host:port."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f'{value!r} is not host:port (e.g. "127.0.0.1:9464")')
    host = host.strip("[]") if host.startswith("[") else host
    if ":" in host and not value.startswith("["):
        raise ValueError(f"{value!r}: write an IPv6 address in brackets ([::1]:9464)")
    return host or "0.0.0.0", int(port)  # noqa: S104 (the admin asked for every interface)
