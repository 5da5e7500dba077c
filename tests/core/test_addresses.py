"""What counts as one address, and whose X-Forwarded-For is believed."""

from __future__ import annotations

import pytest

from chat_tracker.core.addresses import TrustedProxies, address_key, parse_ip, proxy_list


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("unknown", "unknown"),
    ],
)
def test_address_key_folds_ipv6_to_its_64(host: str, key: str) -> None:
    """IPv4 is itself, IPv6 its /64, IPv4-mapped IPv6 the IPv4 address, anything else itself."""
    assert address_key(host) == key


def test_two_addresses_of_one_64_share_a_key_and_the_next_64_does_not() -> None:
    """A subscriber cannot escape a per-address cap by rotating through its /64."""
    assert address_key("2001:db8:0:1::a") == address_key("2001:db8:0:1:8000::b")
    assert address_key("2001:db8:0:1::a") != address_key("2001:db8:0:2::a")


@pytest.mark.parametrize(
    ("text", "ip"),
    [("1.2.3.4", "1.2.3.4"), (" 1.2.3.4 ", "1.2.3.4"), ("1.2.3.4:80", "1.2.3.4"), ("[::1]:80", "::1"), ("::1", "::1")],
)
def test_parse_ip_accepts_the_forms_proxies_write(text: str, ip: str) -> None:
    """Bare, with a port, and bracketed IPv6."""
    assert str(parse_ip(text)) == ip


@pytest.mark.parametrize("text", ["", "unknown", "1.2.3", "1.2.3.4.5", "_hidden", "::g"])
def test_parse_ip_refuses_what_is_not_an_address(text: str) -> None:
    """Garbage is None, never an address."""
    assert parse_ip(text) is None


def test_trusted_proxies_parse_addresses_and_networks() -> None:
    """ADDR and CIDR entries, separated by commas, spaces allowed; none by default."""
    proxies = proxy_list("10.0.0.1, 172.16.0.0/12,2001:db8::/32")
    assert [str(n) for n in proxies.networks] == ["10.0.0.1/32", "172.16.0.0/12", "2001:db8::/32"]
    assert proxies.trusts("172.20.1.1") and proxies.trusts("10.0.0.1") and proxies.trusts("2001:db8::5")
    assert not proxies.trusts("10.0.0.2") and not proxies.trusts("garbage")
    assert proxy_list("") == proxy_list("none") == TrustedProxies()
    assert str(TrustedProxies()) == "none" and not TrustedProxies()


def test_a_bad_trusted_proxy_entry_is_a_value_error_naming_it() -> None:
    """The message names the entry, for the one-line error at start."""
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        proxy_list("10.0.0.1,10.0.0.300")


PROXIES = proxy_list("10.0.0.1,10.0.0.2")


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    """Anyone can write the header: from a peer not in the list it names nobody."""
    assert PROXIES.client_address("198.51.100.7", ["203.0.113.1"]) == "198.51.100.7"


def test_forwarded_for_from_a_trusted_proxy_names_the_client() -> None:
    """The rightmost entry that is not a trusted proxy is the client; all headers are read in order."""
    assert PROXIES.client_address("10.0.0.1", ["203.0.113.1"]) == "203.0.113.1"
    assert PROXIES.client_address("10.0.0.1", ["198.51.100.9, 203.0.113.1, 10.0.0.2"]) == "203.0.113.1"
    assert PROXIES.client_address("10.0.0.1", ["198.51.100.9", "203.0.113.1"]) == "203.0.113.1"


def test_a_forged_prefix_cannot_name_the_client() -> None:
    """A client that sends its own X-Forwarded-For only adds entries left of the one the proxy appends."""
    assert PROXIES.client_address("10.0.0.1", ["6.6.6.6, 203.0.113.1"]) == "203.0.113.1"


def test_garbage_in_the_chain_ends_the_walk() -> None:
    """An unparseable entry stops the walk; what was established so far stands."""
    assert PROXIES.client_address("10.0.0.1", ["203.0.113.1, junk"]) == "10.0.0.1"
    assert PROXIES.client_address("10.0.0.1", ["junk, 10.0.0.2"]) == "10.0.0.2"
    assert PROXIES.client_address("10.0.0.1", []) == "10.0.0.1"
