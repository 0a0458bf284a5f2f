"""The bounce classifier: one case per table row, the DSN path, give-up, local outcomes, delay types."""

from __future__ import annotations

import pytest

from sesame.mta import bounce
from sesame.mta.bounce import (
    DELAY_TYPES,
    LOCAL_KINDS,
    RULES,
    Verdict,
    classify_dsn,
    classify_reply,
    delay_type,
    dsn_to_reply,
    give_up,
    local,
)
from sesame.mta.reply import SmtpReply


def case(reply: SmtpReply, row: str, outcome: str, status: str, delay: str):
    """``outcome``: "Type/Subtype" when it bounces now, "retry/Subtype" while it is retried."""
    return pytest.param(reply, row, outcome, status, delay, id=f"{row}-{reply.code}")


R = SmtpReply
UNSOLICITED = "4.7.28 Our system has detected an unusual rate of unsolicited mail from your IP address"
SPAMHAUS = "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"
YAHOO = "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume"
CLOSING = "mx.example.com Service not available, closing transmission channel"
RSE, TCF = "RecipientServerError", "TransientCommunicationFailure"
TOO_LARGE, CONTENT = "Transient/MessageTooLarge", "Transient/ContentRejected"
HARD, SOFT, FULL = "Permanent/General", "Transient/General", "Transient/MailboxFull"
RETRY, RETRY_FULL = "retry/General", "retry/MailboxFull"
ATTACHMENT = "Transient/AttachmentRejected"

# the reply, the row it must match, outcome, status, delay type
ROW_CASES = [
    case(R(556, None, "5.1.10 Recipient address has null MX"), "null-mx", HARD, "5.1.10", RSE),
    case(R(550, None, "4.4.7 Message expired: unable to deliver"), "expired", SOFT, "4.4.7", "General"),
    case(R(552, "5.2.2", "Mailbox full"), "mailbox-full", FULL, "5.2.2", "MailboxFull"),
    case(R(452, None, "4.2.2 The account is over quota"), "mailbox-full", RETRY_FULL, "4.2.2", "MailboxFull"),
    case(R(552, None, "5.3.4 Message size exceeds fixed limit"), "too-large", TOO_LARGE, "5.3.4", "General"),
    case(R(552, None, "5.2.3 Message length exceeds limit"), "too-large", TOO_LARGE, "5.2.3", "General"),
    case(R(550, None, "5.7.26 Unauthenticated email (DMARC)"), "sender-rejected", SOFT, "5.7.26", "General"),
    case(R(553, None, "5.1.8 Sender domain does not exist"), "sender-rejected", SOFT, "5.1.8", "General"),
    case(R(550, None, "5.1.1 user unknown"), "bad-recipient", HARD, "5.1.1", RSE),
    case(R(550, None, "5.2.1 Mailbox disabled"), "bad-recipient", HARD, "5.2.1", RSE),
    case(R(554, None, "5.7.1 Attachment not allowed"), "attachment-text", ATTACHMENT, "5.7.1", "General"),
    case(R(552, None, "Exceeded storage allocation"), "mailbox-full-text", FULL, "5.0.0", "MailboxFull"),
    case(R(452, None, "Mailbox is full"), "mailbox-full-text", RETRY_FULL, "4.0.0", "MailboxFull"),
    case(R(552, None, "Message size exceeds maximum"), "too-large-text", TOO_LARGE, "5.0.0", "General"),
    case(R(550, None, "user unknown"), "unknown-user-text", HARD, "5.0.0", RSE),
    case(R(550, None, "5.7.1 No such user here"), "unknown-user-text", HARD, "5.7.1", RSE),
    case(R(554, None, "5.7.1 Message rejected as spam"), "content-text", CONTENT, "5.7.1", "SpamDetected"),
    case(R(421, None, UNSOLICITED), "content-text", "retry/ContentRejected", "4.7.28", "SpamDetected"),
    case(R(554, None, SPAMHAUS), "ip-block-text", SOFT, "5.7.1", "IPFailure"),
    case(R(421, None, YAHOO), "ip-block-text", RETRY, "4.7.0", "IPFailure"),
    case(R(554, None, "5.6.1 Media not supported"), "media", CONTENT, "5.6.1", "General"),
    case(R(554, None, "5.4.4 Unable to route"), "network", HARD, "5.4.4", TCF),
    case(R(421, None, "4.4.2 Connection dropped"), "network", RETRY, "4.4.2", TCF),
    case(R(421, None, CLOSING), "service-closing", RETRY, "4.0.0", TCF),
    case(R(554, None, "Transaction failed"), "permanent", HARD, "5.0.0", RSE),
    case(R(550, None, "5.7.1 Delivery not authorized"), "permanent", HARD, "5.7.1", RSE),
    case(R(451, None, "4.3.0 Temporary local problem"), "transient", RETRY, "4.3.0", RSE),
    case(R(450, None, "Greylisted, try again later"), "transient", RETRY, "4.0.0", RSE),
    case(
        R(354, None, "Start mail input"), "undetermined", "Undetermined/Undetermined", "5.0.0", "Undetermined"
    ),
]


@pytest.mark.parametrize("reply, row, outcome, status, delay", ROW_CASES)
def test_table_rows(reply, row, outcome, status, delay):
    assert bounce._rule_for(reply).name == row
    v = classify_reply(reply)
    temporary = outcome.startswith("retry/")
    assert v.temporary is temporary
    assert f"{v.bounce_type or 'retry'}/{v.bounce_subtype}" == outcome
    assert v.status == status
    assert v.action == ("delayed" if temporary else "failed")
    assert v.diagnostic_code.startswith(f"smtp; {reply.code} ")
    assert delay_type(reply) == delay


def test_every_row_has_a_case():
    assert {r.name for r in RULES} == {c.values[1] for c in ROW_CASES}
    assert len({r.name for r in RULES}) == len(RULES)
    assert RULES[-1].name == "undetermined"  # the catch-all is last, so every reply finds a row
    for rule in RULES:
        assert rule.delay in DELAY_TYPES
        assert rule.bounce_type in ("Permanent", "Transient", "Undetermined")
        assert rule.source


def test_the_documented_example():
    # The guide's Bounce example and the simulator's bounce@: exactly these fields.
    v = classify_reply(SmtpReply(550, "5.1.1", "user unknown"))
    assert v == Verdict(False, "Permanent", "General", "failed", "5.1.1", "smtp; 550 5.1.1 user unknown")


def test_reply_parses_and_normalizes_the_enhanced_code():
    assert SmtpReply(550, None, "5.1.1 <a@example.com>: Recipient address rejected").enhanced == "5.1.1"
    assert SmtpReply(550, None, "  5.7.1; blocked").enhanced == "5.7.1"
    assert SmtpReply(550, None, "user unknown").enhanced is None
    assert SmtpReply(550, None, "5.1.10 null MX").subject_detail == "1.10"
    assert SmtpReply(550, "5.01.001", "x").enhanced == "5.1.1"
    with pytest.raises(ValueError):
        SmtpReply(550, "5.1", "x")


def test_reply_diagnostic():
    multiline = SmtpReply(
        550, None, "5.1.1 The email account that you tried to reach does not exist.\n5.1.1 Try again"
    )
    assert multiline.diagnostic() == (
        "smtp; 550 5.1.1 The email account that you tried to reach does not exist. 5.1.1 Try again"
    )
    assert SmtpReply(550, "5.1.1", "user unknown").diagnostic() == "smtp; 550 5.1.1 user unknown"
    assert SmtpReply(550, "5.1.1", "5.1.1 user unknown").diagnostic() == "smtp; 550 5.1.1 user unknown"


def test_a_success_reply_is_not_a_failure():
    with pytest.raises(ValueError):
        classify_reply(SmtpReply(250, "2.0.0", "OK"))


def test_reply_code_decides_over_the_enhanced_class():
    # A 4xx with a 5.x.x code is still retried (RFC 5321 acts on the reply code).
    v = classify_reply(SmtpReply(450, "5.1.1", "user unknown"))
    assert v.temporary and v.bounce_type is None and v.status == "5.1.1"


# -- DSN path ----------------------------------------------------------------------------------------


def test_dsn_to_reply():
    r = dsn_to_reply("5.1.1", "smtp; 550-5.1.1 The email account that you tried to reach does not exist.")
    assert (r.code, r.enhanced, r.text) == (
        550,
        "5.1.1",
        "5.1.1 The email account that you tried to reach does not exist.",
    )
    r = dsn_to_reply("5.0.0 (permanent failure)", "X-Postfix; unknown user")
    assert (r.code, r.enhanced, r.text) == (550, "5.0.0", "unknown user")
    r = dsn_to_reply("4.4.1", None)
    assert (r.code, r.enhanced, r.text) == (450, "4.4.1", "")
    r = dsn_to_reply("", "smtp; 5.1.1 user unknown")
    assert (r.code, r.enhanced) == (550, "5.1.1")
    assert dsn_to_reply("", "X-Unknown; something odd").code == 0
    # The Status field is authoritative over a code in the diagnostic text.
    assert dsn_to_reply("5.2.2", "smtp; 550 5.1.1 over quota").enhanced == "5.2.2"


EXPIRED = "smtp; 554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.0 Unable to lookup DNS>"


@pytest.mark.parametrize(
    "action, status, diagnostic, expected",
    [
        (
            "failed",
            "5.1.1",
            "smtp; 550 5.1.1 user unknown",
            Verdict(False, "Permanent", "General", "failed", "5.1.1", "smtp; 550 5.1.1 user unknown"),
        ),
        (
            "Failed",
            "5.1.1 (bad destination mailbox address)",
            None,
            Verdict(False, "Permanent", "General", "failed", "5.1.1", ""),
        ),
        (
            "failed",
            "5.0.0",
            "X-Postfix; unknown user",
            Verdict(False, "Permanent", "General", "failed", "5.0.0", "X-Postfix; unknown user"),
        ),
        (  # a remote relay gave up: a soft bounce that stopped, so Transient
            "failed",
            "4.4.7",
            EXPIRED,
            Verdict(False, "Transient", "General", "failed", "4.4.7", EXPIRED),
        ),
        (
            "failed",
            "4.2.2",
            "smtp; 452 4.2.2 Mailbox full",
            Verdict(False, "Transient", "MailboxFull", "failed", "4.2.2", "smtp; 452 4.2.2 Mailbox full"),
        ),
        (  # a relay's failed 4.1.1 is a given-up soft failure: Transient/General
            "failed",
            "4.1.1",
            None,
            Verdict(False, "Transient", "General", "failed", "4.1.1", ""),
        ),
        (
            "delayed",
            "4.2.2",
            "smtp; 452 4.2.2 Mailbox full",
            Verdict(True, None, "MailboxFull", "delayed", "4.2.2", "smtp; 452 4.2.2 Mailbox full"),
        ),
        (
            "failed",
            "5.3.0",
            "smtp; 550 spam detected",
            Verdict(False, "Transient", "ContentRejected", "failed", "5.3.0", "smtp; 550 spam detected"),
        ),
        (
            "failed",
            "",
            None,
            Verdict(False, "Undetermined", "Undetermined", "failed", "5.0.0", ""),
        ),
        (
            "failed",
            "garbage",
            "smtp; 550 user unknown",
            Verdict(False, "Permanent", "General", "failed", "5.0.0", "smtp; 550 user unknown"),
        ),
    ],
)
def test_classify_dsn(action, status, diagnostic, expected):
    assert classify_dsn(action, status, diagnostic) == expected


@pytest.mark.parametrize("action", ["delivered", "relayed", "expanded", ""])
def test_dsn_actions_that_are_not_failures(action):
    with pytest.raises(ValueError):
        classify_dsn(action, "2.0.0", None)


@pytest.mark.parametrize(
    "reply",
    [
        SmtpReply(550, "5.1.1", "user unknown"),
        SmtpReply(552, "5.2.2", "mailbox full"),
        SmtpReply(554, "5.7.1", "rejected as spam"),
        SmtpReply(554, "5.7.1", "blocked using zen.spamhaus.org"),
        SmtpReply(552, "5.3.4", "message too big"),
    ],
)
def test_reply_and_dsn_share_the_table(reply):
    now = classify_reply(reply)
    later = classify_dsn("failed", reply.enhanced or "", reply.diagnostic())
    assert (later.bounce_type, later.bounce_subtype, later.status) == (
        now.bounce_type,
        now.bounce_subtype,
        now.status,
    )
    assert later.diagnostic_code == now.diagnostic_code


# -- give up -----------------------------------------------------------------------------------------


def test_give_up_without_a_last_failure():
    assert give_up(None) == Verdict(
        False,
        "Transient",
        "General",
        "failed",
        "4.4.7",
        "smtp; 550 4.4.7 Message expired: unable to deliver.",
    )


def test_give_up_names_the_last_failure():
    v = give_up(local("connection-failed"), minutes=840)
    assert (v.temporary, v.bounce_type, v.bounce_subtype, v.action, v.status) == (
        False,
        "Transient",
        "General",
        "failed",
        "4.4.7",
    )
    assert v.diagnostic_code == (
        "smtp; 550 4.4.7 Message expired: unable to deliver in 840 minutes."
        "<421 4.4.1 Unable to connect to remote host>"
    )


def test_give_up_keeps_a_specific_transient_subtype():
    assert give_up(classify_reply(SmtpReply(452, "4.2.2", "Mailbox full"))).bounce_subtype == "MailboxFull"
    assert (
        give_up(classify_reply(SmtpReply(452, None, "4.3.4 Message too big"))).bounce_subtype
        == "MessageTooLarge"
    )
    assert give_up(classify_reply(SmtpReply(451, "4.3.0", "try later"))).bounce_subtype == "General"
    # A soft failure of a Permanent row (4.1.1) gives up as General.
    assert give_up(classify_reply(SmtpReply(450, "4.1.1", "user unknown"))).bounce_subtype == "General"


def test_a_domain_that_does_not_exist_ends_transient():
    v = give_up(local("no-route", "Unable to lookup DNS for example.invalid"))
    assert (v.bounce_type, v.bounce_subtype) == ("Transient", "General")
    assert v.diagnostic_code.endswith("<421 4.4.0 Unable to lookup DNS for example.invalid>")


def test_give_up_on_the_senders_max_delivery_time():
    v = give_up(classify_reply(SmtpReply(452, "4.2.2", "Mailbox full")), custom_timeout=True)
    assert (v.bounce_type, v.bounce_subtype) == ("Transient", "CustomTimeoutExceeded")
    assert "452 4.2.2 Mailbox full" in v.diagnostic_code


def test_give_up_refuses_a_final_verdict():
    with pytest.raises(ValueError):
        give_up(classify_reply(SmtpReply(550, "5.1.1", "user unknown")))


# -- local outcomes ----------------------------------------------------------------------------------

# kind, temporary, bounce type, subtype, status, diagnostic
LOCAL_CASES = [
    ("null-mx", False, "Permanent", "General", "5.1.10", "smtp; 556 5.1.10 Recipient address has null MX"),
    ("no-route", True, None, "General", "4.4.0", "smtp; 421 4.4.0 Unable to lookup DNS"),
    ("dns-failure", True, None, "General", "4.4.3", "smtp; 451 4.4.3 DNS lookup failed"),
    ("connection-failed", True, None, "General", "4.4.1", "smtp; 421 4.4.1 Unable to connect to remote host"),
    ("tls-required", True, None, "General", "4.7.10", "smtp; 421 4.7.10 TLS required but not available"),
    (
        "message-too-large",
        False,
        "Transient",
        "MessageTooLarge",
        "5.3.4",
        "smtp; 552 5.3.4 Message too big for system",
    ),
    (
        "account-suppressed",
        False,
        "Permanent",
        "OnAccountSuppressionList",
        "5.1.1",
        "The message was not sent",
    ),
    (
        "tenant-suppressed",
        False,
        "Permanent",
        "OnTenantSuppressionList",
        "5.1.1",
        "The message was not sent",
    ),
    ("global-suppressed", False, "Permanent", "Suppressed", "5.1.1", "The message was not sent"),
    ("unsubscribed", False, "Permanent", "UnsubscribedRecipient", "5.1.1", "The message was not sent"),
    ("internal-failure", True, None, "General", "4.3.0", "smtp; 451 4.3.0 Internal error, will retry"),
    ("internal-failure-final", False, "Transient", "General", "5.3.0", "smtp; 554 5.3.0 Internal error"),
    ("invalid-domain", False, "Permanent", "General", "5.1.2", "smtp; 553 5.1.2 Recipient domain is not"),
    ("sending-deferral", True, None, "General", "4.0.0", "smtp; 451 4.0.0 Deferred by the sending system"),
    ("operator", False, "Permanent", "General", "5.0.0", "smtp; 550 5.0.0 Bounced by the operator"),
]


@pytest.mark.parametrize("kind, temporary, bounce_type, subtype, status, diagnostic", LOCAL_CASES)
def test_local(kind, temporary, bounce_type, subtype, status, diagnostic):
    v = local(kind)
    assert (v.temporary, v.bounce_type, v.bounce_subtype, v.status) == (
        temporary,
        bounce_type,
        subtype,
        status,
    )
    assert v.action == ("delayed" if temporary else "failed")
    assert v.diagnostic_code.startswith(diagnostic)
    assert LOCAL_KINDS[kind].delay in DELAY_TYPES


def test_every_local_kind_has_a_case():
    assert set(LOCAL_KINDS) == {c[0] for c in LOCAL_CASES}


def test_local_detail_replaces_the_text():
    v = local("no-route", "example.invalid has no MX and no address record")
    assert v.diagnostic_code == "smtp; 421 4.4.0 example.invalid has no MX and no address record"
    assert local("tls-required", "mx.example.com does not\noffer STARTTLS").diagnostic_code == (
        "smtp; 421 4.7.10 mx.example.com does not offer STARTTLS"
    )


def test_unknown_local_kind():
    with pytest.raises(ValueError):
        local("nope")


# -- delay types -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, kind, expected",
    [
        (None, "connection-failed", "TransientCommunicationFailure"),
        (None, "tls-required", "General"),
        (None, "no-route", "RecipientServerError"),
        (None, "dns-failure", "RecipientServerError"),
        (None, "internal-failure", "InternalFailure"),
        (None, "sending-deferral", "SendingDeferral"),
        (None, "null-mx", "Undetermined"),  # never retried
        (SmtpReply(452, "4.2.2", "Mailbox full"), None, "MailboxFull"),
        (SmtpReply(421, "4.7.28", "unusual rate of unsolicited mail"), None, "SpamDetected"),
        (SmtpReply(421, "4.7.0", "Your IP 192.0.2.1 is on a blocklist"), None, "IPFailure"),
        (SmtpReply(421, "4.4.2", "Connection timed out"), None, "TransientCommunicationFailure"),
        (SmtpReply(451, "4.3.0", "Temporary local problem"), None, "RecipientServerError"),
        (
            SmtpReply(451, "4.3.0", "Temporary local problem"),
            "internal-failure",
            "InternalFailure",
        ),  # kind wins
        (None, None, "Undetermined"),
    ],
)
def test_delay_type(reply, kind, expected):
    assert delay_type(reply, kind) == expected
    assert expected in DELAY_TYPES


def test_delay_type_unknown_kind():
    with pytest.raises(ValueError):
        delay_type(None, "nope")
