"""Which address a request comes from, given the proxies we trust."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAPPED = bytes(10) + b"\xff\xff"  # the prefix of an IPv4-mapped IPv6 address


def pack(address: str) -> bytes | None:
    """The address as 4 or 16 bytes (an IPv4-mapped IPv6 address as IPv4), None if not one.

    ``inet_pton`` first: it is ~30 times faster than ``ipaddress``, which is kept
    for what it alone accepts (e.g. a zone index, ``fe80::1%eth0``).
    """
    try:
        packed = socket.inet_pton(socket.AF_INET, address)
    except OSError:
        try:
            packed = socket.inet_pton(socket.AF_INET6, address)
        except OSError:
            try:
                packed = ipaddress.ip_address(address).packed
            except ValueError:
                return None
    return packed[12:] if packed[:12] == MAPPED else packed


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDR strings as networks; ValueError names the bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"--trusted-proxy {value!r} is not an address or CIDR") from None
    return tuple(networks)


def without_port(hop: str) -> str:
    """The address of an X-Forwarded-For entry that some proxies write with a port.

    ``203.0.113.9:40001`` is 203.0.113.9 and ``[2001:db8::1]:443`` is 2001:db8::1: each
    connection of one client has another port, and a port must not make it another
    sender. A bare IPv6 address (several colons) is left as it is.
    """
    if hop.startswith("["):
        end = hop.find("]")
        return hop[1:end] if end > 0 else hop
    address, colon, port = hop.partition(":")
    if colon and port.isdigit() and ":" not in port:
        return address
    return hop


class ClientAddress:
    """The socket peer, or behind trusted proxies the right-most untrusted X-Forwarded-For hop."""

    def __init__(self, trusted: tuple[Network, ...]) -> None:
        self._trusted = trusted
        # (length of the packed address, network bits, mask) per trusted network
        self._masks = [
            (network.max_prefixlen // 8, int(network.network_address), int(network.netmask))
            for network in trusted
        ]

    def resolve(self, peer: str | None, forwarded_for: bytes | None) -> str | None:
        if not self._trusted or forwarded_for is None or not self._is_trusted(peer):
            return peer
        client = peer
        for entry in reversed(forwarded_for.decode("latin-1").split(",")):
            hop = without_port(entry.strip())
            if not self._is_trusted(hop):
                # An untrusted hop is the client; a malformed one is, too, since a
                # trusted proxy would not have written it: hash what it says.
                return hop
            client = hop
        return client

    def _is_trusted(self, address: str | None) -> bool:
        packed = None if address is None else pack(address)
        if packed is None:
            return False
        ip = int.from_bytes(packed)
        size = len(packed)
        return any(size == length and ip & mask == bits for length, bits, mask in self._masks)
