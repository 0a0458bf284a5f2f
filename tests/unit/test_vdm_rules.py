"""The rules VDM applies: recipient providers by name and MX, random-looking local parts, and the
Advisor's reading of SPF, DMARC and BIMI records (through the resolver, against the test DNS server)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest

from sesame.config import DnsSettings
from sesame.domain import isps
from sesame.domain.address_insights import is_random
from sesame.domain.advisor import Finding, bimi, dmarc, rates, spf
from sesame.domain.vdm import days
from sesame.resolver import Lookup
from sesame.testing.dns import DnsServer


@pytest.mark.parametrize(
    ("domain", "isp"),
    [("gmail.com", "Gmail"), ("GoogleMail.com.", "Gmail"), ("hotmail.co.uk", "Hotmail"),
     ("ymail.com", "Yahoo"), ("icloud.com", "Apple"), ("example.com", None), ("mail.gmail.com", None)],
)  # fmt: skip
def test_providers_by_domain(domain: str, isp: str | None) -> None:
    assert isps.by_domain(domain) == isp


@pytest.mark.parametrize(
    ("hosts", "isp"),
    [
        (["aspmx.l.google.com", "alt1.aspmx.l.google.com"], "Gmail"),
        (["acme-corp.mail.protection.outlook.com."], "Hotmail"),
        (["mta5.am0.yahoodns.net"], "Yahoo"),
        (["in1-smtp.messagingengine.com"], "Fastmail"),
        (["mx.notgoogle.com"], "Other"),  # a suffix must match whole labels
        (["mail.example.com", "aspmx.l.google.com"], "Gmail"),  # a backup MX at Google still says so
        ([], "Other"),
    ],
)
def test_providers_by_mx(hosts: list[str], isp: str) -> None:
    assert isps.by_mx(hosts) == isp


def test_provider_names_from_queries() -> None:
    assert isps.canonical("gmail") == "Gmail" and isps.canonical("OTHER") == "Other"
    assert isps.canonical("Unheard-of") == "Unheard-of"
    assert "Gmail" not in isps.FEEDBACK_LOOPS and "Yahoo" in isps.FEEDBACK_LOOPS


@pytest.mark.parametrize(
    ("local", "random"),
    [("john.smith", False), ("anna", False), ("marketing2024", False), ("xkqzvbnwtrp", True),
     ("a8f3k2j9x7", True), ("bcdfgh", True), ("strengths", False), ("schwartz", False),
     ("qwrtzp+news", True), ("jo.brn2", False)],
)  # fmt: skip
def test_random_local_parts(local: str, random: bool) -> None:
    assert is_random(local) is random


def test_days_are_utc_days_inclusive() -> None:
    start = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))  # 2 March UTC
    end = dt.datetime(2026, 3, 4, 0, 0, tzinfo=dt.UTC)
    assert days(start, end) == [dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)]


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


def keys(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.key, f.impact) for f in findings]


@pytest.mark.parametrize(
    ("records", "want"),
    [
        ([], [("SPF1", "HIGH")]),
        (['"v=spf1 mx -all"'], []),
        (['"v=spf1 include:_spf.example.net ~all"'], []),
        (['"v=spf1 redirect=_spf.example.net"'], []),
        (['"v=spf1 mx -all"', '"v=spf1 a -all"'], [("SPF2", "HIGH")]),
        (['"v=spf1 +all"'], [("SPF3", "HIGH")]),
        (['"v=spf1 a all"'], [("SPF3", "HIGH")]),
        (['"v=spf1 mx ?all"'], [("SPF4", "LOW")]),
        (['"v=spf1 mx"'], [("SPF4", "LOW")]),
        (['"google-site-verification=abc"'], [("SPF1", "HIGH")]),  # not an SPF record
    ],
)
def test_spf(dns: DnsServer, records: list[str], want: list[tuple[str, str]]) -> None:
    for r in records:
        dns.add("spf.test", "TXT", r)
    lookup = Lookup(DnsSettings(nameservers=[dns.address], timeout=2))
    assert keys(asyncio.run(spf(lookup, "spf.test"))) == want


@pytest.mark.parametrize(
    ("records", "want"),
    [
        ({}, [("DMARC1", "HIGH")]),
        ({"_dmarc.news.shop.test": '"v=DMARC1; p=reject"'}, []),
        ({"_dmarc.news.shop.test": '"v=DMARC1; p=none"'}, [("DMARC2", "LOW")]),
        ({"_dmarc.news.shop.test": '"v=DMARC1; rua=mailto:x@shop.test"'}, [("DMARC1", "HIGH")]),
        ({"_dmarc.shop.test": '"v=DMARC1; p=quarantine"'}, []),  # the organizational domain's policy
        ({"_dmarc.shop.test": '"v=DMARC1; p=reject; sp=none"'}, [("DMARC2", "LOW")]),  # sp= for subdomains
    ],
)
def test_dmarc(dns: DnsServer, records: dict[str, str], want: list[tuple[str, str]]) -> None:
    for name, value in records.items():
        dns.add(name, "TXT", value)
    dns.add("news.shop.test", "A", "127.0.0.1")
    lookup = Lookup(DnsSettings(nameservers=[dns.address], timeout=2))
    assert keys(asyncio.run(dmarc(lookup, "news.shop.test"))) == want


def test_bimi(dns: DnsServer) -> None:
    lookup = Lookup(DnsSettings(nameservers=[dns.address], timeout=2))
    assert keys(asyncio.run(bimi(lookup, "brand.test"))) == [("BIMI1", "LOW")]
    dns.add("default._bimi.brand.test", "TXT", '"v=BIMI1; l=https://brand.test/logo.svg"')
    assert asyncio.run(bimi(lookup, "brand.test")) == []


@pytest.mark.parametrize(
    ("totals", "want"),
    [
        ({"SEND": 1000, "PERMANENT_BOUNCE": 49}, []),
        ({"SEND": 1000, "PERMANENT_BOUNCE": 50}, [("BOUNCE1", "LOW")]),  # under review at 5%
        ({"SEND": 1000, "PERMANENT_BOUNCE": 100}, [("BOUNCE1", "HIGH")]),  # may be paused at 10%
        ({"SEND": 99, "PERMANENT_BOUNCE": 99}, []),  # too little mail to judge
        ({"DELIVERY_COMPLAINT": 1000, "COMPLAINT": 1}, [("COMPLAINT1", "LOW")]),
        ({"DELIVERY_COMPLAINT": 1000, "COMPLAINT": 5}, [("COMPLAINT1", "HIGH")]),
        ({"DELIVERY": 100000, "DELIVERY_COMPLAINT": 0, "COMPLAINT": 0}, []),
    ],
)
def test_reputation_rates(totals: dict[str, int], want: list[tuple[str, str]]) -> None:
    assert keys(rates("example.com", totals, min_volume=100)) == want
