"""Receipt rules' recipient conditions and IP filters, as the MX applies them (receiving/matching.py)."""

from __future__ import annotations

import pytest

from sesame.receiving.matching import (
    IpFilter,
    filter_allows,
    parse_cidr,
    receives_for,
    recipient_matches,
    rule_matches,
)


@pytest.mark.parametrize(
    ("condition", "address", "matches"),
    [
        # An address: itself and its labelled forms.
        ("user@example.com", "user@example.com", True),
        ("user@example.com", "user+news@example.com", True),
        ("user@example.com", "user+a+b@example.com", True),
        ("user@example.com", "User@EXAMPLE.com", True),
        ("user@example.com", "username@example.com", False),
        ("user@example.com", "user@sub.example.com", False),
        ("user@example.com", "other@example.com", False),
        # A labelled address matches only itself.
        ("user+news@example.com", "user+news@example.com", True),
        ("user+news@example.com", "user@example.com", False),
        ("user+news@example.com", "user+other@example.com", False),
        # A domain: every address at exactly that domain.
        ("example.com", "anyone@example.com", True),
        ("example.com", "anyone@EXAMPLE.COM", True),
        ("Example.COM", "anyone@example.com", True),
        ("example.com", "anyone@sub.example.com", False),
        ("example.com", "anyone@notexample.com", False),
        ("example.com", "anyone@example.com.", True),  # the root dot changes nothing
        # A leading dot: every subdomain, at any depth, not the domain itself.
        (".example.com", "a@sub.example.com", True),
        (".example.com", "a@deep.sub.example.com", True),
        (".example.com", "a@example.com", False),
        (".example.com", "a@badexample.com", False),
        # A subdomain named outright: that subdomain only.
        ("sub.example.com", "a@sub.example.com", True),
        ("sub.example.com", "a@example.com", False),
        ("sub.example.com", "a@x.sub.example.com", False),
        # Not addresses.
        ("example.com", "example.com", False),
        ("example.com", "@example.com", False),
        ("", "a@example.com", False),
    ],
)
def test_recipient_conditions(condition: str, address: str, matches: bool) -> None:
    assert recipient_matches(condition, address) is matches


def test_a_rule_matches_when_enabled_and_any_condition_does() -> None:
    rule = {"Name": "r", "Enabled": True, "Recipients": ["sales@example.com", ".example.org"]}
    assert rule_matches(rule, "sales+q3@example.com")
    assert rule_matches(rule, "x@eu.example.org")
    assert not rule_matches(rule, "x@example.org")
    assert not rule_matches({**rule, "Enabled": False}, "sales@example.com")
    assert not rule_matches({"Name": "r", "Recipients": ["example.com"]}, "a@example.com")  # default off
    # No Recipients: every address the account receives for (receives_for decides which).
    assert rule_matches({"Name": "all", "Enabled": True}, "anyone@anywhere.example")


def test_an_account_receives_for_its_verified_domains_subdomains_and_addresses() -> None:
    domains, addresses = {"example.com"}, {"Owner@example.net"}
    assert receives_for(domains, addresses, "a@example.com")
    assert receives_for(domains, addresses, "a@mail.EXAMPLE.com")
    assert not receives_for(domains, addresses, "a@badexample.com")
    assert receives_for(domains, addresses, "owner@example.net")
    assert not receives_for(domains, addresses, "other@example.net")


def f(name: str, policy: str, cidr: str) -> IpFilter:
    return IpFilter.of({"Name": name, "IpFilter": {"Policy": policy, "Cidr": cidr}})


def test_no_filters_let_everyone_in() -> None:
    assert filter_allows([], "192.0.2.1")
    assert filter_allows([], "2001:db8::1")


def test_block_by_address_and_by_range() -> None:
    filters = [f("one", "Block", "192.0.2.1"), f("range", "Block", "198.51.100.0/24")]
    assert not filter_allows(filters, "192.0.2.1")
    assert filter_allows(filters, "192.0.2.2")
    assert not filter_allows(filters, "198.51.100.77")
    assert filter_allows(filters, "198.51.101.1")


def test_allow_overrides_block() -> None:
    # SES's allow-list pattern: block everything, then allow the trusted ranges.
    filters = [f("all", "Block", "0.0.0.0/0"), f("partner", "Allow", "203.0.113.0/28")]
    assert filter_allows(filters, "203.0.113.5")
    assert not filter_allows(filters, "203.0.113.16")
    assert not filter_allows(filters, "8.8.8.8")
    # The order of the filters does not matter.
    assert filter_allows(list(reversed(filters)), "203.0.113.5")


def test_host_bits_in_a_range_name_its_network() -> None:
    # SES's own example range is 10.0.0.1/24.
    assert parse_cidr("10.0.0.1/24") == parse_cidr("10.0.0.0/24")
    assert not filter_allows([f("r", "Block", "10.0.0.1/24")], "10.0.0.200")


def test_ipv6() -> None:
    filters = [f("v6", "Block", "2001:db8::/32"), f("host", "Allow", "2001:db8::25")]
    assert not filter_allows(filters, "2001:db8:1::1")
    assert filter_allows(filters, "2001:db8::25")
    assert filter_allows(filters, "2001:db9::1")
    # An IPv4 filter says nothing about IPv6 clients, and the other way round.
    assert filter_allows([f("all4", "Block", "0.0.0.0/0")], "2001:db8::1")
    assert filter_allows([f("all6", "Block", "::/0")], "192.0.2.1")


def test_ipv4_mapped_clients_are_their_ipv4_address() -> None:
    # A dual-stack listener reports an IPv4 client as ::ffff:a.b.c.d.
    assert not filter_allows([f("r", "Block", "192.0.2.0/24")], "::ffff:192.0.2.9")
    assert filter_allows([f("r", "Block", "0.0.0.0/0"), f("ok", "Allow", "192.0.2.9")], "::ffff:192.0.2.9")


def test_filters_in_the_api_spelling_are_taken_too() -> None:
    stored = [
        {"Name": "all", "IpFilter": {"Policy": "Block", "Cidr": "0.0.0.0/0"}},
        {"Name": "ok", "IpFilter": {"Policy": "Allow", "Cidr": "192.0.2.1"}},
    ]
    assert filter_allows(stored, "192.0.2.1")
    assert not filter_allows(stored, "192.0.2.2")
