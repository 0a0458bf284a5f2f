"""DKIM signing: SES's tags and field list, relaxed/relaxed, and dkimpy verifying what we sign."""

from __future__ import annotations

import base64
import re

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sesame.mail import dkim as sesame_dkim
from sesame.mail.dkim import SIGNED_HEADERS, DkimError, SigningKey, sign, txt_record

NOW = 1_700_000_000

MESSAGE = (
    b"From: Sender <sender@example.com>\r\n"
    b"To: rcpt@example.org\r\n"
    b"Subject: Hello\r\n"
    b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    b"Message-ID: <0100018bd0a8-0001@email.amazonses.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=UTF-8\r\n"
    b"Content-Transfer-Encoding: 7bit\r\n"
    b"\r\n"
    b"Hello,\r\n"
    b"\r\n"
    b"a body line.\r\n"
)


def _pem(key: rsa.RSAPrivateKey, fmt: serialization.PrivateFormat) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def rsa_keys() -> dict[int, rsa.RSAPrivateKey]:
    return {bits: rsa.generate_private_key(public_exponent=65537, key_size=bits) for bits in (1024, 2048)}


@pytest.fixture(params=[1024, 2048], ids=["rsa1024", "rsa2048"])
def key(request: pytest.FixtureRequest, rsa_keys: dict[int, rsa.RSAPrivateKey]) -> SigningKey:
    pem = _pem(rsa_keys[request.param], serialization.PrivateFormat.PKCS8)
    return SigningKey(selector="s1", domain="example.com", private_key_pem=pem)


@pytest.fixture
def key2048(rsa_keys: dict[int, rsa.RSAPrivateKey]) -> SigningKey:
    pem = _pem(rsa_keys[2048], serialization.PrivateFormat.TraditionalOpenSSL)
    return SigningKey(selector="s1", domain="example.com", private_key_pem=pem)


def verify(message: bytes, key: SigningKey) -> bool:
    """dkimpy's verdict, with the key served for exactly ``<selector>._domainkey.<domain>.``."""
    records = {f"{key.selector}._domainkey.{key.domain}.".encode(): txt_record(key.private_key_pem).encode()}

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    return bool(dkim.verify(message, dnsfunc=dnsfunc))


def signature_field(signed: bytes) -> bytes:
    """The DKIM-Signature field at the top of ``signed``, unfolded."""
    assert signed.startswith(b"DKIM-Signature: ")
    field = re.match(rb"DKIM-Signature:(.*?\r?\n(?:[ \t].*?\r?\n)*)", signed, re.S)
    assert field
    return re.sub(rb"\r?\n", b"", field.group(1))


def tags(signed: bytes) -> dict[str, str]:
    value = signature_field(signed).decode()
    pairs = (part.strip().split("=", 1) for part in value.split(";") if part.strip())
    return {name.strip(): re.sub(r"\s+", "", val) for name, val in pairs}


# -- verification by dkimpy -----------------------------------------------------------------------


def test_signed_message_verifies(key: SigningKey) -> None:
    signed = sign(MESSAGE, key, now=NOW)
    assert signed.endswith(MESSAGE)  # the caller's bytes, untouched, after the new field
    assert verify(signed, key)


def test_lf_message_verifies_and_keeps_its_line_ends(key: SigningKey) -> None:
    message = MESSAGE.replace(b"\r\n", b"\n")
    signed = sign(message, key, now=NOW)
    assert b"\r" not in signed
    assert signed.endswith(message)
    assert verify(signed, key)
    # and as SMTP carries it (aiosmtplib turns every line end into CRLF)
    assert verify(signed.replace(b"\n", b"\r\n"), key)


def test_folded_headers_verify(key: SigningKey) -> None:
    message = (
        b"From: Sender\r\n <sender@example.com>\r\n"
        b"To: one@example.org,\r\n\ttwo@example.org,\r\n    three@example.org\r\n"
        b"Subject:   A subject\r\n  folded \t over   lines  \r\n"
        b"X-Unsigned: folded\r\n and not signed\r\n"
        b"\r\n"
        b"body\r\n"
    )
    signed = sign(message, key, now=NOW)
    assert tags(signed)["h"] == "Subject:From:To"
    assert verify(signed, key)


def test_trailing_blank_lines_and_whitespace_are_canonicalized(key: SigningKey) -> None:
    message = MESSAGE + b"trailing spaces   \r\n\r\n\r\n\r\n"
    signed = sign(message, key, now=NOW)
    assert verify(signed, key)
    # relaxed/relaxed: relays may strip trailing blank lines and whitespace, or re-space the body
    assert verify(signed.rstrip(b"\r\n") + b"\r\n", key)
    assert verify(signed.replace(b"trailing spaces   ", b"trailing \t spaces"), key)
    assert verify(signed.replace(b"Subject: Hello", b"Subject:   Hello  "), key)
    assert verify(signed.replace(b"\r\nSubject: Hello", b"\r\nSUBJECT:Hello"), key)


def test_body_hash_is_the_relaxed_canonical_body(key2048: SigningKey) -> None:
    # Body "a  b \t\r\n\r\n" canonicalizes to "a b\r\n" (RFC 6376 §3.4.4).
    import hashlib

    expected = base64.b64encode(hashlib.sha256(b"a b\r\n").digest()).decode()
    signed = sign(b"From: a@example.com\r\n\r\na  b \t\r\n\r\n", key2048, now=NOW)
    assert tags(signed)["bh"] == expected
    empty = base64.b64encode(hashlib.sha256(b"").digest()).decode()
    for message in (
        b"From: a@example.com\r\n\r\n",
        b"From: a@example.com\r\n\r\n \r\n\r\n",
        b"From: a@x.com",
    ):
        assert tags(sign(message, key2048, now=NOW))["bh"] == empty


@pytest.mark.parametrize(
    "body",
    [
        "Grüße aus Köln — ünïcödé\r\n".encode(),
        bytes(range(0x80, 0x100)) + b"\r\n",
        "Grüße, 8 Bit\r\n".encode("latin-1") + "und UTF-8: ✓\r\n".encode(),
    ],
    ids=["utf-8", "high-bytes", "mixed-charsets"],
)
def test_8bit_bodies_verify(key: SigningKey, body: bytes) -> None:
    message = MESSAGE.replace(b"7bit", b"8bit") + body
    signed = sign(message, key, now=NOW)
    assert verify(signed, key)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(b"a body line.", b"a body line!"),
        lambda m: m + b"one more line\r\n",
        lambda m: m.replace(b"Subject: Hello", b"Subject: Hello!"),
        lambda m: m.replace(b"From: Sender <sender@example.com>", b"From: Sender <evil@example.com>"),
        lambda m: m.replace(b"c=relaxed/relaxed", b"c=relaxed/simple"),
        lambda m: m.replace(b"t=1700000000", b"t=1700000001"),
        lambda m: m.replace(b"22:13:20", b"22:13:21"),
    ],
    ids=["body", "appended", "subject", "from", "c-tag", "t-tag", "date"],
)
def test_modified_message_fails(key: SigningKey, tamper) -> None:
    signed = sign(MESSAGE, key, now=NOW)
    assert verify(signed, key)
    modified = tamper(signed)
    assert modified != signed
    assert not verify(modified, key)


def test_wrong_key_fails(rsa_keys: dict[int, rsa.RSAPrivateKey], key2048: SigningKey) -> None:
    other = SigningKey("s1", "example.com", _pem(rsa_keys[1024], serialization.PrivateFormat.PKCS8))
    signed = sign(MESSAGE, other, now=NOW)
    assert not verify(signed, key2048)


def test_client_signature_is_kept_and_ours_comes_first(key: SigningKey) -> None:
    message = b"DKIM-Signature: v=1; a=rsa-sha256; d=client.test; s=x; h=From; bh=AAAA; b=BBBB\r\n" + MESSAGE
    signed = sign(message, key, now=NOW)
    assert signed.endswith(message)
    assert "dkim-signature" not in tags(signed)["h"].lower()
    assert verify(signed, key)  # dkimpy checks the topmost signature: ours


def test_message_without_final_line_end_verifies_as_sent(key2048: SigningKey) -> None:
    message = MESSAGE + b"no final newline"
    signed = sign(message, key2048, now=NOW)
    assert signed.endswith(message)
    assert verify(signed, key2048)
    # trailing whitespace on the unterminated last line: signed as SMTP will carry it, CRLF added
    message = MESSAGE + b"no final newline  "
    assert verify(sign(message, key2048, now=NOW) + b"\r\n", key2048)


def test_bare_cr_signed_as_the_wire_carries_it(key2048: SigningKey) -> None:
    # aiosmtplib sends a lone CR as CRLF; the signature is made over that form.
    message = MESSAGE + b"one\rtwo\r\n"
    signed = sign(message, key2048, now=NOW)
    assert verify(re.sub(rb"\r(?!\n)", b"\r\n", signed), key2048)


# -- the signature field --------------------------------------------------------------------------


def test_tags_are_those_ses_writes(key2048: SigningKey) -> None:
    signed = sign(MESSAGE, key2048, now=NOW)
    t = tags(signed)
    assert list(t) == ["v", "a", "q", "c", "s", "d", "t", "h", "bh", "b"]
    assert t["v"] == "1"
    assert t["a"] == "rsa-sha256"
    assert t["q"] == "dns/txt"
    assert t["c"] == "relaxed/relaxed"
    assert (t["s"], t["d"], t["t"]) == ("s1", "example.com", str(NOW))
    assert t["h"] == ("Subject:From:To:Date:Mime-Version:Content-Type:Content-Transfer-Encoding:Message-Id")
    assert len(base64.b64decode(t["b"])) == 256


def test_timestamp_defaults_to_now(key2048: SigningKey) -> None:
    import time

    before = int(time.time())
    stamp = int(tags(sign(MESSAGE, key2048))["t"])
    assert before <= stamp <= int(time.time())


def test_h_lists_only_present_fields_in_ses_order_never_x_ses(key2048: SigningKey) -> None:
    message = (
        b"X-SES-CONFIGURATION-SET: set1\r\n"
        b"X-SES-MESSAGE-TAGS: a=b\r\n"
        b"Feedback-ID: 1.us-east-1.abc=:AmazonSES\r\n"
        b"Message-Id: <m@x>\r\n"
        b"In-Reply-To: <p@x>\r\n"
        b"References: <p@x>\r\n"
        b"Reply-To: r@example.com\r\n"
        b"Cc: c@example.org\r\n"
        b"From: a@example.com\r\n"
        b"X-Mailer: something\r\n"
        b"Received: from somewhere\r\n"
        b"Subject: s\r\n"
        b"List-Unsubscribe: <https://example.com/u>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        b"\r\n"
        b"body\r\n"
    )
    signed = sign(message, key2048, now=NOW)
    h = tags(signed)["h"]
    assert h == (
        "Subject:From:Cc:Reply-To:References:In-Reply-To:List-Unsubscribe:List-Unsubscribe-Post"
        ":Message-Id:Feedback-ID"
    )
    assert "x-ses" not in h.lower() and "x-mailer" not in h.lower() and "received" not in h.lower()
    assert verify(signed, key2048)
    # The X-SES-* fields are not covered: SES strips them before delivery, and so may we.
    stripped = re.sub(rb"X-SES-[A-Z-]+: [^\r]*\r\n", b"", signed)
    assert b"X-SES" not in stripped
    assert verify(stripped, key2048)
    assert not verify(signed.replace(b"Feedback-ID: 1.", b"Feedback-ID: 2."), key2048)


def test_repeated_fields_are_all_signed(key2048: SigningKey) -> None:
    message = b"From: a@example.com\r\nTo: one@example.org\r\nTo: two@example.org\r\n\r\nbody\r\n"
    signed = sign(message, key2048, now=NOW)
    assert tags(signed)["h"] == "From:To:To"
    assert verify(signed, key2048)
    assert not verify(signed.replace(b"To: one@", b"To: evil@"), key2048)


def test_signed_headers_constant_matches_the_observed_list() -> None:
    observed = "Subject:From:To:Cc:Date:Mime-Version:Content-Type:Content-Transfer-Encoding".split(":")
    assert list(SIGNED_HEADERS[: len(observed)]) == observed
    assert SIGNED_HEADERS[-2:] == ("Message-Id", "Feedback-ID")
    assert not any(name.lower().startswith("x-") for name in SIGNED_HEADERS)


@pytest.mark.parametrize("line_end", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_signature_field_is_folded_to_78_columns(rsa_keys, line_end: bytes) -> None:
    pem = _pem(rsa_keys[2048], serialization.PrivateFormat.PKCS8)
    long_key = SigningKey("a" * 40 + ".selector", "mail." + "sub" * 15 + ".example.com", pem)
    message = (
        b"".join(f"{name}: value of {name}".encode() + line_end for name in SIGNED_HEADERS)
        + line_end
        + b"body"
        + line_end
    )
    signed = sign(message, long_key, now=NOW)
    field = signed[: len(signed) - len(message)]
    lines = field.split(line_end)
    assert lines[-1] == b""
    assert len(lines) > 5
    assert all(len(line) <= 78 for line in lines)
    assert all(line[:1] == b"\t" for line in lines[1:-1])
    if line_end == b"\n":
        assert b"\r" not in field
    assert tags(signed)["h"] == ":".join(SIGNED_HEADERS)
    assert verify(signed, long_key)


# -- keys and the TXT record ----------------------------------------------------------------------


def test_txt_record_publishes_the_public_key(rsa_keys: dict[int, rsa.RSAPrivateKey]) -> None:
    private = rsa_keys[2048]
    record = txt_record(_pem(private, serialization.PrivateFormat.PKCS8))
    assert record.startswith("v=DKIM1; k=rsa; p=")
    der = base64.b64decode(record.split("p=", 1)[1])
    public = serialization.load_der_public_key(der)
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == private.public_key().public_numbers()
    assert " " not in record.split("p=", 1)[1]


@pytest.mark.parametrize("form", ["pkcs8", "pkcs1", "bare-base64-der", "padded"], ids=lambda f: f)
def test_key_formats(rsa_keys: dict[int, rsa.RSAPrivateKey], form: str) -> None:
    private = rsa_keys[1024]
    if form == "pkcs8":
        text = _pem(private, serialization.PrivateFormat.PKCS8)
    elif form == "pkcs1":
        text = _pem(private, serialization.PrivateFormat.TraditionalOpenSSL)
    elif form == "padded":
        text = "\n  " + _pem(private, serialization.PrivateFormat.PKCS8) + "\n\n"
    else:  # what SES's BYODKIM DomainSigningPrivateKey takes: base64 DER, no PEM armour
        der = private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        text = base64.b64encode(der).decode()
    key = SigningKey("s2", "example.net", text)
    assert verify(sign(MESSAGE, key, now=NOW), key)


def test_key_is_parsed_once(key2048: SigningKey) -> None:
    sesame_dkim._private_key.cache_clear()
    for _ in range(3):
        sign(MESSAGE, key2048, now=NOW)
    info = sesame_dkim._private_key.cache_info()
    assert (info.misses, info.hits) == (1, 2)


@pytest.mark.parametrize(
    "pem",
    [
        "not a key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "",
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode(),
    ],
    ids=["garbage", "truncated", "empty", "ec-key"],
)
def test_unusable_keys_raise(pem: str) -> None:
    key = SigningKey("s1", "example.com", pem)
    with pytest.raises(DkimError):
        sign(MESSAGE, key)
    with pytest.raises(DkimError):
        txt_record(pem)


@pytest.mark.parametrize(
    ("selector", "domain"),
    [
        ("", "example.com"),
        ("s1", ""),
        ("s 1", "example.com"),
        ("s1", "example.com;x=y"),
        ("s1", "exämple.com"),
    ],
)
def test_invalid_selector_or_domain(selector: str, domain: str) -> None:
    with pytest.raises(DkimError):
        SigningKey(selector, domain, "unused")


@pytest.mark.parametrize(
    "message",
    [
        b" leading continuation\r\nFrom: a@example.com\r\n\r\nx\r\n",
        b"From: a@example.com\r\nno colon here\r\n\r\nx\r\n",
    ],
    ids=["continuation-first", "no-colon"],
)
def test_malformed_header_section_raises(key2048: SigningKey, message: bytes) -> None:
    with pytest.raises(DkimError):
        sign(message, key2048, now=NOW)


@pytest.mark.parametrize(
    "message",
    [b"To: b@example.org\r\nSubject: x\r\n\r\nbody\r\n", b"\r\nonly a body\r\n", b""],
    ids=["no-from", "no-header", "empty"],
)
def test_from_field_is_required(key2048: SigningKey, message: bytes) -> None:
    with pytest.raises(DkimError):
        sign(message, key2048, now=NOW)
