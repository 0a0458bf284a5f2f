"""The shapes SES gives received mail's verdicts: the receipt members and the header fields of the
stored copy (taken from SES's recorded notifications), built from Verdicts values without any DNS."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

from sesame.receiving.dmarc import aligned, organizational_domain
from sesame.receiving.verdicts import (
    SPF_STATUS,
    DkimSignature,
    Verdicts,
    authentication_results,
    fold,
    received_headers,
    received_spf,
)

WHEN = datetime(2015, 9, 11, 20, 32, 33, tzinfo=UTC)

GOOD = Verdicts(
    spf="PASS",
    dkim="PASS",
    dmarc="PASS",
    spam="PASS",
    virus="PASS",
    client_ip="209.85.218.42",
    helo="mail-ej1-f42.google.com",
    mail_from="someone@gmail.com",
    spf_result="pass",
    spf_domain="_spf.google.com",
    dkim_signatures=(DkimSignature("gmail.com", "@gmail.com", "pass"),),
    dmarc_result="pass",
    from_domain="gmail.com",
)


def test_receipt_members_as_ses_spells_them() -> None:
    assert GOOD.receipt() == {
        "spamVerdict": {"status": "PASS"},
        "virusVerdict": {"status": "PASS"},
        "spfVerdict": {"status": "PASS"},
        "dkimVerdict": {"status": "PASS"},
        "dmarcVerdict": {"status": "PASS"},
    }


def test_dmarc_policy_only_when_dmarc_fails() -> None:
    failed = Verdicts(spf="FAIL", dkim="GRAY", dmarc="FAIL", dmarc_policy="reject")
    assert failed.receipt()["dmarcPolicy"] == "reject"
    assert "dmarcPolicy" not in Verdicts(spf="PASS", dkim="GRAY", dmarc="GRAY").receipt()


def test_unscanned_messages_report_disabled_and_get_no_scan_fields() -> None:
    unscanned = Verdicts(spf="GRAY", dkim="GRAY", dmarc="GRAY", client_ip="192.0.2.1", helo="h.test")
    assert unscanned.receipt()["spamVerdict"] == {"status": "DISABLED"}
    assert unscanned.receipt()["virusVerdict"] == {"status": "DISABLED"}
    block = received_headers(unscanned, hostname="mx.test", message_id="m1", recipient=None, authserv_id="a")
    assert b"X-SES-Spam-Verdict" not in block and b"X-SES-Virus-Verdict" not in block


def test_spf_result_mapping() -> None:
    assert SPF_STATUS == {
        "pass": "PASS",
        "fail": "FAIL",
        "softfail": "GRAY",
        "neutral": "GRAY",
        "none": "GRAY",
        "permerror": "PROCESSING_FAILED",
        "temperror": "PROCESSING_FAILED",
    }


def test_authentication_results_in_ses_shape() -> None:
    assert authentication_results("amazonses.com", GOOD) == (
        "amazonses.com; spf=pass (spfCheck: domain of _spf.google.com designates 209.85.218.42 as permitted"
        " sender) client-ip=209.85.218.42; envelope-from=someone@gmail.com; helo=mail-ej1-f42.google.com;"
        " dkim=pass header.i=@gmail.com; dmarc=pass header.from=gmail.com;"
    )
    assert received_spf(GOOD) == (
        "pass (spfCheck: domain of _spf.google.com designates 209.85.218.42 as permitted sender)"
        " client-ip=209.85.218.42; envelope-from=someone@gmail.com; helo=mail-ej1-f42.google.com;"
    )


def test_spf_comments_per_result() -> None:
    def comment(result: str) -> str:
        v = Verdicts(
            spf="GRAY",
            dkim="GRAY",
            dmarc="GRAY",
            client_ip="192.0.2.1",
            spf_domain="x.test",
            spf_result=result,
        )  # type: ignore[arg-type]
        return received_spf(v).split(")")[0] + ")"

    assert (
        comment("fail")
        == "fail (spfCheck: domain of x.test does not designate 192.0.2.1 as permitted sender)"
    )
    assert comment("softfail") == (
        "softfail (spfCheck: transitioning domain of x.test does not designate 192.0.2.1 as permitted sender)"
    )
    assert (
        comment("neutral")
        == "neutral (spfCheck: 192.0.2.1 is neither permitted nor denied by domain of x.test)"
    )
    assert comment("permerror") == "permerror (spfCheck: Error in processing SPF Record)"


def test_a_hostile_helo_cannot_forge_results() -> None:
    v = Verdicts(
        spf="FAIL",
        dkim="GRAY",
        dmarc="FAIL",
        client_ip="192.0.2.1",
        helo="x; dkim=pass\r\nX-Evil: 1",
        mail_from="a@b.test",
        spf_result="fail",
        spf_domain="b.test",
    )
    value = authentication_results("mx.test", v)
    assert '"x; dkim=pass??X-Evil: 1"' in value
    block = received_headers(
        v, hostname="mx.test", message_id="m", recipient="r@c.test", authserv_id="mx.test"
    )
    assert b"\r\nX-Evil" not in block


def test_received_headers_block() -> None:
    block = received_headers(
        GOOD,
        hostname="inbound-smtp.us-east-1.amazonaws.com",
        message_id="d6iitobk75ur44p8kdnnp7g2n800",
        recipient="recipient@example.com",
        authserv_id="amazonses.com",
        rdns="mail-ej1-f42.google.com",
        when=WHEN,
    )
    assert block.endswith(b"\r\n")
    lines = block.split(b"\r\n")[:-1]
    assert all(len(line) <= 78 for line in lines)
    assert all(b"\n" not in line and b"\r" not in line for line in lines)

    parsed = email.message_from_bytes(block + b"\r\nbody\r\n", policy=email.policy.compat32)
    assert [name for name, _ in parsed.items()] == [
        "Return-Path",
        "Received",
        "X-SES-Spam-Verdict",
        "X-SES-Virus-Verdict",
        "Received-SPF",
        "Authentication-Results",
    ]

    def unfolded(name: str) -> str:
        return " ".join(str(parsed[name]).split())

    assert unfolded("Return-Path") == "<someone@gmail.com>"
    assert unfolded("Received") == (
        "from mail-ej1-f42.google.com (mail-ej1-f42.google.com [209.85.218.42]) by"
        " inbound-smtp.us-east-1.amazonaws.com with SMTP id d6iitobk75ur44p8kdnnp7g2n800 for"
        " recipient@example.com; Fri, 11 Sep 2015 20:32:33 +0000 (UTC)"
    )
    assert unfolded("X-SES-Spam-Verdict") == "PASS"
    assert unfolded("Authentication-Results") == authentication_results("amazonses.com", GOOD)
    assert unfolded("Received-SPF") == received_spf(GOOD)


def test_received_names_an_ipv6_client_as_an_address_literal() -> None:
    v = Verdicts(spf="GRAY", dkim="GRAY", dmarc="GRAY", client_ip="2001:db8::1", helo="h.test")
    block = received_headers(
        v, hostname="mx.test", message_id="m", recipient=None, authserv_id="a", when=WHEN
    )
    assert b"Received: from h.test ([IPv6:2001:db8::1]) by mx.test with SMTP id m;" in block


def test_fold_keeps_words_whole() -> None:
    value = " ".join(["word"] * 40)
    folded = fold("X-Test", value)
    assert folded.replace(b"\r\n ", b" ") == b"X-Test: " + value.encode() + b"\r\n"
    assert max(len(line) for line in folded.split(b"\r\n")) <= 78


def test_organizational_domains_from_the_public_suffix_list() -> None:
    assert organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert organizational_domain("mail.example.com") == "example.com"
    assert organizational_domain("news.example.test") == "example.test"  # the default rule "*"
    assert aligned("r", "bounces.example.com", "example.com")
    assert not aligned("s", "bounces.example.com", "example.com")
    assert aligned("s", "Example.com.", "example.com")
    assert not aligned("r", "example.net", "example.com")
