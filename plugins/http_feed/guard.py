"""Where the feed may send the source: hosts (``download_hosts``) and addresses.

A feed names URLs (downloads, next links, redirects), so a hostile or compromised feed
could make the source fetch from internal services. Two rules, checked on every hop:

* the host: the feed's own (scheme, host and port of ``url``) or a ``download_hosts``
  entry (``host``, ``host:port``, ``*.domain``, ``*``; no port = the scheme's default);
* the address: a host that resolves to a loopback, private, link-local, unique-local,
  multicast, reserved or unspecified address is refused, unless the configuration names
  that host exactly (``url`` or an exact ``download_hosts`` entry), or, for loopback,
  ``allow_insecure_loopback``.

The address is checked where the socket connects (:class:`GuardedAdapter`): the one
checked is the one connected to, so a name that resolves differently a moment later (DNS
rebinding) gains nothing. Through a proxy the proxy resolves the name, so the source can
only check its own resolution first (:meth:`HostPolicy.resolve_problem`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from itglue_common import is_loopback_host

from .deadline import watch_socket

DEFAULT_PORTS = {"https": 443, "http": 80}

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class AddressRefused(Exception):
    """A connection to an address the policy refuses (raised before connecting).

    Deliberately not an ``OSError``: urllib3 and requests let it through unchanged, so it
    is neither retried nor mistaken for a network failure."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HostPattern(NamedTuple):
    host: str  # lower case; "*" any host, "*.example.com" its subdomains
    port: int | None  # None: the scheme's default port

    def matches(self, host: str, port: int, scheme: str) -> bool:
        if port != (self.port if self.port is not None else DEFAULT_PORTS.get(scheme)):
            return False
        if self.host == "*":
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host


def parse_host_pattern(text: str) -> HostPattern:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port``, ``*.domain[:port]``, ``*[:port]``;
    ``ValueError`` says what is wrong."""
    value = text.strip().lower()
    host, port = value, None
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"not a host or host:port: {text!r}")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"not an IPv6 address in brackets: {text!r}") from None
        return HostPattern(host, _port(rest[1:], text) if rest else None)
    if ":" in value:
        host, _, digits = value.rpartition(":")
        if ":" in host:
            raise ValueError(f"write an IPv6 address in brackets: {text!r}")
        port = _port(digits, text)
    name = host.removeprefix("*.")
    if host != "*" and not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError(f"not a host name (or *, *.domain): {text!r}")
    return HostPattern(host, port)


def _port(digits: str, text: str) -> int:
    if not digits.isdigit() or not 0 < int(digits) < 65536:
        raise ValueError(f"not a valid port in {text!r}")
    return int(digits)


def address_kind(ip: str) -> str | None:
    """What makes ``ip`` non-public ("loopback", "private", ...), or None when public."""
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        ip.split("%", 1)[0]  # an IPv6 zone id (fe80::1%eth0)
    )
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        elif addr in _NAT64:  # reaches the IPv4 address it embeds
            addr = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.is_unspecified:
        return "unspecified"
    if is_loopback_host(str(addr)):
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast:
        return "multicast"
    if isinstance(addr, ipaddress.IPv6Address) and (addr in _UNIQUE_LOCAL or addr.is_site_local):
        return "unique-local"
    if addr.is_private:
        return "private"
    if addr.is_reserved:
        return "reserved"
    if not addr.is_global:
        return "non-public"
    return None


def _host_port(url: str) -> tuple[str, str, int | None]:
    p = urlsplit(url)
    return p.scheme, (p.hostname or "").lower(), p.port or DEFAULT_PORTS.get(p.scheme)


def _shown(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HostPolicy:
    """The two rules for one feed; see the module docstring."""

    def __init__(self, feed_url: str, download_hosts: Sequence[str], allow_loopback: bool) -> None:
        self._feed = _host_port(feed_url)
        self._patterns = [parse_host_pattern(h) for h in download_hosts]
        self._allow_loopback = allow_loopback

    def host_problem(self, url: str) -> str | None:
        """Why ``url``'s host may not be asked, or None (its own origin or a listed host)."""
        scheme, host, port = _host_port(url)
        if (scheme, host, port) == self._feed:
            return None
        if port is not None and any(p.matches(host, port, scheme) for p in self._patterns):
            return None
        return f"{_shown(host, port)} is not the feed's host; list it in download_hosts to allow it"

    def named(self, scheme: str, host: str, port: int) -> bool:
        """Whether the configuration names this host exactly (its addresses are trusted)."""
        host = host.lower().strip("[]")
        if (scheme, host, port) == self._feed:
            return True
        return any(
            not p.host.startswith("*") and p.matches(host, port, scheme) for p in self._patterns
        )

    def address_problem(self, scheme: str, host: str, port: int, ip: str) -> str | None:
        """Why ``host`` may not be reached at ``ip``, or None."""
        kind = address_kind(ip)
        if kind is None or (kind == "loopback" and self._allow_loopback):
            return None
        if self.named(scheme, host, port):
            return None
        article = "an" if kind[0] in "aeiou" else "a"
        extra = " (or set allow_insecure_loopback)" if kind == "loopback" else ""
        return (
            f"{host} resolves to {article} {kind} address ({ip.split('%', 1)[0]}); refused "
            f"unless download_hosts names the host exactly{extra}"
        )

    def resolve_problem(self, url: str) -> str | None:
        """The address rule on the source's own resolution of ``url``'s host, before the
        request (the connection checks again; through a proxy this is the only check)."""
        scheme, host, port = _host_port(url)
        if port is None or self.named(scheme, host, port):
            return None
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return None  # the request reports a name that does not resolve
        problems = [self.address_problem(scheme, host, port, str(i[4][0])) for i in infos]
        return problems[0] if problems and all(problems) else None


class _GuardedConnection(HTTPConnection):
    """Connects only to addresses its :class:`HostPolicy` allows, and puts every socket
    under the current request's :class:`~.deadline.Deadline`."""

    host_policy: HostPolicy

    def _new_conn(self) -> socket.socket:
        if self.proxy is not None:  # the proxy connects for us: see the module docstring
            sock = super()._new_conn()
            watch_socket(sock)
            return sock
        try:
            infos = socket.getaddrinfo(self._dns_host, self.port, 0, socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise NameResolutionError(self.host, self, e) from e
        refused: str | None = None
        error: OSError | None = None
        scheme = "https" if isinstance(self, HTTPSConnection) else "http"
        for family, kind, proto, _, address in infos:
            ip = str(address[0])
            problem = self.host_policy.address_problem(scheme, self.host, self.port, ip)
            if problem:
                refused = refused or problem
                continue
            sock = socket.socket(family, kind, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                watch_socket(sock)  # before connecting: a stop interrupts the connect too
                if isinstance(self.timeout, int | float) or self.timeout is None:
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(address)
                return sock
            except OSError as e:
                sock.close()
                error = e
        if error is None:
            raise AddressRefused(refused or f"{self.host} has no address")
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from error
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept-alive connection: watched by this request now
            watch_socket(self.sock)
        super().request(*args, **kwargs)


class GuardedAdapter(HTTPAdapter):
    """requests' adapter whose connections are :class:`_GuardedConnection` s."""

    def __init__(self, policy: HostPolicy) -> None:
        http_conn = type("GuardedHTTPConnection", (_GuardedConnection,), {"host_policy": policy})
        https_conn = type(
            "GuardedHTTPSConnection", (_GuardedConnection, HTTPSConnection), {"host_policy": policy}
        )
        self._pool_classes = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type(
                "GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}
            ),
        }
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools have their own classes
            manager.pool_classes_by_scheme = self._pool_classes
        return manager


def guarded_session(policy: HostPolicy) -> requests.Session:
    """A ``requests.Session`` that connects only where ``policy`` allows."""
    session = requests.Session()
    adapter = GuardedAdapter(policy)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
