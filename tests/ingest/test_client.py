"""The client address: the peer, or behind trusted proxies the right-most untrusted hop."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tourviews.ingest.http.address import ClientAddress, pack, parse_networks

PROXIES = ClientAddress(parse_networks(["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]))


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert ClientAddress(()).resolve("198.51.100.1", b"203.0.113.9") == "198.51.100.1"


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    assert PROXIES.resolve("198.51.100.1", b"203.0.113.9") == "198.51.100.1"


def test_trusted_peer_yields_the_forwarded_client() -> None:
    assert PROXIES.resolve("127.0.0.1", b"203.0.113.9") == "203.0.113.9"


def test_right_most_untrusted_hop_wins_over_a_forged_left_part() -> None:
    forged = b"6.6.6.6, 203.0.113.9, 10.1.2.3"
    assert PROXIES.resolve("127.0.0.1", forged) == "203.0.113.9"


def test_ipv6_hops_are_understood() -> None:
    assert PROXIES.resolve("127.0.0.1", b"2001:db8::7, fd00::1") == "2001:db8::7"


def test_all_hops_trusted_yields_the_left_most() -> None:
    assert PROXIES.resolve("127.0.0.1", b"10.0.0.5, 10.0.0.6") == "10.0.0.5"


def test_no_forwarded_header_yields_the_peer() -> None:
    assert PROXIES.resolve("127.0.0.1", None) == "127.0.0.1"


def test_bad_proxy_setting_names_the_value() -> None:
    with pytest.raises(ValueError, match="'not-a-cidr'"):
        parse_networks(["not-a-cidr"])


@pytest.mark.parametrize(
    ("text", "packed"),
    [
        ("203.0.113.9", bytes([203, 0, 113, 9])),
        ("::ffff:203.0.113.9", bytes([203, 0, 113, 9])),  # IPv4-mapped is the IPv4 address
        ("2001:DB8::7", bytes.fromhex("20010db8000000000000000000000007")),
        ("fe80::1%eth0", bytes.fromhex("fe800000000000000000000000000001")),  # zone index
        ("01.2.3.4", None),  # leading zeros are ambiguous (octal?): not an address
        ("1.2.3", None),
        ("not an address", None),
        ("", None),
    ],
)
def test_pack_agrees_with_ipaddress(text: str, packed: bytes | None) -> None:
    assert pack(text) == packed
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        assert packed is None
    else:
        mapped = getattr(parsed, "ipv4_mapped", None)
        assert packed == (mapped or parsed).packed


def test_an_ipv4_mapped_peer_is_a_trusted_ipv4_proxy() -> None:
    assert PROXIES.resolve("::ffff:127.0.0.1", b"203.0.113.9") == "203.0.113.9"


@given(st.ip_addresses())
def test_pack_reads_every_spelling_of_any_address(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    mapped = getattr(ip, "ipv4_mapped", None)
    expected = (mapped or ip).packed
    assert pack(str(ip)) == expected
    assert pack(ip.exploded) == expected
