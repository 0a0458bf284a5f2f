"""Building delivery status notifications (RFC 3464): the receipt rule Bounce action and SendBounce.

``build_dsn`` writes a ``multipart/report; report-type=delivery-status`` (RFC 6522) of three parts: the
explanation for people (text/plain), the machine-readable ``message/delivery-status`` (one per-message
block, then one block per recipient, RFC 3464 §2.1), and the original's header section
(``text/rfc822-headers``; ``message/global-headers`` when it holds 8-bit text, RFC 6533 §6.4).
mail/feedback.py reads it back.

``BOUNCE_TYPES`` gives SendBounce's ``BounceType`` values their reply code, status and text. AWS
documents the enum, not its codes; these are the ones the SES console's Bounce action templates use
(reference §10.3: Mailbox Does Not Exist 550 5.1.1, Message Too Large 552 5.3.4, Mailbox Full 552 5.2.2,
Message Content Rejected 500 5.6.1, Unknown Failure 554 5.0.0, Temporary Failure 450 4.0.0), with
ExceededQuota as Mailbox Full and Undefined as Unknown Failure [DECISION].
"""

from __future__ import annotations

import datetime as dt
import quopri
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime

CRLF = "\r\n"


@dataclass(frozen=True)
class BounceTemplate:
    smtp_reply_code: int
    status: str
    text: str


#: SendBounce ``BounceType`` → reply code, enhanced status (RFC 3463) and text (see the module docstring).
BOUNCE_TYPES: dict[str, BounceTemplate] = {
    "DoesNotExist": BounceTemplate(550, "5.1.1", "Mailbox does not exist"),
    "MessageTooLarge": BounceTemplate(552, "5.3.4", "Message too large"),
    "ExceededQuota": BounceTemplate(552, "5.2.2", "Mailbox full"),
    "ContentRejected": BounceTemplate(500, "5.6.1", "Message content rejected"),
    "Undefined": BounceTemplate(554, "5.0.0", "Unknown failure"),
    "TemporaryFailure": BounceTemplate(450, "4.0.0", "Temporary failure"),
}


@dataclass(frozen=True)
class RecipientDsn:
    """One recipient's block (RFC 3464 §2.3); SendBounce's ``RecipientDsnFields``. Addresses are given
    bare ("user@example.com") and written with their type ("rfc822; user@example.com"); ``remote_mta``
    likewise gets "dns; " unless it has a type."""

    final_recipient: str
    action: str = "failed"  # failed | delayed | delivered | relayed | expanded
    status: str = "5.0.0"
    diagnostic_code: str | None = None  # "smtp; 550 5.1.1 Mailbox does not exist"
    remote_mta: str | None = None
    last_attempt_date: dt.datetime | None = None
    original_recipient: str | None = None
    extension_fields: Sequence[tuple[str, str]] = ()


def recipient_for(
    recipient: str, bounce_type: str, *, remote_mta: str | None = None, message: str | None = None
) -> RecipientDsn:
    """The block of a SendBounce ``BounceType`` (or a Bounce action's reply, through ``message``).
    A temporary failure is still ``failed``: the message is returned, not retried (RFC 3463 §3.1,
    persistent transient failure)."""
    t = BOUNCE_TYPES[bounce_type]
    return RecipientDsn(
        final_recipient=recipient,
        action="failed",
        status=t.status,
        diagnostic_code=f"smtp; {t.smtp_reply_code} {t.status} {message or t.text}",
        remote_mta=remote_mta,
    )


def build_dsn(
    *,
    reporting_mta: str,
    sender: str,
    to: str,
    original: bytes,
    recipients: Sequence[RecipientDsn],
    explanation: str = "",
    arrival_date: dt.datetime | None = None,
    extension_fields: Sequence[tuple[str, str]] = (),
    subject: str | None = None,
    date: dt.datetime | None = None,
    message_id: str | None = None,
    original_envelope_id: str | None = None,
) -> bytes:
    """A DSN from ``sender`` (its From, "MAILER-DAEMON@…" or SES's BounceSender) to ``to`` (the original's
    return path) about ``original`` (the whole message or its header section: only the header section is
    returned). ``reporting_mta`` is "dns; host" (a bare host name gets "dns; "). ``extension_fields`` are
    per-message fields after the standard ones (SendBounce ``MessageDsn.ExtensionFields``, X- names)."""
    if not recipients:
        raise ValueError("a DSN reports on at least one recipient (RFC 3464 §2.1)")
    now = date or dt.datetime.now(dt.UTC)
    host = _typed(reporting_mta, "dns").partition(";")[2].strip() or "localhost"
    boundary = f"=_dsn_{uuid.uuid4().hex}"
    if subject is None:
        delayed = all(r.action.lower() == "delayed" for r in recipients)
        subject = "Delivery Status Notification (" + ("Delay)" if delayed else "Failure)")
    if not explanation:
        explanation = _explanation(recipients)

    headers = [
        ("From", sender),
        ("To", to),
        ("Subject", subject),
        ("Date", format_datetime(_utc(now))),
        ("Message-ID", f"<{message_id or uuid.uuid4()}@{host}>"),
        ("MIME-Version", "1.0"),
        # RFC 3834 §5.1: a report answers a message; auto-responders must not answer it in turn.
        ("Auto-Submitted", "auto-replied"),
        ("Content-Type", f'multipart/report; report-type=delivery-status; boundary="{boundary}"'),
    ]
    per_message = [("Reporting-MTA", _typed(reporting_mta, "dns"))]
    if original_envelope_id:
        per_message.append(("Original-Envelope-Id", original_envelope_id))
    if arrival_date is not None:
        per_message.append(("Arrival-Date", format_datetime(_utc(arrival_date))))
    per_message += list(extension_fields)
    blocks = [_fields(per_message)] + [_fields(_recipient_fields(r)) for r in recipients]

    returned = _header_section(original)
    eight_bit = not returned.isascii()
    human, encoding = _text_body(explanation)
    out = [
        _fields(headers),
        "",
        "This is a delivery status notification in MIME format (RFC 3464).",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Transfer-Encoding: {encoding}",
        "",
        human,
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        "\r\n\r\n".join(blocks),
        "",
        f"--{boundary}",
        "Content-Type: " + ("message/global-headers" if eight_bit else "text/rfc822-headers"),
        *(["Content-Transfer-Encoding: 8bit"] if eight_bit else []),
        "",
    ]
    head = CRLF.join(out).encode("ascii") + CRLF.encode()
    return head + returned + f"{CRLF}--{boundary}--{CRLF}".encode("ascii")


def _recipient_fields(r: RecipientDsn) -> list[tuple[str, str]]:
    fields = []
    if r.original_recipient:
        fields.append(("Original-Recipient", _typed(r.original_recipient, "rfc822")))
    fields += [
        ("Final-Recipient", _typed(r.final_recipient, "rfc822")),
        ("Action", r.action.lower()),
        ("Status", r.status),
    ]
    if r.remote_mta:
        fields.append(("Remote-MTA", _typed(r.remote_mta, "dns")))
    if r.diagnostic_code:
        fields.append(("Diagnostic-Code", _typed(r.diagnostic_code, "smtp")))
    if r.last_attempt_date is not None:
        fields.append(("Last-Attempt-Date", format_datetime(_utc(r.last_attempt_date))))
    return fields + list(r.extension_fields)


_TYPED = re.compile(r"^[A-Za-z0-9-]+\s*;")  # an address, MTA name or diagnostic type (RFC 3464 §2.1.2)


def _typed(value: str, default: str) -> str:
    value = _one_line(value)
    return value if _TYPED.match(value) else f"{default}; {value}"


def _one_line(value: str) -> str:
    """A field value on one line: CR and LF would end the field early (SES refuses them in
    ExtensionFields; a diagnostic from a reply may carry them)."""
    return " ".join(value.split())


_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8 field name


def _fields(pairs: Sequence[tuple[str, str]]) -> str:
    lines = []
    for name, value in pairs:
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid field name {name!r}")
        value = _one_line(value)
        if not value.isascii():
            raise ValueError(f"field {name} must be ASCII")
        lines.append(f"{name}: {value}")
    return CRLF.join(lines)


def _header_section(original: bytes) -> bytes:
    """The original's header section with CRLF line ends, ending with one line break."""
    data = original.replace(b"\r\n", b"\n")
    end = data.find(b"\n\n")
    head = data if end < 0 else data[: end + 1]
    head = head.rstrip(b"\n") + b"\n" if head.strip() else b""
    return head.replace(b"\n", b"\r\n")


def _text_body(text: str) -> tuple[str, str]:
    text = CRLF.join(text.replace("\r\n", "\n").split("\n")).rstrip() + CRLF
    if text.isascii() and all(len(line) <= 998 for line in text.split(CRLF)):
        return text, "7bit"
    return quopri.encodestring(text.encode("utf-8")).decode("ascii").replace("\n", CRLF), "quoted-printable"


def _explanation(recipients: Sequence[RecipientDsn]) -> str:
    lines = ["Your message could not be delivered to the following recipients:", ""]
    for r in recipients:
        why = (r.diagnostic_code or r.status).partition(";")[2].strip() or r.status
        lines.append(f"  {r.final_recipient}: {why}")
    return "\n".join(lines)


def _utc(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
