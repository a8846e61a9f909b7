import ipaddress

import pytest

from gati.web.client_ip import IPStorageMode, TrustedProxies, client_ip, parse_ip, stored_ip

TRUSTED = TrustedProxies.parse(["10.0.0.0/8", "192.168.1.1", "2001:db8:ffff::/48"])


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_untrusted_peer_headers_are_ignored() -> None:
    headers = {"x-forwarded-for": "1.2.3.4", "x-real-ip": "5.6.7.8", "forwarded": "for=9.9.9.9"}
    assert client_ip("203.0.113.7", headers, TRUSTED) == ip("203.0.113.7")


def test_no_trusted_proxies_configured_means_socket_address() -> None:
    assert client_ip("10.0.0.1", {"x-forwarded-for": "1.2.3.4"}, TrustedProxies()) == ip("10.0.0.1")


def test_xff_from_trusted_peer() -> None:
    assert client_ip("10.1.2.3", {"x-forwarded-for": "1.2.3.4"}, TRUSTED) == ip("1.2.3.4")


def test_xff_chain_walks_past_trusted_hops_from_the_right() -> None:
    # The client may prepend anything; only the hop added by our own proxies counts.
    headers = {"x-forwarded-for": "6.6.6.6, 1.2.3.4, 10.9.9.9"}
    assert client_ip("10.1.2.3", headers, TRUSTED) == ip("1.2.3.4")


def test_chain_of_only_trusted_hops_gives_leftmost() -> None:
    headers = {"x-forwarded-for": "10.0.0.5, 10.0.0.6"}
    assert client_ip("10.1.2.3", headers, TRUSTED) == ip("10.0.0.5")


def test_invalid_xff_entry_falls_back_to_last_valid_hop() -> None:
    assert client_ip("10.1.2.3", {"x-forwarded-for": "not-an-ip"}, TRUSTED) == ip("10.1.2.3")
    headers = {"x-forwarded-for": "garbage, 10.0.0.7"}
    assert client_ip("10.1.2.3", headers, TRUSTED) == ip("10.0.0.7")


def test_x_real_ip_used_when_no_xff() -> None:
    assert client_ip("192.168.1.1", {"x-real-ip": "8.8.4.4"}, TRUSTED) == ip("8.8.4.4")
    assert client_ip("192.168.1.1", {"x-real-ip": "bogus"}, TRUSTED) == ip("192.168.1.1")


def test_forwarded_header_wins_and_handles_ipv6_and_ports() -> None:
    headers = {
        "forwarded": 'for="[2001:db8::17]:4711";proto=https, for=10.0.0.9',
        "x-forwarded-for": "1.1.1.1",
    }
    assert client_ip("10.1.2.3", headers, TRUSTED) == ip("2001:db8::17")
    assert client_ip("10.1.2.3", {"forwarded": "for=198.51.100.3:8080"}, TRUSTED) == ip(
        "198.51.100.3"
    )
    # An obfuscated identifier stops the walk.
    assert client_ip("10.1.2.3", {"forwarded": "for=_hidden"}, TRUSTED) == ip("10.1.2.3")


def test_ipv4_mapped_ipv6_peer_is_unmapped() -> None:
    assert client_ip("::ffff:10.0.0.1", {"x-forwarded-for": "1.2.3.4"}, TRUSTED) == ip("1.2.3.4")
    assert parse_ip("::ffff:8.8.8.8") == ip("8.8.8.8")


def test_missing_or_invalid_peer() -> None:
    assert client_ip(None, {"x-forwarded-for": "1.2.3.4"}, TRUSTED) is None
    assert client_ip("testclient", {}, TRUSTED) is None


def test_trusted_proxies_parse_errors_name_the_entry() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.300"):
        TrustedProxies.parse("127.0.0.1, 10.0.0.300")
    assert ip("127.0.0.1") in TrustedProxies.parse("127.0.0.1, ::1")
    assert ip("::1") in TrustedProxies.parse("127.0.0.1, ::1")


@pytest.mark.parametrize(
    ("address", "mode", "expected"),
    [
        ("203.0.113.77", "full", "203.0.113.77"),
        ("203.0.113.77", "truncated", "203.0.113.0"),
        ("2001:db8:1234:5678::1", "truncated", "2001:db8:1234::"),
        ("2001:db8:1234:5678::1", "full", "2001:db8:1234:5678::1"),
        ("203.0.113.77", "none", None),
    ],
)
def test_stored_ip_modes(address: str, mode: str, expected: str | None) -> None:
    assert stored_ip(ip(address), mode) == expected
    assert stored_ip(None, IPStorageMode.FULL) is None


def test_stored_ip_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError):
        stored_ip(ip("1.2.3.4"), "half")
