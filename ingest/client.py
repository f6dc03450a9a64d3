"""Which address a request comes from, given the proxies we trust."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDR strings as networks; ValueError names the bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"--trusted-proxy {value!r} is not an address or CIDR") from None
    return tuple(networks)


class ClientAddress:
    """The socket peer, or behind trusted proxies the right-most untrusted X-Forwarded-For hop."""

    def __init__(self, trusted: tuple[Network, ...]) -> None:
        self._trusted = trusted

    def resolve(self, peer: str | None, forwarded_for: bytes | None) -> str | None:
        if not self._trusted or forwarded_for is None or not self._is_trusted(peer):
            return peer
        client = peer
        for hop in reversed(forwarded_for.decode("latin-1").split(",")):
            hop = hop.strip()
            if not self._is_trusted(hop):
                # An untrusted hop is the client; a malformed one is, too, since a
                # trusted proxy would not have written it: hash what it says.
                return hop
            client = hop
        return client

    def _is_trusted(self, address: str | None) -> bool:
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)
