"""Unit tests for coupon.domain.client_address: X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

import pytest

from coupon.domain.client_address import client_address, parse_trusted

PROXY = parse_trusted("10.0.0.0/8, 127.0.0.1")


def test_without_trusted_proxies_the_peer_is_the_client_and_the_header_is_ignored() -> None:
    assert client_address("127.0.0.1", "1.2.3.4", ()) == "127.0.0.1"
    assert client_address("203.0.113.9", None, PROXY) == "203.0.113.9"


def test_an_untrusted_peer_cannot_choose_its_address_with_the_header() -> None:
    assert client_address("203.0.113.9", "1.2.3.4", PROXY) == "203.0.113.9"


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() -> None:
    # The client wrote "6.6.6.6" itself; the proxy appended the address it really saw.
    assert client_address("127.0.0.1", "6.6.6.6, 198.51.100.7", PROXY) == "198.51.100.7"
    assert client_address("10.1.2.3", "198.51.100.7, 10.9.9.9", PROXY) == "198.51.100.7"


def test_only_proxies_in_the_chain_falls_back_to_the_leftmost_hop() -> None:
    assert client_address("127.0.0.1", "10.0.0.5", PROXY) == "10.0.0.5"


def test_garbage_hop_gives_no_address_rather_than_an_attacker_chosen_key() -> None:
    assert client_address("127.0.0.1", "not-an-ip", PROXY) is None
    assert client_address("not-an-ip", None, ()) is None


def test_addresses_are_normalised() -> None:
    assert client_address("::ffff:0:1", None, ()) == "::ffff:0:1"
    assert client_address("2001:DB8::1", None, ()) == "2001:db8::1"


def test_a_bad_trusted_entry_refuses_to_start() -> None:
    with pytest.raises(RuntimeError, match="TRUSTED_PROXIES"):
        parse_trusted("10.0.0.0/8, proxy.internal")
    assert parse_trusted("") == ()
