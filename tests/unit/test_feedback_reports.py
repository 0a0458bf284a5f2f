"""Reading late feedback (mail/feedback.py) from the fixtures, and building DSNs (mail/dsn.py) that the
reader, and the classifier behind Bounce events, take back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sesame.mail.dsn import BOUNCE_TYPES, RecipientDsn, build_dsn, recipient_for
from sesame.mail.feedback import Arf, AutoReply, Dsn, parse_report
from sesame.mta.bounce import classify_dsn
from sesame.mta.return_path import envelope_sender, message_id_of

FIXTURES = Path(__file__).parent.parent / "fixtures" / "feedback"
MID = "0100019a2b3c4d5e-8f2c1a4b-7d3e-4f51-9a62-3b8c7d6e5f40-000000"
UTC = dt.UTC


def report(name: str) -> Dsn | Arf | AutoReply | None:
    return parse_report((FIXTURES / name).read_bytes())


def dsn(name: str) -> Dsn:
    got = report(name)
    assert isinstance(got, Dsn), got
    assert got.original_message_id == f"{MID}@email.amazonses.com"
    return got


def verdict(d: Dsn, i: int = 0) -> tuple[str | None, str, str]:
    r = d.recipients[i]
    v = classify_dsn(r.action, r.status, r.diagnostic_code)
    return v.bounce_type, v.bounce_subtype, v.status


def test_gmail_user_unknown() -> None:
    d = dsn("gmail_user_unknown.eml")
    assert d.reporting_mta == "dns; googlemail.example"
    assert d.arrival_date == dt.datetime(2025, 6, 3, 16, 12, 44, tzinfo=UTC)
    assert d.reporter == "mailer-daemon@googlemail.example"
    (r,) = d.recipients
    assert (r.final_recipient, r.action, r.status) == ("jdoe@gmail.example", "failed", "5.1.1")
    assert r.diagnostic_code is not None and r.diagnostic_code.startswith("smtp; 550-5.1.1 The email account")
    assert "unnecessary spaces" in r.diagnostic_code  # continuation lines are part of the field
    assert r.remote_mta is not None and r.remote_mta.startswith("dns; gmail-smtp-in.l.google.example.")
    assert r.last_attempt_date == dt.datetime(2025, 6, 3, 16, 12, 45, tzinfo=UTC)
    assert verdict(d) == ("Permanent", "General", "5.1.1")


def test_outlook_ndr() -> None:
    d = dsn("outlook_ndr.eml")
    assert d.reporting_mta == "dns;AM0PR01MB1234.eurprd01.prod.outlook.example"
    (r,) = d.recipients
    assert r.final_recipient == "someone@outlook.example"
    assert r.fields["x-display-name"] == "someone"
    assert verdict(d) == ("Permanent", "General", "5.1.10")


def test_yahoo_mailbox_full_is_a_soft_bounce() -> None:
    d = dsn("yahoo_mailbox_full.eml")
    (r,) = d.recipients
    assert r.original_recipient == r.final_recipient == "full.box@yahoo.example"
    assert verdict(d) == ("Transient", "MailboxFull", "5.2.2")


def test_postfix() -> None:
    d = dsn("postfix_user_unknown.eml")
    assert d.fields["x-postfix-queue-id"] == "4Abc12XyzZ9"
    assert d.arrival_date == dt.datetime(2025, 6, 6, 6, 30, 1, tzinfo=UTC)
    (r,) = d.recipients
    assert r.remote_mta == "dns; store.postfix.example"
    assert r.diagnostic_code == (
        "smtp; 550 5.1.1 <gone@postfix.example>: Recipient address rejected: User unknown in virtual"
        " mailbox table"
    )
    assert verdict(d) == ("Permanent", "General", "5.1.1")


def test_exim_without_a_diagnostic_code() -> None:
    d = dsn("exim_unrouteable.eml")
    assert d.arrival_date is None
    (r,) = d.recipients
    assert (r.final_recipient, r.diagnostic_code) == ("nope@exim.example", None)
    assert r.fields["x-exim-diagnostic"] == "X-str; Unrouteable address"
    assert verdict(d) == ("Permanent", "General", "5.0.0")


def test_delayed() -> None:
    d = dsn("delayed.eml")
    (r,) = d.recipients
    assert (r.action, r.status) == ("delayed", "4.4.1")
    assert r.will_retry_until == dt.datetime(2025, 6, 9, 14, tzinfo=UTC)
    assert classify_dsn(r.action, r.status, r.diagnostic_code).temporary


def test_multi_recipient() -> None:
    d = dsn("multi_recipient.eml")
    assert d.original_envelope_id == MID
    assert [(r.final_recipient, r.action) for r in d.recipients] == [
        ("a@multi.example", "failed"),
        ("b@multi.example", "failed"),
        ("c@multi.example", "delayed"),
        ("d@multi.example", "delivered"),
    ]
    assert verdict(d, 0) == ("Permanent", "General", "5.1.1")
    assert verdict(d, 1) == ("Transient", "MailboxFull", "4.2.2")  # failed with a 4.x.x: soft


def test_arf_yahoo_abuse() -> None:
    got = report("arf_yahoo_abuse.eml")
    assert isinstance(got, Arf)
    assert (got.feedback_type, got.user_agent, got.version) == ("abuse", "Yahoo!-Mail-Feedback/2.0", "1")
    assert got.original_mail_from == f"{MID}@bounces.sesame.test"
    assert got.original_rcpt_to == ("reader@yahoo.example",)
    assert got.arrival_date == dt.datetime(2025, 6, 9, 18, 19, 55, tzinfo=UTC)
    assert (got.reported_domain, got.source_ip) == (("shop.example",), "192.0.2.10")
    assert got.reporter == "feedback@arf.mail.yahoo.example"
    assert got.original_message_id == f"{MID}@email.amazonses.com"


def test_arf_aol_redacted_with_received_date() -> None:
    got = report("arf_aol_redacted.eml")
    assert isinstance(got, Arf)
    assert (got.feedback_type, got.user_agent, got.original_rcpt_to) == ("abuse", "AOL SComp", ())
    assert got.arrival_date == dt.datetime(2025, 6, 10, 10, 58, tzinfo=UTC)  # from Received-Date
    assert got.original_message_id == f"{MID}@email.amazonses.com"


def test_arf_microsoft_jmrp() -> None:
    got = report("arf_microsoft_jmrp.eml")
    assert isinstance(got, Arf)
    assert (got.feedback_type, got.user_agent, got.reporter) == (
        "abuse",
        "Hotmail FBL",
        "staff@hotmail.example",
    )
    assert ("X-HmXmrOriginalRecipient", "<user@hotmail.example>") in got.original_headers


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("ooto_auto_submitted.eml", "Auto-Submitted: auto-replied"),
        ("ooto_legacy.eml", "Precedence: auto_reply"),
    ],
)
def test_auto_replies_are_not_bounces(name: str, reason: str) -> None:
    got = report(name)
    assert isinstance(got, AutoReply)
    assert got.reason == reason


@pytest.mark.parametrize(
    "name",
    [
        "malformed_no_recipients.eml",
        "malformed_truncated.eml",
        "malformed_plain.eml",
        "malformed_bad_boundary.eml",
        "malformed_binary.eml",
    ],
)
def test_malformed_is_none(name: str) -> None:
    assert report(name) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n",
        b"\x00\xff" * 100,
        b"Content-Type: multipart/report\r\n\r\n",
        b"From: x\n\n" + b"=" * 10000,
    ],
)
def test_never_raises(raw: bytes) -> None:
    assert parse_report(raw) is None


def test_every_fixture_is_tested() -> None:
    names = {p.name for p in FIXTURES.iterdir()}
    assert len(names) >= 17


# -- building DSNs ---------------------------------------------------------------------------------

ORIGINAL = (
    b"From: sender@shop.example\r\nTo: x@inbound.example\r\nSubject: hi\r\n"
    b"Message-ID: <orig-1@shop.example>\r\n\r\nthe body, not returned\r\n"
)


def test_build_dsn_round_trip() -> None:
    when = dt.datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    raw = build_dsn(
        reporting_mta="dns; inbound-smtp.us-east-1.sesame.test",
        sender="MAILER-DAEMON@inbound.example",
        to="sender@shop.example",
        original=ORIGINAL,
        recipients=[
            recipient_for("x@inbound.example", "DoesNotExist"),
            RecipientDsn(
                "y@inbound.example",
                action="delayed",
                status="4.2.2",
                diagnostic_code="smtp; 452 4.2.2 Mailbox full",
                remote_mta="mx.inbound.example",
                last_attempt_date=when,
                extension_fields=[("X-Note", "second try")],
            ),
        ],
        explanation="Naïve explanation: it bounced.",
        arrival_date=when,
        extension_fields=[("X-Sesame-Rule", "bounce-all")],
    )
    assert b"the body, not returned" not in raw
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    got = parse_report(raw)
    assert isinstance(got, Dsn)
    assert got.reporting_mta == "dns; inbound-smtp.us-east-1.sesame.test"
    assert got.arrival_date == when
    assert got.fields["x-sesame-rule"] == "bounce-all"
    assert got.reporter == "MAILER-DAEMON@inbound.example"
    assert got.original_message_id == "orig-1@shop.example"
    first, second = got.recipients
    assert (first.final_recipient, first.action, first.status) == ("x@inbound.example", "failed", "5.1.1")
    assert first.diagnostic_code == "smtp; 550 5.1.1 Mailbox does not exist"
    v = classify_dsn(first.action, first.status, first.diagnostic_code)
    assert (v.bounce_type, v.bounce_subtype) == ("Permanent", "General")
    assert (second.action, second.remote_mta, second.last_attempt_date) == (
        "delayed",
        "dns; mx.inbound.example",
        when,
    )
    assert second.fields["x-note"] == "second try"


@pytest.mark.parametrize(
    ("bounce_type", "status", "bounce", "subtype"),
    [
        ("DoesNotExist", "5.1.1", "Permanent", "General"),
        ("MessageTooLarge", "5.3.4", "Transient", "MessageTooLarge"),
        ("ExceededQuota", "5.2.2", "Transient", "MailboxFull"),
        ("ContentRejected", "5.6.1", "Transient", "ContentRejected"),
        ("Undefined", "5.0.0", "Permanent", "General"),
        ("TemporaryFailure", "4.0.0", "Transient", "General"),
    ],
)
def test_send_bounce_types(bounce_type: str, status: str, bounce: str, subtype: str) -> None:
    """Each SendBounce BounceType's DSN reads back as the bounce SES would report to the sender."""
    assert BOUNCE_TYPES[bounce_type].status == status
    raw = build_dsn(
        reporting_mta="inbound.example",
        sender="postmaster@inbound.example",
        to="sender@shop.example",
        original=ORIGINAL,
        recipients=[recipient_for("x@inbound.example", bounce_type)],
    )
    got = parse_report(raw)
    assert isinstance(got, Dsn)
    (r,) = got.recipients
    v = classify_dsn(r.action, r.status, r.diagnostic_code)
    assert (r.status, v.bounce_type, v.bounce_subtype) == (status, bounce, subtype)


def test_eight_bit_original_headers_go_in_global_headers() -> None:
    raw = build_dsn(
        reporting_mta="inbound.example",
        sender="postmaster@inbound.example",
        to="sender@shop.example",
        original="Subject: Grüße\r\nMessage-ID: <u@x>\r\n\r\n".encode(),
        recipients=[recipient_for("x@inbound.example", "DoesNotExist")],
    )
    assert b"Content-Type: message/global-headers" in raw
    got = parse_report(raw)
    assert isinstance(got, Dsn) and got.original_message_id == "u@x"


def test_build_dsn_refuses_line_breaks_in_names_and_needs_recipients() -> None:
    undefined = recipient_for("x@y", "Undefined")
    with pytest.raises(ValueError):
        build_dsn(reporting_mta="a", sender="b@c", to="d@e", original=ORIGINAL, recipients=[])
    with pytest.raises(ValueError):
        build_dsn(reporting_mta="a", sender="b@c", to="d@e", original=ORIGINAL, recipients=[undefined],
                  extension_fields=[("Bad Name", "v")])  # fmt: skip
    # A value's line breaks are unfolded, never a field of their own.
    raw = build_dsn(reporting_mta="a", sender="b@c", to="d@e", original=ORIGINAL, recipients=[undefined],
                    extension_fields=[("X-A", "1\r\nX-B: 2")])  # fmt: skip
    assert b"\r\nX-B: 2" not in raw


# -- return paths ---------------------------------------------------------------------------------


def test_envelope_sender() -> None:
    assert (
        envelope_sender(MID, "me@shop.example", "mail.shop.example", "bounces.test")
        == f"{MID}@mail.shop.example"
    )
    assert envelope_sender(MID, "me@shop.example", None, "bounces.test") == f"{MID}@bounces.test"
    assert envelope_sender(MID, "me@shop.example", None, "") == "me@shop.example"


def test_message_id_of() -> None:
    assert message_id_of(f"{MID}@bounces.test") == MID
    assert message_id_of(f"<{MID.upper()}@Bounces.Test>", {"bounces.test"}) == MID
    assert message_id_of(f"{MID}@other.test", {"bounces.test"}) is None
    assert message_id_of("me@bounces.test") is None
    assert message_id_of(MID) is None
    assert message_id_of(f"{MID}x@bounces.test") is None
