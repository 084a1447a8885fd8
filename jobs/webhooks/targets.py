"""Which webhook receivers are allowed, and the one address a delivery connects to.

A webhook URL is a request the service makes on a client's behalf, so it must not reach what
only the service can reach (SSRF): the loopback interface, private and link-local networks,
the cloud metadata address (169.254.169.254, fd00:ec2::254), CGNAT, multicast and every
other address that is not globally routable. The name is resolved *once* per delivery and
the connection goes to the address that was checked (a name that answers a public address
to the check and a private one to the connection -- DNS rebinding -- gains nothing).

The operator may allow hosts or networks that would be refused
(`NADA_WEBHOOK_ALLOWED_HOSTS`: comma-separated host names, addresses or CIDRs, e.g. an
internal receiver or, in tests, 127.0.0.1), and plain http for those hosts
(`NADA_WEBHOOK_ALLOW_HTTP`); otherwise only https.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., Sequence[tuple[Any, ...]]]  # socket.getaddrinfo's signature


class TargetRefused(ValueError):
    """A webhook URL the service will not call; the message says why (for a 4xx)."""


@dataclass(frozen=True)
class Allowance:
    """What the operator allows beyond public https receivers."""

    hosts: frozenset[str] = frozenset()  # host names (lower case) allowed whatever they resolve to
    networks: tuple[IPNetwork, ...] = ()  # addresses allowed although not public
    allow_http: bool = False  # plain http to the allowed hosts and networks

    @classmethod
    def parse(cls, hosts: str = "", *, allow_http: bool = False) -> Allowance:
        """From 'hooks.internal, 10.1.0.0/16, 127.0.0.1'.

        Raises:
            ValueError: an entry that is neither a host name nor an address/CIDR.
        """
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in hosts.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if not _is_host_name(entry):
                raise ValueError(f"not a host name, address or CIDR: {raw.strip()!r}")
            names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(networks), allow_http)

    def allows_name(self, host: str) -> bool:
        return host in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in net for net in self.networks if net.version == address.version)


@dataclass(frozen=True)
class Target:
    """A checked receiver: where to connect and what to ask for."""

    url: str
    scheme: str  # 'https' or 'http'
    host: str  # the name (or literal address) for the Host header and TLS
    port: int
    path: str  # path and query, at least '/'
    addresses: tuple[str, ...] = field(default=())  # checked addresses, in the resolver's order


def _is_host_name(value: str) -> bool:
    labels = value.rstrip(".").split(".")
    return (
        bool(value)
        and len(value) <= 253
        and all(
            0 < len(label) <= 63
            and label[0] != "-"
            and label[-1] != "-"
            and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
            for label in labels
        )
    )


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local (the metadata
    address), CGNAT, documentation, reserved or multicast; an IPv4-mapped IPv6 address is
    judged as the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def parse_url(url: str, allowance: Allowance) -> Target:
    """The URL's parts, checked without any network access: https (http only for allowed
    hosts when the operator allows http), a host, no user name or password, a valid port.

    Raises:
        TargetRefused: saying what is wrong.
    """
    if not isinstance(url, str) or not url:
        raise TargetRefused("must be an https URL")
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise TargetRefused("must not contain white space or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise TargetRefused("must be an https URL")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("must not contain a user name or password")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise TargetRefused("must name a host")
    literal = _literal(host)
    if literal is None and not _is_host_name(host):
        raise TargetRefused(f"has an invalid host name {host!r}")
    if scheme == "http":
        allowed = allowance.allows_name(host) or (
            literal is not None and allowance.allows_address(literal)
        )
        if not (allowance.allow_http and allowed):
            raise TargetRefused("must use https (plain http only to hosts the operator allows)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url, scheme, host, port or (443 if scheme == "https" else 80), path)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(url: str, allowance: Allowance, *, resolver: Resolver = socket.getaddrinfo) -> Target:
    """Check `url` and resolve its host once: every address must be public, unless the
    name or the address is allowed. Returns the Target with the checked addresses.

    Raises:
        TargetRefused: a refused URL, a host that does not resolve, or one that resolves to
            an address the service must not call (the message names the address).
    """
    target = parse_url(url, allowance)
    literal = _literal(target.host)
    if literal is not None:
        found: list[IPAddress] = [literal]
    else:
        try:
            infos = resolver(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(f"host {target.host!r} does not resolve ({exc})") from None
        found = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if address not in found:
                found.append(address)
        if not found:
            raise TargetRefused(f"host {target.host!r} does not resolve")
    name_allowed = allowance.allows_name(target.host)
    for address in found:
        if not (name_allowed or is_public(address) or allowance.allows_address(address)):
            raise TargetRefused(
                f"host {target.host!r} is {address}, an address this service does not call "
                "(loopback, private, link-local or otherwise not public; an operator can "
                "allow it with NADA_WEBHOOK_ALLOWED_HOSTS)"
            )
    return Target(
        target.url, target.scheme, target.host, target.port, target.path,
        tuple(str(a) for a in found),
    )  # fmt: skip
