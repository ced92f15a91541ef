"""Which hosts are loopback, and the one rule for environment proxies that follows from it."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ``::1`` (also IPv4-mapped) and ``localhost``.

    Case, IPv6 brackets and the trailing dot of the fully qualified ``localhost.`` are
    ignored. Names that merely start with a loopback name (``localhost.evil.com``,
    ``127.0.0.1.nip.io``) and an address with a dot appended (``127.0.0.1.``) are not
    loopback: DNS decides where they go.
    """
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost."):
        return True
    try:
        # exactly an IP literal: "127.0.0.1." is not one, getaddrinfo asks DNS for it
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # Python < 3.13 says False for ::ffff:127.0.0.1, yet it reaches 127.0.0.1
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def proxies_for(url: str) -> dict[str, Any] | None:
    """``requests``' ``proxies`` argument for ``url``: no proxy at all for a loopback host.

    ``requests`` honours ``$HTTP_PROXY``/``$HTTPS_PROXY``/``$ALL_PROXY`` even for
    ``127.0.0.1`` unless ``$NO_PROXY`` lists it, so the plain ``http://`` allowed for
    loopback would carry credentials in clear to the proxy, off the machine. ``None``
    entries are dropped by requests after it merged the environment's proxies, which is
    what makes this mapping mean "no proxy for this request". Other hosts: ``None`` (the
    environment decides, as usual).
    """
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return None
    if is_loopback_host(host):
        return {"http": None, "https": None, "all": None}
    return None
