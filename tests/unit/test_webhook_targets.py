"""Which webhook URLs and addresses FileDock may call (app/core/webhooks.py), as pure rules."""

import pytest

from app.core.errors import InvalidRequest
from app.core.webhooks import address_refusal, parse_target


@pytest.mark.parametrize(
    ("address", "words"),
    [
        pytest.param("127.0.0.1", "loopback", id="loopback"),
        pytest.param("::1", "loopback", id="ipv6-loopback"),
        pytest.param("::ffff:127.0.0.1", "loopback", id="ipv4-mapped-loopback"),
        pytest.param("169.254.169.254", "link-local", id="cloud-metadata"),
        pytest.param("fe80::1%eth0", "link-local", id="ipv6-link-local-scoped"),
        pytest.param("10.1.2.3", "private", id="rfc1918-10"),
        pytest.param("172.16.0.1", "private", id="rfc1918-172"),
        pytest.param("192.168.1.1", "private", id="rfc1918-192"),
        pytest.param("fd00::1", "private", id="ipv6-unique-local"),
        pytest.param("0.0.0.0", "", id="unspecified"),
        pytest.param("100.64.0.1", "not a public address", id="carrier-grade-nat"),
        pytest.param("224.0.0.1", "not a public address", id="multicast"),
    ],
)
def test_address_refusal_names_non_public_addresses(address: str, words: str) -> None:
    refusal = address_refusal(address)
    assert refusal is not None and words in refusal


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "93.184.215.14"])
def test_address_refusal_lets_public_addresses_through(address: str) -> None:
    assert address_refusal(address) is None


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://example.com/", id="scheme"),
        pytest.param("https:///path", id="no-host"),
        pytest.param("https://user:pw@example.com/", id="credentials"),
        pytest.param("https://example.com:99999/", id="bad-port"),
        pytest.param("https://exa mple.com/", id="space"),
        pytest.param("https://example.com/" + "a" * 2048, id="too-long"),
    ],
)
def test_parse_target_refuses_urls_not_to_call(url: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_target(url)
    assert refused.value.param == "url"


def test_parse_target_defaults_the_port_by_scheme() -> None:
    assert parse_target("https://Hooks.Example.com/x").port == 443
    assert parse_target("http://hooks.example.com/x").port == 80
    assert parse_target("http://[2001:db8::1]:8080/").host == "2001:db8::1"
