"""The target guard: which endpoint URLs are acceptable and which addresses Interlock
refuses to call (server-side request forgery)."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from interlock.domain.errors import InvalidInput
from interlock.domain.targets import (
    MAX_URL_LENGTH,
    is_forbidden,
    parse_allowed_networks,
    parse_endpoint_url,
)

LOCAL = parse_allowed_networks("127.0.0.0/8,::1/128")


@pytest.mark.parametrize(("address", "words"), [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "special-purpose"),
])
def test_non_public_addresses_are_forbidden_with_a_reason(address: str, words: str) -> None:
    reason = is_forbidden(address)
    assert reason is not None
    assert address in reason and words in reason


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.215.14", "172.32.0.1",
                                     "100.128.0.1", "2606:4700:4700::1111", "2a00:1450::1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_forbidden(address) is None
    assert is_forbidden(ip_address(address)) is None


@pytest.mark.parametrize(("address", "words"), [
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:7f00:1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:100.64.0.1", "carrier-grade NAT"),
    ("2002:7f00:1::1", "loopback"),   # 6to4 carrying 127.0.0.1
])
def test_ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address(
        address: str, words: str) -> None:
    reason = is_forbidden(address)
    assert reason is not None and words in reason


def test_ipv4_mapped_public_address_is_allowed() -> None:
    assert is_forbidden("::ffff:8.8.8.8") is None


def test_allowed_networks_open_exactly_what_they_name() -> None:
    allowed = parse_allowed_networks("10.20.0.0/16, 127.0.0.0/8, ::1/128")
    assert is_forbidden("10.20.3.4", allowed) is None
    assert is_forbidden("127.0.0.1", allowed) is None
    assert is_forbidden("::1", allowed) is None
    assert is_forbidden("::ffff:127.0.0.1", allowed) is None
    assert is_forbidden("10.21.0.1", allowed) is not None
    assert is_forbidden("192.168.0.1", allowed) is not None


def test_metadata_addresses_need_an_entry_naming_them() -> None:
    broad = parse_allowed_networks("169.254.0.0/16,fd00::/8,100.64.0.0/10")
    assert is_forbidden("169.254.1.1", broad) is None
    assert is_forbidden("169.254.169.254", broad) is not None
    assert is_forbidden("fd00:ec2::254", broad) is not None
    assert is_forbidden("100.100.100.200", broad) is not None
    exact = parse_allowed_networks("169.254.169.254/32")
    assert is_forbidden("169.254.169.254", exact) is None


def test_parse_allowed_networks() -> None:
    assert parse_allowed_networks("127.0.0.0/8,::1/128") == (
        ip_network("127.0.0.0/8"), ip_network("::1/128"))
    assert parse_allowed_networks(" 10.0.0.0/8 , ,192.168.1.5") == (
        ip_network("10.0.0.0/8"), ip_network("192.168.1.5/32"))
    assert parse_allowed_networks("") == ()


@pytest.mark.parametrize("entry", ["10.0.0.1/8", "localhost", "300.0.0.0/8", "10.0.0.0/33"])
def test_bad_allowed_network_entries_are_named(entry: str) -> None:
    with pytest.raises(ValueError, match=f"'{entry}'"):
        parse_allowed_networks(f"127.0.0.0/8,{entry}")


def test_a_good_url_is_parsed() -> None:
    endpoint = parse_endpoint_url("https://Hooks.Example.com/in/abc?x=1")
    assert (endpoint.scheme, endpoint.host, endpoint.port, endpoint.address) == (
        "https", "hooks.example.com", 443, None)
    assert parse_endpoint_url("http://127.0.0.1:8080/").address == ip_address("127.0.0.1")
    assert parse_endpoint_url("http://[::1]:9000/").address == ip_address("::1")
    assert parse_endpoint_url("http://bücher.example/").host == "bücher.example"


@pytest.mark.parametrize(("url", "words"), [
    ("ftp://example.com/", "scheme must be http or https, not 'ftp'"),
    ("file:///etc/passwd", "scheme must be http or https"),
    ("example.com/hook", "scheme must be http or https, not none"),
    ("https:///path", "must have a host"),
    ("https://user:secret@example.com/", "must not contain credentials"),
    ("https://token@example.com/", "must not contain credentials"),
    ("https://example.com:99999/", "port"),
    ("https://example.com:0/", "port"),
    ("https://exa mple.com/", "spaces"),
    ("https://example.com/\nHost: evil", "control characters"),
    ("https://example.com\\@127.0.0.1/", "backslashes"),
    ("https://2130706433/", "not written as one"),
    ("https://127.1/", "not written as one"),
    ("https://0x7f.0.0.1/", "not written as one"),
    ("https://exa_mple..com/", "not a valid host name"),
    ("https://-bad-.example/", "not a valid host name"),
    ("https://[::1/", "Invalid IPv6 URL"),
])
def test_bad_urls_are_refused_with_a_clear_message(url: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words.replace("\\", "\\\\")):
        parse_endpoint_url(url)


def test_overlong_urls_are_refused() -> None:
    url = "https://example.com/" + "a" * MAX_URL_LENGTH
    with pytest.raises(InvalidInput, match=f"limit is {MAX_URL_LENGTH}"):
        parse_endpoint_url(url)
