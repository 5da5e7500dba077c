"""Client addresses: what counts as one address, and which proxies may name the real one.

Every per-address rule (the connection caps, the stranger budgets, the password
throttle) keys on ``address_key``: an IPv4 address as it is, an IPv6 address by its
/64, because one subscriber is routinely handed a whole /64 and could otherwise
take a fresh address for every connection. Behind a reverse proxy every client
arrives from the proxy's address; ``TrustedProxies`` says whose ``X-Forwarded-For``
header is believed. From anyone else the header is ignored: it is just text the
client wrote.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

IPV6_PREFIX = 64  # one subscriber's share of IPv6 space, as routinely delegated


def parse_ip(text: str) -> IPAddress | None:
    """An IP address, also in the ``[v6]``, ``[v6]:port`` or ``v4:port`` forms; None if it is not one."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # v4:port (a bare IPv6 address has several colons)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:1.2.3.4 is 1.2.3.4, whichever socket family it came in on
    return address


def address_key(host: str) -> str:
    """The key every per-address limit counts under: the IPv4 address, or the IPv6 address's /64."""
    address = parse_ip(host)
    if address is None:
        return host  # not an IP (a Unix socket, a test client): counted as itself
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    key = str(address)
    return host if key == host else key  # the same text: one string kept per connection, not two


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies allowed to name the client's address (``--trusted-proxies``); none by default."""

    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """``ADDR|CIDR,...``; empty or ``none`` for none. A bad entry is a ValueError naming it."""
        if text.strip().lower() in ("", "none"):
            return cls()
        networks = []
        for entry in (part.strip() for part in text.split(",")):
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or CIDR network") from None
            networks.append(network)
        return cls(tuple(networks))

    def __str__(self) -> str:
        return ",".join(map(str, self.networks)) or "none"

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, host: str) -> bool:
        address = parse_ip(host)
        return address is not None and any(address in network for network in self.networks)

    def client_address(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client's address for a request from ``peer`` with these ``X-Forwarded-For`` values.

        From an untrusted peer the header is ignored. From a trusted one the chain is
        read from the right (each proxy appends the address it saw): the first entry
        that is not itself a trusted proxy is the client. An unparseable entry ends
        the walk, so garbage cannot name an address; what was established so far stands.
        """
        if not self.trusts(peer):
            return peer
        client = peer
        hops = [hop for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            address = parse_ip(hop)
            if address is None:
                break
            client = str(address)
            if not self.trusts(client):
                break
        return client


def proxy_list(text: str) -> TrustedProxies:
    """``--trusted-proxies``'s type (named so that argparse's message reads well)."""
    return TrustedProxies.parse(text)
