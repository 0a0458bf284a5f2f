"""Received mail's verdicts against a real DNS server on loopback with crafted SPF, DKIM and DMARC
records, and against spamd and clamd stand-ins that speak the scanners' real wire protocols."""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sesame.config import DnsSettings, ReceivingSettings
from sesame.mail.dkim import SigningKey, sign, txt_record
from sesame.receiving.scanners import Scanners
from sesame.receiving.verdicts import Verdicts, authentication_results, evaluate
from sesame.resolver import Lookup
from sesame.testing.dns import DnsServer

CLIENT = "192.0.2.10"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
_names = itertools.count()


@pytest.fixture(scope="module")
def zone() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


@pytest.fixture
def domain() -> str:
    """A fresh domain per test, so that records published by one test never answer another."""
    return f"d{next(_names)}.test"  # its own organizational domain too (".test" is no listed suffix)


@pytest.fixture(scope="module")
def key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def message(from_domain: str, body: bytes = b"Hello.\r\n") -> bytes:
    return (
        f"From: Sender <sender@{from_domain}>\r\n"
        "To: rcpt@inbound.test\r\n"
        "Subject: Hi\r\n"
        "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
        f"Message-ID: <1@{from_domain}>\r\n"
        "\r\n"
    ).encode() + body


def publish_key(zone: DnsServer, selector: str, domain: str, pem: str) -> None:
    record = txt_record(pem)
    strings = " ".join(f'"{record[i : i + 255]}"' for i in range(0, len(record), 255))
    zone.add(f"{selector}._domainkey.{domain}", "TXT", strings)


def run(
    zone: DnsServer,
    *,
    mail_from: str,
    raw: bytes,
    client_ip: str = CLIENT,
    helo: str = "mx.sender.test",
    scan: Scanners | None = None,
) -> Verdicts:
    lookup = Lookup(DnsSettings(nameservers=[zone.address], timeout=2.0))
    return asyncio.run(
        evaluate(lookup, client_ip=client_ip, helo=helo, mail_from=mail_from, message=raw, scan=scan)
    )


def spf(zone: DnsServer, domain: str, record: str, **kwargs: Any) -> Verdicts:
    zone.add(domain, "TXT", f'"{record}"')
    return run(zone, mail_from=f"bounce@{domain}", raw=message(domain), **kwargs)


# --- SPF (RFC 7208) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "result", "status"),
    [
        (f"v=spf1 ip4:{CLIENT} -all", "pass", "PASS"),
        ("v=spf1 ip4:198.51.100.0/24 -all", "fail", "FAIL"),
        ("v=spf1 ~all", "softfail", "GRAY"),
        ("v=spf1 ?all", "neutral", "GRAY"),
        ("v=spf1 ip4:192.0.2.0/24 ip4:192.0.2.10/33", "permerror", "PROCESSING_FAILED"),
        ("v=spf1 frobnicate -all", "permerror", "PROCESSING_FAILED"),
    ],
)
def test_spf_results_map_to_ses_statuses(
    zone: DnsServer, domain: str, record: str, result: str, status: str
) -> None:
    v = spf(zone, domain, record)
    assert (v.spf_result, v.spf) == (result, status)
    assert v.receipt()["spfVerdict"] == {"status": status}


def test_spf_none_when_no_record_is_gray(zone: DnsServer, domain: str) -> None:
    zone.add(domain, "TXT", '"some other text"')
    v = run(zone, mail_from=f"bounce@{domain}", raw=message(domain))
    assert (v.spf_result, v.spf) == ("none", "GRAY")
    assert f"spf=none (spfCheck: {CLIENT} is neither permitted nor denied by domain of {domain})" in (
        authentication_results("inbound.test", v)
    )


def test_spf_dns_failure_is_processing_failed(zone: DnsServer, domain: str) -> None:
    zone.fail(domain)
    v = run(zone, mail_from=f"bounce@{domain}", raw=message(domain))
    assert (v.spf_result, v.spf) == ("temperror", "PROCESSING_FAILED")


def test_two_spf_records_are_a_permerror(zone: DnsServer, domain: str) -> None:
    zone.add(domain, "TXT", '"v=spf1 -all"')
    zone.add(domain, "TXT", '"v=spf1 +all"')
    assert run(zone, mail_from=f"x@{domain}", raw=message(domain)).spf_result == "permerror"


def test_spf_include_redirect_a_mx_and_macros(zone: DnsServer, domain: str) -> None:
    zone.add(f"_spf.{domain}", "TXT", '"v=spf1 a:out.' + domain + '/28 -all"')
    zone.add(f"out.{domain}", "A", "192.0.2.1")  # /28 covers .0-.15, so the client .10
    v = spf(zone, domain, f"v=spf1 include:_spf.{domain} -all")
    assert v.spf_result == "pass"
    assert v.spf_domain == domain  # an include leaves the domain SES names as it was

    other = f"r{domain}"
    zone.add(other, "TXT", f'"v=spf1 redirect=_spf.{domain}"')
    v = run(zone, mail_from=f"b@{other}", raw=message(other))
    assert (v.spf_result, v.spf_domain) == ("pass", f"_spf.{domain}")  # a redirect replaces it
    assert f"domain of _spf.{domain} designates {CLIENT} as permitted sender" in authentication_results(
        "x", v
    )

    mx = f"m{domain}"
    zone.add(mx, "MX", f"10 mail.{mx}.")
    zone.add(f"mail.{mx}", "A", CLIENT)
    assert spf(zone, mx, "v=spf1 mx -all").spf_result == "pass"

    exists = f"e{domain}"
    zone.add(f"{CLIENT}.allow.{exists}", "A", "127.0.0.2")
    assert spf(zone, exists, "v=spf1 exists:%{i}.allow.%{d} -all").spf_result == "pass"
    reversed_ = f"f{domain}"  # %{ir}: the address's octets reversed; no record there
    record = f"v=spf1 exists:%{{ir}}.allow.{exists} -all"
    assert spf(zone, reversed_, record).spf == "FAIL"
    assert ("10.2.0.192.allow." + exists + ".", "A") in zone.queries


def test_spf_ptr_needs_a_name_that_points_back(zone: DnsServer, domain: str) -> None:
    zone.add("11.2.0.192.in-addr.arpa", "PTR", f"mail.{domain}.")
    zone.add(f"mail.{domain}", "A", "192.0.2.11")
    zone.add("12.2.0.192.in-addr.arpa", "PTR", f"liar.{domain}.")  # whose A record is another address
    zone.add(f"liar.{domain}", "A", "198.51.100.1")
    zone.add(domain, "TXT", '"v=spf1 ptr -all"')
    assert run(zone, mail_from=f"b@{domain}", raw=message(domain), client_ip="192.0.2.11").spf == "PASS"
    assert run(zone, mail_from=f"b@{domain}", raw=message(domain), client_ip="192.0.2.12").spf == "FAIL"


def test_spf_ipv6_client(zone: DnsServer, domain: str) -> None:
    v = spf(zone, domain, f"v=spf1 ip4:192.0.2.0/24 a:v6.{domain}/24//64 -all", client_ip="2001:db8::25")
    zone.add(f"v6.{domain}", "AAAA", "2001:db8::1")
    assert v.spf_result == "fail"  # published after the first check
    v = run(zone, mail_from=f"b@{domain}", raw=message(domain), client_ip="2001:db8::25")
    assert v.spf_result == "pass"
    other = f"x{domain}"
    assert spf(zone, other, "v=spf1 ip6:2001:db8::/32 -all", client_ip="2001:db8::25").spf == "PASS"
    assert "client-ip=2001:db8::25;" in authentication_results("x", v)


def test_spf_lookup_limits_are_permerrors(zone: DnsServer, domain: str) -> None:
    # RFC 7208 §4.6.4: an eleventh DNS-querying term…
    for n in range(11):
        zone.add(f"i{n}.{domain}", "TXT", f'"v=spf1 include:i{n + 1}.{domain} -all"')
    zone.add(f"i11.{domain}", "TXT", f'"v=spf1 ip4:{CLIENT} -all"')
    assert spf(zone, domain, f"v=spf1 include:i0.{domain} -all").spf_result == "permerror"
    # …and a third void lookup.
    void = f"v{domain}"
    record = f"v=spf1 a:no1.{void} a:no2.{void} a:no3.{void} ip4:{CLIENT} -all"
    assert spf(zone, void, record).spf_result == "permerror"


def test_null_mail_from_checks_the_helo_name(zone: DnsServer, domain: str) -> None:
    zone.add(f"mx.{domain}", "TXT", f'"v=spf1 ip4:{CLIENT} -all"')
    v = run(zone, mail_from="", helo=f"mx.{domain}", raw=message(domain))
    assert (v.spf_result, v.spf_domain) == ("pass", f"mx.{domain}")


# --- DKIM (RFC 6376) --------------------------------------------------------------------------------


def test_dkim_pass_fail_and_unsigned(zone: DnsServer, domain: str, key_pem: str) -> None:
    publish_key(zone, "s1", domain, key_pem)
    signed = sign(message(domain), SigningKey("s1", domain, key_pem))
    v = run(zone, mail_from=f"b@{domain}", raw=signed)
    assert v.dkim == "PASS"
    assert f"dkim=pass header.i=@{domain};" in authentication_results("x", v)

    altered = signed.replace(b"Hello.", b"Hello!")  # the body hash no longer matches
    v = run(zone, mail_from=f"b@{domain}", raw=altered)
    assert v.dkim == "FAIL"
    assert f"dkim=fail header.i=@{domain};" in authentication_results("x", v)

    v = run(zone, mail_from=f"b@{domain}", raw=message(domain))
    assert v.dkim == "GRAY"
    assert "dkim=" not in authentication_results("x", v)


def test_dkim_third_party_signature_alone_is_gray(zone: DnsServer, domain: str, key_pem: str) -> None:
    esp = f"esp-{domain}"
    publish_key(zone, "s1", esp, key_pem)
    v = run(zone, mail_from=f"b@{domain}", raw=sign(message(domain), SigningKey("s1", esp, key_pem)))
    assert v.dkim == "GRAY"
    assert v.dkim_signatures[0].result == "pass"  # still verified, and listed in the header
    assert f"dkim=pass header.i=@{esp};" in authentication_results("x", v)


def test_dkim_key_lookup_failure_is_processing_failed(zone: DnsServer, domain: str, key_pem: str) -> None:
    zone.fail(f"s1._domainkey.{domain}")
    v = run(zone, mail_from=f"b@{domain}", raw=sign(message(domain), SigningKey("s1", domain, key_pem)))
    assert v.dkim == "PROCESSING_FAILED"
    assert v.dkim_signatures[0].result == "temperror"


def test_malformed_signature_or_message_is_processing_failed(zone: DnsServer, domain: str) -> None:
    v = run(zone, mail_from=f"b@{domain}", raw=b"DKIM-Signature: nonsense\r\n" + message(domain))
    assert (v.dkim, v.dkim_signatures[0].result) == ("PROCESSING_FAILED", "permerror")
    v = run(zone, mail_from=f"b@{domain}", raw=b"no header here\r\n\r\nbody\r\n")
    assert (v.dkim, v.dmarc) == ("PROCESSING_FAILED", "PROCESSING_FAILED")


def test_dkim_missing_key_fails(zone: DnsServer, domain: str, key_pem: str) -> None:
    v = run(zone, mail_from=f"b@{domain}", raw=sign(message(domain), SigningKey("s9", domain, key_pem)))
    assert v.dkim == "FAIL"


# --- DMARC (RFC 7489) -------------------------------------------------------------------------------


def test_dmarc_passes_on_aligned_dkim(zone: DnsServer, domain: str, key_pem: str) -> None:
    zone.add(f"_dmarc.{domain}", "TXT", '"v=DMARC1; p=reject"')
    publish_key(zone, "s1", domain, key_pem)
    raw = sign(message(domain), SigningKey("s1", domain, key_pem))
    v = run(zone, mail_from="bounce@elsewhere.test", raw=raw)  # SPF cannot align: another domain
    assert (v.dmarc, v.dmarc_policy) == ("PASS", None)
    assert "dmarcPolicy" not in v.receipt()
    assert authentication_results("x", v).endswith(f"dmarc=pass header.from={domain};")


def test_dmarc_passes_on_relaxed_spf_alignment(zone: DnsServer, domain: str) -> None:
    zone.add(f"_dmarc.{domain}", "TXT", '"v=DMARC1; p=quarantine"')
    zone.add(f"bounces.{domain}", "TXT", f'"v=spf1 ip4:{CLIENT} -all"')
    v = run(zone, mail_from=f"b@bounces.{domain}", raw=message(domain))
    assert (v.spf, v.dmarc) == ("PASS", "PASS")


def test_dmarc_strict_spf_alignment_fails_a_subdomain(zone: DnsServer, domain: str) -> None:
    zone.add(f"_dmarc.{domain}", "TXT", '"v=DMARC1; p=quarantine; aspf=s"')
    zone.add(f"bounces.{domain}", "TXT", f'"v=spf1 ip4:{CLIENT} -all"')
    v = run(zone, mail_from=f"b@bounces.{domain}", raw=message(domain))
    assert (v.spf, v.dmarc, v.dmarc_policy) == ("PASS", "FAIL", "quarantine")


def test_dmarc_failure_reports_the_policy(zone: DnsServer, domain: str) -> None:
    zone.add(f"_dmarc.{domain}", "TXT", '"v=DMARC1; p=reject; rua=mailto:d@example.test"')
    v = run(zone, mail_from="b@elsewhere.test", raw=message(domain))
    assert (v.dmarc, v.dmarc_policy) == ("FAIL", "reject")
    receipt = v.receipt()
    assert receipt["dmarcVerdict"] == {"status": "FAIL"}
    assert receipt["dmarcPolicy"] == "reject"
    assert f"dmarc=fail header.from={domain};" in authentication_results("x", v)


def test_dmarc_p_none_fails_with_policy_none(zone: DnsServer, domain: str) -> None:
    # SES's own notifications: "dmarcVerdict": {"status": "FAIL"} with "dmarcPolicy": "none".
    zone.add(f"_dmarc.{domain}", "TXT", '"v=DMARC1; p=none"')
    v = run(zone, mail_from="b@elsewhere.test", raw=message(domain))
    assert v.receipt()["dmarcVerdict"] == {"status": "FAIL"}
    assert v.receipt()["dmarcPolicy"] == "none"


def test_dmarc_without_a_record_is_gray(zone: DnsServer, domain: str) -> None:
    v = run(zone, mail_from="b@elsewhere.test", raw=message(domain))
    assert (v.dmarc, v.dmarc_policy, v.dmarc_result) == ("GRAY", None, "none")
    assert "dmarcPolicy" not in v.receipt()


def test_dmarc_subdomain_uses_the_organizational_record_and_sp(zone: DnsServer, domain: str) -> None:
    zone.add(f"_dmarc.{domain}", "TXT", '"v=DMARC1; p=reject; sp=quarantine"')
    v = run(zone, mail_from="b@elsewhere.test", raw=message(f"news.{domain}"))
    assert (v.dmarc, v.dmarc_policy) == ("FAIL", "quarantine")


def test_dmarc_dns_failure_is_processing_failed(zone: DnsServer, domain: str) -> None:
    zone.fail(f"_dmarc.{domain}")
    v = run(zone, mail_from="b@elsewhere.test", raw=message(domain))
    assert (v.dmarc, v.dmarc_result) == ("PROCESSING_FAILED", "temperror")


# --- spam and virus scanning ------------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def fake_spamd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """SpamAssassin's spamd, as far as CHECK goes: spam when the body says "viagra"."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    request, *fields = head.strip().split("\r\n")
    assert request == "CHECK SPAMC/1.5"
    length = int(dict(f.split(": ", 1) for f in fields)["Content-length"])
    body = await reader.readexactly(length)
    spam = b"viagra" in body
    writer.write(f"SPAMD/1.1 0 EX_OK\r\nSpam: {spam} ; {15.0 if spam else 1.2} / 5.0\r\n\r\n".encode())
    writer.close()
    await writer.wait_closed()


async def fake_clamd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """ClamAV's clamd, as far as zINSTREAM goes: finds the EICAR test file."""
    assert await reader.readexactly(10) == b"zINSTREAM\0"
    data = b""
    while size := struct.unpack(">I", await reader.readexactly(4))[0]:
        data += await reader.readexactly(size)
    writer.write(b"stream: Eicar-Test-Signature FOUND\0" if EICAR in data else b"stream: OK\0")
    writer.close()
    await writer.wait_closed()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Takes the message and never answers, until the client gives up and closes."""
    await reader.read()
    writer.close()
    await writer.wait_closed()


def scanned(zone: DnsServer, raw: bytes, settings: dict[str, Any], servers: dict[str, Handler]) -> Verdicts:
    """``raw`` received by a scanning rule, with the given stand-ins listening on loopback."""

    async def go() -> Verdicts:
        started = []
        for name, handler in servers.items():
            server = await asyncio.start_server(handler, "127.0.0.1", 0)
            started.append(server)
            settings[name] = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            lookup = Lookup(DnsSettings(nameservers=[zone.address], timeout=2.0))
            scan = Scanners.from_settings(ReceivingSettings(**settings))
            return await evaluate(
                lookup, client_ip=CLIENT, helo="mx.test", mail_from="a@b.test", message=raw, scan=scan
            )
        finally:
            for server in started:
                server.close()
                await server.wait_closed()

    return asyncio.run(go())


def test_spamd_and_clamd_verdicts(zone: DnsServer) -> None:
    servers: dict[str, Handler] = {"spamd": fake_spamd, "clamd": fake_clamd}
    clean = scanned(zone, message("b.test"), {}, servers)
    assert (clean.spam, clean.virus) == ("PASS", "PASS")
    assert clean.spam_detail == "score 1.2 / 5.0"

    bad = scanned(zone, message("b.test", b"cheap viagra\r\n" + EICAR + b"\r\n" * 40_000), {}, servers)
    assert (bad.spam, bad.virus) == ("FAIL", "FAIL")  # 80 KB: more than one INSTREAM chunk
    assert bad.virus_detail == "Eicar-Test-Signature"
    assert bad.receipt()["spamVerdict"] == {"status": "FAIL"}
    assert bad.receipt()["virusVerdict"] == {"status": "FAIL"}


def test_no_scanner_configured_is_gray(zone: DnsServer) -> None:
    v = scanned(zone, message("b.test"), {}, {})
    assert (v.spam, v.virus) == ("GRAY", "GRAY")


def test_unreachable_or_silent_scanners_are_processing_failed(zone: DnsServer) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again before the scan: connection refused
    v = scanned(
        zone, message("b.test"), {"spamd": f"127.0.0.1:{port}", "scan_timeout": 0.5}, {"clamd": silent}
    )
    assert (v.spam, v.virus) == ("PROCESSING_FAILED", "PROCESSING_FAILED")


def test_rule_without_scanning_reports_disabled(zone: DnsServer) -> None:
    v = run(zone, mail_from="a@b.test", raw=message("b.test"))
    assert (v.spam, v.virus) == (None, None)
    assert v.receipt()["spamVerdict"] == {"status": "DISABLED"}
    assert v.receipt()["virusVerdict"] == {"status": "DISABLED"}


def test_dnsbl_listing_is_spam(zone: DnsServer, domain: str) -> None:
    zone.add(f"10.2.0.192.bl.{domain}", "A", "127.0.0.2")  # RFC 5782 §2.1: reversed octets
    listed = scanned(zone, message("b.test"), {"dnsbl": [f"bl.{domain}"]}, {})
    assert (listed.spam, listed.spam_detail) == ("FAIL", f"{CLIENT} listed in bl.{domain}")
    clean = scanned(zone, message("b.test"), {"dnsbl": [f"other.{domain}"]}, {})
    assert clean.spam == "PASS"
