"""What a delivery failure means in SES's terms: retry or bounce, the bounce type and subtype, and the
``bouncedRecipients`` fields (``action``, ``status``, ``diagnosticCode``) of the Bounce event.

One table (``RULES``) serves every input. A reply the remote server gave during our own SMTP transaction
(``classify_reply``) and a per-recipient part of an RFC 3464 DSN that arrives later (``classify_dsn``,
through ``dsn_to_reply``) are both an ``SmtpReply``; the first row that matches it decides. Outcomes that
never reach a server (null MX, suppression lists, refused connections, …) are ``local`` kinds, and the
end of the retry window is ``give_up``. ``delay_type`` names the DeliveryDelay ``delayType`` for a retry.

Who decides what:

* Retry or not. For our own transaction the reply code does (RFC 5321 §4.2.1: 4yz transient, 5yz
  permanent); for a DSN the ``Action`` field does (``delayed`` still retrying, ``failed`` given up).
* The bounce type and subtype: the matched row, for a permanent (5.x.x) failure. A failure that ends
  with a transient (4.x.x) status is a soft bounce SES stopped retrying, so it is always ``Transient``:
  it keeps a row's Transient subtype (MailboxFull, …) and is ``General`` otherwise.
* While a message is retried ``bounce_type`` is None and ``bounce_subtype`` is what the bounce would be
  if the retries ran out now, which is what ``give_up`` reports.

Sources are tagged as in the project's SES reference: [DG] the SES Developer Guide (bounce types
table of the event-publishing and notification-contents pages, their examples, and the DeliveryDelay
object), [RFC n] the RFCs and the IANA enhanced status code registry, [OBSERVED] real SES bounce and
delay records found in public code and tests (compatibility only, not a documented contract), and
[DECISION] a choice made here where neither says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sesame.events.details import BouncedRecipient
from sesame.mta.reply import SmtpReply, enhanced_code

# Bounce types and subtypes [DG]. SES also documents others this server does not produce yet.
PERMANENT, TRANSIENT, UNDETERMINED = "Permanent", "Transient", "Undetermined"
#: Subtypes of Transient bounces that survive the end of retries (otherwise it is General).
TRANSIENT_SUBTYPES = frozenset({"MailboxFull", "MessageTooLarge", "ContentRejected", "AttachmentRejected"})

#: DeliveryDelay ``delayType`` values [DG event-publishing contents, DeliveryDelay object].
DELAY_TYPES = (
    "InternalFailure",
    "General",
    "MailboxFull",
    "SpamDetected",
    "RecipientServerError",
    "IPFailure",
    "TransientCommunicationFailure",
    "BYOIPHostNameLookupUnavailable",
    "Undetermined",
    "SendingDeferral",
)


@dataclass(frozen=True)
class Verdict:
    temporary: bool  # retry later (4xx, DSN "delayed", local temporary conditions)
    # "Permanent" | "Transient" | "Undetermined" when it bounces now; None while retrying
    bounce_type: str | None
    bounce_subtype: str  # SES's subtype (while retrying: the one a bounce would have now)
    action: str  # DSN action for bouncedRecipients: "failed" | "delayed"
    status: str  # enhanced status code, "5.1.1"
    diagnostic_code: str  # "smtp; 550 5.1.1 user unknown"; empty when a DSN gave none


@dataclass(frozen=True)
class Rule:
    """One row: when everything given matches, a permanent (5.x.x) failure is ``bounce_type`` /
    ``subtype`` and a retry is reported with ``delay``."""

    name: str
    bounce_type: str
    subtype: str
    delay: str
    source: str
    #: Subject.detail of the enhanced code: "1.1" exactly, or "7.*" for a whole subject.
    status: tuple[str, ...] = ()
    text: re.Pattern[str] | None = None
    codes: frozenset[int] = frozenset()  # reply codes
    classes: frozenset[int] = frozenset()  # reply code classes (4, 5)

    def matches(self, reply: SmtpReply) -> bool:
        if self.codes and reply.code not in self.codes:
            return False
        if self.classes and reply.code // 100 not in self.classes:
            return False
        if self.status:
            sd = reply.subject_detail
            if sd is None:
                return False
            subject = sd.split(".", 1)[0]
            if not any(s == sd or s == f"{subject}.*" for s in self.status):
                return False
        return self.text is None or self.text.search(reply.text) is not None


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# Texts that say what a vague code (X.0.0, X.7.x, X.3.x or none at all) means. [DECISION] wording is
# free-form; these are the phrases common MTAs and mailbox providers use.
_MAILBOX_FULL = _re(
    r"mailbox (is |was )?full|inbox (is )?full|over ?quota|quota (exceeded|full)"
    r"|exceeded (its |the |their )?(storage|quota)|insufficient (storage|disk space)|mailbox size limit"
)
_TOO_LARGE = _re(
    r"too (large|big)|(message|mail) size|size (limit|exceeded|exceeds)"
    r"|exceeds? (the )?(maximum|max|fixed) (message )?size|message length exceeds"
)
_ATTACHMENT = _re(
    r"attachment|(banned|blocked|prohibited|forbidden|unsafe|dangerous) (file|extension)"
    r"|(file|extension) (type )?(is )?(not allowed|blocked|prohibited|forbidden)"
)
_UNKNOWN_USER = _re(
    r"user unknown|unknown (user|recipient|mailbox|address)|no such (user|mailbox|recipient|address|account)"
    r"|(user|mailbox|recipient|address|account) (does not|doesn'?t) exist"
    r"|(user|mailbox|recipient|account) not found|invalid (recipient|mailbox|address|user)"
    r"|not a valid (recipient|mailbox|user)|account (has been |is )?(disabled|deactivated|closed)"
)
# "\bspam\b" leaves blocklists named spamhaus/spamcop to the next pattern.
_CONTENT = _re(
    r"\bspam\b|spammy|unsolicited|\bjunk\b|virus|malware|infected|phish"
    r"|content (was |is )?(rejected|refused|blocked|not (allowed|accepted))|content (filter|polic)"
    r"|rejected .{0,30}\bcontent\b|\bbulk (e-?)?mail"
)
_IP_BLOCK = _re(
    r"block ?list|black ?list|deny ?list|\b(rbl|dnsbl)\b|spamhaus|spamcop|barracuda|sorbs|reputation"
    r"|\bblocked\b|\bbanned\b|throttl|rate[- ]?limit|too many (connections|messages|concurrent)"
    r"|temporarily deferred"
)

# First match wins. Rows with exact enhanced codes come first (the code is the most precise thing a
# server says), then the text of replies whose code is vague, then code classes.
#
# Why 5.1.1 is Permanent/General and not Permanent/NoEmail: the guide defines NoEmail as a bounce
# saying the address does not exist, which 5.1.1 is, but every example it gives, and the mailbox
# simulator's bounce@ address, report "550 5.1.1 user unknown" as Permanent/General, and so does
# captured real traffic. Clients are tested against those, so the table follows them and produces
# no NoEmail. Both are hard bounces with the same effect (the address joins the suppression list).
RULES: tuple[Rule, ...] = (
    Rule(
        "null-mx",
        PERMANENT,
        "General",
        "RecipientServerError",
        "RFC 7505 §4.3, IANA X.1.10: the domain publishes that it accepts no mail",
        status=("1.10",),
    ),
    Rule(
        "expired",
        TRANSIENT,
        "General",
        "General",
        "RFC 3463 X.4.7 (delivery time expired); [OBSERVED] SES's own expiry bounces are Transient/General",
        status=("4.7",),
    ),
    Rule(
        "mailbox-full",
        TRANSIENT,
        "MailboxFull",
        "MailboxFull",
        "RFC 3463 X.2.2 (mailbox full); [DG] Transient/MailboxFull and delayType MailboxFull",
        status=("2.2",),
    ),
    Rule(
        "too-large",
        TRANSIENT,
        "MessageTooLarge",
        "General",
        "RFC 3463 X.3.4 (message too big for system), X.2.3 (length exceeds administrative limit); "
        "[DG] Transient/MessageTooLarge",
        status=("3.4", "2.3"),
    ),
    Rule(
        "sender-rejected",
        TRANSIENT,
        "General",
        "General",
        "RFC 3463 X.1.7/X.1.8 (bad sender address), RFC 7372 X.7.20-X.7.26 (DKIM/SPF/DMARC/reverse DNS), "
        "RFC 7505 X.7.27 (sender null MX). [DECISION] the fault is the sender's setup, not the "
        "recipient's address, so it is soft and does not suppress the recipient (SES: UNCONFIRMED)",
        status=("1.7", "1.8", "7.20", "7.21", "7.22", "7.23", "7.24", "7.25", "7.26", "7.27"),
    ),
    Rule(
        "bad-recipient",
        PERMANENT,
        "General",
        "RecipientServerError",
        "RFC 3463 X.1.0-X.1.4, X.1.6 (address status), X.2.1 (mailbox disabled); "
        "[DG] examples and the mailbox simulator: 550 5.1.1 is Permanent/General",
        status=("1.0", "1.1", "1.2", "1.3", "1.4", "1.6", "2.1"),
    ),
    Rule(
        "attachment-text",
        TRANSIENT,
        "AttachmentRejected",
        "General",
        "[DG] Transient/AttachmentRejected: an unacceptable attachment (type or size)",
        text=_ATTACHMENT,
    ),
    Rule(
        "mailbox-full-text",
        TRANSIENT,
        "MailboxFull",
        "MailboxFull",
        "[DG] Transient/MailboxFull; RFC 5321 §4.2.2: 552 exceeded storage allocation",
        text=_MAILBOX_FULL,
    ),
    Rule(
        "too-large-text",
        TRANSIENT,
        "MessageTooLarge",
        "General",
        "[DG] Transient/MessageTooLarge",
        text=_TOO_LARGE,
    ),
    Rule(
        "unknown-user-text",
        PERMANENT,
        "General",
        "RecipientServerError",
        "[DG] notification example: 'smtp; 550 user unknown' is Permanent/General with status 5.0.0",
        text=_UNKNOWN_USER,
    ),
    Rule(
        "content-text",
        TRANSIENT,
        "ContentRejected",
        "SpamDetected",
        "[DG] Transient/ContentRejected (content the provider does not allow) and delayType SpamDetected "
        "(unsolicited mail detected); [OBSERVED] 'smtp; 550 spam detected' was Transient/ContentRejected",
        text=_CONTENT,
    ),
    Rule(
        "ip-block-text",
        TRANSIENT,
        "General",
        "IPFailure",
        "[DG] delayType IPFailure (sending IP blocked or throttled). [DECISION] a blocked IP is not the "
        "recipient's fault: soft, so the address is not suppressed (SES: UNCONFIRMED)",
        text=_IP_BLOCK,
    ),
    Rule(
        "media",
        TRANSIENT,
        "ContentRejected",
        "General",
        "RFC 3463 X.6.x (message content or media status); [DG] Transient/ContentRejected",
        status=("6.*",),
    ),
    Rule(
        "network",
        PERMANENT,
        "General",
        "TransientCommunicationFailure",
        "RFC 3463 X.4.x (network and routing); [DG] delayType TransientCommunicationFailure",
        status=("4.*",),
    ),
    Rule(
        "service-closing",
        TRANSIENT,
        "General",
        "TransientCommunicationFailure",
        "RFC 5321 §4.2.3: 421 service not available, closing the channel",
        codes=frozenset({421}),
    ),
    Rule(
        "permanent",
        PERMANENT,
        "General",
        "RecipientServerError",
        "RFC 5321 §4.2.1 (5yz permanent); [DG] a hard bounce that does not say why is Permanent/General",
        classes=frozenset({5}),
    ),
    Rule(
        "transient",
        TRANSIENT,
        "General",
        "RecipientServerError",
        "RFC 5321 §4.2.1 (4yz transient); [DG] delayType RecipientServerError (temporary issue at the "
        "recipient's server); re:Post lists 421/450/451/452 as SES soft bounces",
        classes=frozenset({4}),
    ),
    Rule(
        "undetermined",
        UNDETERMINED,
        UNDETERMINED,
        "Undetermined",
        "[DG] Undetermined/Undetermined: not enough information to tell",
    ),
)


def _rule_for(reply: SmtpReply) -> Rule:
    return next(rule for rule in RULES if rule.matches(reply))


def _outcome(rule: Rule, status_class: int) -> tuple[str, str]:
    """Bounce type and subtype of a failure that ends now with a status of this class."""
    if rule.bounce_type == UNDETERMINED or status_class not in (4, 5):
        return UNDETERMINED, UNDETERMINED
    if status_class == 5:
        return rule.bounce_type, rule.subtype
    return TRANSIENT, rule.subtype if rule.bounce_type == TRANSIENT else "General"


def classify_reply(reply: SmtpReply) -> Verdict:
    """A failure reply from our own SMTP transaction. A 2yz reply is not a failure (ValueError)."""
    if 200 <= reply.code < 300:
        raise ValueError(f"{reply.code} is a success reply")
    temporary = 400 <= reply.code < 500
    # The reply code, not the enhanced code's class, says whether to retry: "550 4.4.7 Message expired"
    # [OBSERVED] is final. Any other class (1yz, 3yz, not a code) leaves nothing to go on: Undetermined.
    bounce_type, subtype = _outcome(_rule_for(reply), 4 if temporary else reply.code // 100)
    return Verdict(
        temporary,
        None if temporary else bounce_type,
        subtype,
        "delayed" if temporary else "failed",
        # Without an enhanced code the status is the reply's class: "smtp; 550 user unknown" is 5.0.0 [DG].
        reply.enhanced or ("4.0.0" if temporary else "5.0.0"),
        reply.diagnostic(),
    )


_DIAGNOSTIC_SMTP = re.compile(r"\s*smtp\s*;\s*(?:(\d{3})(?:[ -]|$))?\s*(.*)", re.IGNORECASE | re.DOTALL)


def dsn_to_reply(status: str, diagnostic_code: str | None) -> SmtpReply:
    """An RFC 3464 per-recipient ``Status`` and ``Diagnostic-Code`` as the reply the table reads.

    ``Status`` ("5.1.1", a trailing comment allowed) is the enhanced code (RFC 3464 §2.3.4 makes it the
    authoritative one). A diagnostic of type ``smtp`` gives the reply code and text ("smtp; 550 5.1.1
    user unknown"); other types ("X-Postfix; unknown user") give text, and the code then follows the
    status class (550 or 450). Without a usable status or code the reply code is 0: Undetermined.
    """
    enhanced = enhanced_code(status.split("(", 1)[0]) if status else None
    text = (diagnostic_code or "").strip()
    code = 0
    m = _DIAGNOSTIC_SMTP.fullmatch(text)
    if m:
        code = int(m[1]) if m[1] else 0
        text = m[2].strip()
    elif ";" in text:
        text = text.split(";", 1)[1].strip()  # "X-Postfix; unknown user": the type says nothing useful
    reply = SmtpReply(code, enhanced, text)  # without a Status, an enhanced code opening the text counts
    if not code and reply.enhanced:
        code = {"5": 550, "4": 450}.get(reply.enhanced[0], 0)
    return SmtpReply(code, reply.enhanced, text)


def classify_dsn(action: str, status: str, diagnostic_code: str | None) -> Verdict:
    """A DSN's per-recipient fields (RFC 3464 §2.3). Only ``failed`` and ``delayed`` are failures: other
    actions (delivered, relayed, expanded) raise ValueError. ``diagnostic_code`` is kept as the DSN gave it
    (empty when absent), as SES copies the DSN field [DG]."""
    action = action.strip().lower()
    if action not in ("failed", "delayed"):
        raise ValueError(f"DSN action {action!r} is not a failure")
    reply = dsn_to_reply(status, diagnostic_code)
    temporary = action == "delayed"
    status_class = int(reply.enhanced[0]) if reply.enhanced else reply.code // 100
    bounce_type, subtype = _outcome(_rule_for(reply), 4 if temporary else status_class)
    return Verdict(
        temporary,
        None if temporary else bounce_type,
        subtype,
        action,
        reply.enhanced or ("4.0.0" if temporary or status_class == 4 else "5.0.0"),
        (diagnostic_code or "").strip(),
    )


def give_up(last: Verdict | None, *, minutes: int | None = None, custom_timeout: bool = False) -> Verdict:
    """The bounce when retries end: always Transient [DG], with the last failure's subtype when it is a
    Transient one (MailboxFull, …) and General otherwise. ``custom_timeout``: the sender's
    ``MaxDeliverySeconds`` ran out rather than the server's retry window, which SES reports as
    Transient/CustomTimeoutExceeded [DG]. The status is 4.4.7 and the diagnostic names the last failure,
    "smtp; 550 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.1 …>" [OBSERVED];
    ``minutes`` is the window to name in it, if known.
    """
    if last is not None and not last.temporary:
        raise ValueError("give_up() takes the last temporary failure; this one already bounced")
    if custom_timeout:
        subtype = "CustomTimeoutExceeded"
    elif last is not None and last.bounce_subtype in TRANSIENT_SUBTYPES:
        subtype = last.bounce_subtype
    else:
        subtype = "General"
    window = f" in {minutes} minutes" if minutes is not None else ""
    inner = last.diagnostic_code.removeprefix("smtp;").strip() if last else ""
    diagnostic = f"smtp; 550 4.4.7 Message expired: unable to deliver{window}." + (
        f"<{inner}>" if inner else ""
    )
    return Verdict(False, TRANSIENT, subtype, "failed", "4.4.7", diagnostic)


@dataclass(frozen=True)
class LocalKind:
    """An outcome decided here, without a reply from the recipient's server."""

    temporary: bool
    bounce_type: str  # when not temporary
    subtype: str
    code: int  # the reply code of the synthesized diagnostic; 0: no "smtp;" diagnostic
    status: str
    text: str
    delay: str
    source: str


#: ``local()`` kinds. ``detail`` replaces the text of the diagnostic ("example.com has no MX …").
LOCAL_KINDS: dict[str, LocalKind] = {
    "null-mx": LocalKind(
        False,
        PERMANENT,
        "General",
        556,
        "5.1.10",
        "Recipient address has null MX",
        "Undetermined",
        "RFC 7505 §4.1/§4.3: no delivery is attempted; 556 and X.1.10. [DECISION] General, as for 5.1.1",
    ),
    "invalid-domain": LocalKind(
        False,
        PERMANENT,
        "General",
        553,
        "5.1.2",
        "Recipient domain is not a valid domain name",
        "Undetermined",
        "a name the DNS cannot hold (RFC 1035 §2.3.4: a label over 63 octets, a name over 255, an empty "
        "label): nothing to look up, ever; RFC 3463 X.1.2 bad destination system address. [DECISION] "
        "Permanent/General, as for 5.1.1",
    ),
    "no-route": LocalKind(
        True,
        TRANSIENT,
        "General",
        421,
        "4.4.0",
        "Unable to lookup DNS",
        "RecipientServerError",
        "NXDOMAIN, or no MX and no address record. [DG] SES retries a domain that does not exist; "
        "[OBSERVED] it ends as Transient/General after '421 4.4.0 Unable to lookup DNS for <domain>'. "
        "delayType: [DECISION], none of SES's fits DNS exactly",
    ),
    "dns-failure": LocalKind(
        True,
        TRANSIENT,
        "General",
        451,
        "4.4.3",
        "DNS lookup failed",
        "RecipientServerError",
        "SERVFAIL or timeout; RFC 3463 X.4.3 (directory/routing server failure)",
    ),
    "connection-failed": LocalKind(
        True,
        TRANSIENT,
        "General",
        421,
        "4.4.1",
        "Unable to connect to remote host",
        "TransientCommunicationFailure",
        "refused, timed out or dropped, on every MX host; [DG] the DeliveryDelay example is this: "
        "TransientCommunicationFailure, 4.4.1, 'smtp; 421 4.4.1 Unable to connect to remote host'",
    ),
    "tls-required": LocalKind(
        True,
        TRANSIENT,
        "General",
        421,
        "4.7.10",
        "TLS required but not available",
        "General",
        "TlsPolicy REQUIRE and no STARTTLS (or it failed): [DG] delivered only over TLS, so not sent now. "
        "RFC 8689 uses X.7.10 for required TLS. [DECISION] retried, then Transient/General as for any "
        "temporary failure (what SES reports is UNCONFIRMED)",
    ),
    "message-too-large": LocalKind(
        False,
        TRANSIENT,
        "MessageTooLarge",
        552,
        "5.3.4",
        "Message too big for system",
        "General",
        "over the SIZE the server announced (RFC 1870), RFC 3463 X.3.4; [DG] Transient/MessageTooLarge",
    ),
    "account-suppressed": LocalKind(
        False,
        PERMANENT,
        "OnAccountSuppressionList",
        0,
        "5.1.1",
        "The message was not sent to this address because it is on the account-level suppression list.",
        "Undetermined",
        "[DG] Permanent/OnAccountSuppressionList; [OBSERVED] action failed, status 5.1.1, and a plain-text "
        "diagnostic without 'smtp;'",
    ),
    "unsubscribed": LocalKind(
        False,
        PERMANENT,
        "UnsubscribedRecipient",
        0,
        "5.1.1",
        "The message was not sent to this address because it unsubscribed from the contact list.",
        "Undetermined",
        "[DG] SES bounces mail to an unsubscribed contact; Permanent/UnsubscribedRecipient [OBSERVED]",
    ),
    "tenant-suppressed": LocalKind(
        False,
        PERMANENT,
        "OnTenantSuppressionList",
        0,
        "5.1.1",
        "The message was not sent to this address because it is on the tenant-level suppression list.",
        "Undetermined",
        "[OBSERVED] Permanent/OnTenantSuppressionList (reference §7.1); worded as the account-level one",
    ),
    "global-suppressed": LocalKind(
        False,
        PERMANENT,
        "Suppressed",
        0,
        "5.1.1",
        "The message was not sent to this address because it recently bounced as an invalid address.",
        "Undetermined",
        "[DG] Permanent/Suppressed (also the simulator's suppressionlist@); [OBSERVED] as above",
    ),
    "internal-failure": LocalKind(
        True,
        TRANSIENT,
        "General",
        451,
        "4.3.0",
        "Internal error, will retry",
        "InternalFailure",
        "a fault of this server; [DG] delayType InternalFailure",
    ),
    "internal-failure-final": LocalKind(
        False,
        TRANSIENT,
        "General",
        554,
        "5.3.0",
        "Internal error on every attempt, not retried",
        "Undetermined",
        "[DECISION] a fault of this server on the engine's last try for it (INTERNAL_FAILURE_ATTEMPTS): "
        "such errors rarely go away by themselves. Transient, as the recipient is not at fault (not "
        "suppressed); RFC 3463 X.3.0 other or undefined mail system status",
    ),
    "sending-deferral": LocalKind(
        True,
        TRANSIENT,
        "General",
        451,
        "4.0.0",
        "Deferred by the sending system",
        "SendingDeferral",
        "held back here (rate limits, paused sending); [DG] delayType SendingDeferral",
    ),
    "operator": LocalKind(
        False,
        PERMANENT,
        "General",
        550,
        "5.0.0",
        "Bounced by the operator",
        "Undetermined",
        "sesame queue bounce: an operator gave up on the message",
    ),
}


def local(kind: str, detail: str = "") -> Verdict:
    """An outcome without a server's reply; ``kind`` is a key of ``LOCAL_KINDS`` (see there)."""
    try:
        k = LOCAL_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown local outcome {kind!r}") from None
    text = " ".join(detail.split()) or k.text
    diagnostic = f"smtp; {k.code} {k.status} {text}" if k.code else text
    return Verdict(
        k.temporary,
        None if k.temporary else k.bounce_type,
        k.subtype,
        "delayed" if k.temporary else "failed",
        k.status,
        diagnostic,
    )


def bounced_recipient(verdict: Verdict, address: str) -> BouncedRecipient:
    """The ``bouncedRecipients`` entry of ``address`` for this verdict."""
    return BouncedRecipient(address, verdict.action, verdict.status, verdict.diagnostic_code)


def delay_type(reply: SmtpReply | None, kind: str | None = None) -> str:
    """The DeliveryDelay ``delayType`` of a retry: from the local ``kind`` when given, else from the
    table row the reply matches; "Undetermined" with neither. Kinds that never retry give "Undetermined"."""
    if kind is not None:
        if kind not in LOCAL_KINDS:
            raise ValueError(f"unknown local outcome {kind!r}")
        return LOCAL_KINDS[kind].delay
    if reply is None:
        return "Undetermined"
    return _rule_for(reply).delay
