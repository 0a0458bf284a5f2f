"""Addresses at intake: only RFC 5321 mailboxes reach the SMTP envelope, with SES's errors otherwise."""

from __future__ import annotations

import pytest

from sesame.domain.addresses import IllegalAddress, bare_address

ILLEGAL = "Illegal address"
LOCAL_CONTROL = "Local address contains control or whitespace"


@pytest.mark.parametrize(
    ("value", "envelope"),
    [
        ("bob@example.com", "bob@example.com"),
        ("bob+newsletter@example.com", "bob+newsletter@example.com"),
        ("first.last@mail.example.co.uk", "first.last@mail.example.co.uk"),
        ("o'brien!#$%&*/=?^_`{|}~-@example.com", "o'brien!#$%&*/=?^_`{|}~-@example.com"),
        ('"john smith"@example.com', '"john smith"@example.com'),
        ('"a\\"b"@example.com', '"a\\"b"@example.com'),
        ('"plain"@example.com', "plain@example.com"),  # quotes that quote nothing are dropped
        ("Bob Example <bob@example.com>", "bob@example.com"),
        ('"Example, Bob" <bob@example.com>', "bob@example.com"),
        ("Café Ünicode <news@example.com>", "news@example.com"),
        ("=?utf-8?q?Caf=C3=A9?= <news@example.com>", "news@example.com"),
        ("<bob@example.com>", "bob@example.com"),
        ("bob@EXAMPLE.com", "bob@EXAMPLE.com"),
        ("user@bücher.example", "user@xn--bcher-kva.example"),  # IDN: punycode in the envelope
        ("Anna <anna@münchen.de>", "anna@xn--mnchen-3ya.de"),
        ("x@xn--bcher-kva.example", "x@xn--bcher-kva.example"),
        ("x@3com.example", "x@3com.example"),
        ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),  # RFC 5321 §4.5.3.1.1: 64 octets
        ("x@" + "b" * 63 + ".example", "x@" + "b" * 63 + ".example"),  # RFC 1035: 63-octet label
        ("x@localhost", "x@localhost"),  # RFC 5321 §4.1.2: a Domain of one label
        ("invalid@invalid", "invalid@invalid"),  # nodemailer's verify() sends this, expecting "unverified"
    ],
)
def test_mailboxes_that_stay_valid(value: str, envelope: str) -> None:
    assert bare_address(value) == envelope


def _refused(value: str) -> str:
    with pytest.raises(IllegalAddress) as err:
        bare_address(value)
    assert err.value.kind == "invalid"
    return err.value.message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # The injection of issue 16: a line feed in a quoted local part behind a +label.
        ('bob+"\nRCPT TO:<evil@evil.test>\nNOOP\nNOOP "@bob.test', LOCAL_CONTROL),
        ('"x\nDATA"@a.test', LOCAL_CONTROL),
        ('"x\r\nDATA"@a.test', LOCAL_CONTROL),
        ("x\x00@a.test", LOCAL_CONTROL),
        ('"x\ty"@a.test', LOCAL_CONTROL),
        ("x\x7f@a.test", LOCAL_CONTROL),
        ("Name\n <x@a.test>", LOCAL_CONTROL),
        ("x@a.te\nst", "Domain contains control or whitespace"),
        ("x@a.test\x00", "Domain contains control or whitespace"),
        ("jö@example.com", LOCAL_CONTROL),  # SES has no SMTPUTF8
        ('"a<b"@example.com', ILLEGAL),
        ('"a>b"@example.com', ILLEGAL),
        ('"<evil@evil.test>"@example.com', ILLEGAL),
        ("a" * 65 + "@example.com", ILLEGAL),
        ("x@" + "b" * 64 + ".example", ILLEGAL),
        ("x@" + ".".join(["b" * 63] * 4) + ".test", ILLEGAL),  # path over 256 octets (§4.5.3.1.3)
        ("x@[192.0.2.1]", ILLEGAL),
        ("x@[IPv6:2001:db8::1]", ILLEGAL),
        ("x@-bad.example", ILLEGAL),
        ("x@bad-.example", ILLEGAL),
        ("x@under_score.example", ILLEGAL),
        ("x@example..com", ILLEGAL),
        ("x@example.com.", ILLEGAL),
        ("a..b@example.com", ILLEGAL),
        (".a@example.com", ILLEGAL),
        ("a.@example.com", ILLEGAL),
        ('bob+"x y"@example.com', ILLEGAL),  # obsolete mixed local part
        ('""@example.com', ILLEGAL),
        ("@example.com", ILLEGAL),
        ("x@", ILLEGAL),
        ("a@b@example.com", ILLEGAL),
        ("a@example.com, b@example.com", ILLEGAL),
        ("Name <a@example.com> trailing", ILLEGAL),
        ("ceo@bank.test)<me@example.com>", ILLEGAL),
        ("group: a@example.com;", ILLEGAL),
        ("v@[", ILLEGAL),  # junk that makes the stdlib parser raise AttributeError,
        ("I@", ILLEGAL),  # ... IndexError,
        (" .GT@", ILLEGAL),  # ... TypeError,
        (";d <H\\Y,F@[ ", ILLEGAL),  # ... UnboundLocalError
    ],
)
def test_anything_else_is_refused_with_ses_words(value: str, message: str) -> None:
    assert _refused(value) == message


@pytest.mark.parametrize("value", ["bob", "Bob Example <bob>", "", "<>", "bob.example.com"])
def test_an_address_without_at_is_missing_its_domain(value: str) -> None:
    assert _refused(value) == "Missing final '@domain'"  # SES's words for it
