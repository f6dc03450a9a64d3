"""The client address: the peer, or behind trusted proxies the right-most untrusted hop."""

from __future__ import annotations

import pytest

from ingest.client import ClientAddress, parse_networks

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
