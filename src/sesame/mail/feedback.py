"""Reading the feedback that comes back to a return path: delivery status notifications (RFC 3464),
abuse feedback reports (RFC 5965, ARF) and automatic replies (RFC 3834).

``parse_report(raw)`` is pure (the standard library's ``email`` package and nothing else) and never
raises: what it cannot read as one of the three is None. Both reports are ``multipart/report``
(RFC 6522): a human-readable part, a machine-readable part (``message/delivery-status``, RFC 3464 §2;
``message/feedback-report``, RFC 5965 §3), and the original message or its header section. The kind is
told by the machine-readable part that is there, not only by ``report-type``, since some reporters get
the parameter wrong. RFC 6533's ``message/global-delivery-status`` (UTF-8 fields) reads the same way.

Reporters are lenient about the fine print, so this is too: field names are case-insensitive, a
``Final-Recipient`` without its address type ("user@example.com" for "rfc822; user@example.com") is
taken as it is, angle brackets are dropped, and an unparseable date is left out rather than refusing the
report.
"""

from __future__ import annotations

import datetime as dt
import email
import email.header
import email.policy
import logging
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parsedate_to_datetime

log = logging.getLogger(__name__)

#: Machine-readable parts of a DSN (RFC 3464 §2, RFC 6533 §6.1) and of an ARF report (RFC 5965 §3).
DELIVERY_STATUS = ("message/delivery-status", "message/global-delivery-status")
FEEDBACK_REPORT = "message/feedback-report"
DISPOSITION = ("message/disposition-notification", "message/global-disposition-notification")
#: Where a report returns the original: its header section, or the whole message (RFC 6522 §3,
#: RFC 5965 §2 (d)); RFC 6533 §6.3-6.4 for the UTF-8 forms. text/rfc822-headers is the registered name;
#: message/rfc822-headers is a common misspelling.
ORIGINAL_HEADERS = ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers")
ORIGINAL_MESSAGE = ("message/rfc822", "message/global")


@dataclass(frozen=True)
class DsnRecipient:
    """One per-recipient block of a DSN (RFC 3464 §2.3). Addresses without their type ("rfc822;");
    ``status`` and ``diagnostic_code`` as given ("5.1.1", "smtp; 550 5.1.1 user unknown")."""

    final_recipient: str
    action: str  # failed | delayed | delivered | relayed | expanded (lower case)
    status: str
    original_recipient: str | None = None
    diagnostic_code: str | None = None
    remote_mta: str | None = None  # "dns; mx.example.com"
    last_attempt_date: dt.datetime | None = None
    will_retry_until: dt.datetime | None = None
    fields: dict[str, str] = field(default_factory=dict)  # every field, lower-case name → value


@dataclass(frozen=True)
class Dsn:
    """A delivery status notification: the per-message fields (RFC 3464 §2.2) and the recipients'."""

    recipients: tuple[DsnRecipient, ...]
    reporting_mta: str | None = None  # "dns; mx.example.com", as given
    arrival_date: dt.datetime | None = None
    original_envelope_id: str | None = None
    reporter: str | None = None  # the address in the report's From
    original_headers: tuple[tuple[str, str], ...] = ()
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def original_message_id(self) -> str | None:
        return message_id_field(self.original_headers)


@dataclass(frozen=True)
class Arf:
    """An abuse feedback report (RFC 5965 §3.1-3.2); ``feedback_type`` lower case ("abuse", "fraud",
    "virus", "other", "not-spam", "auth-failure")."""

    feedback_type: str
    user_agent: str | None = None
    version: str | None = None
    original_mail_from: str | None = None
    original_rcpt_to: tuple[str, ...] = ()
    arrival_date: dt.datetime | None = None  # Arrival-Date, or the older Received-Date
    reported_domain: tuple[str, ...] = ()
    source_ip: str | None = None
    reporter: str | None = None
    original_headers: tuple[tuple[str, str], ...] = ()
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def original_message_id(self) -> str | None:
        return message_id_field(self.original_headers)


@dataclass(frozen=True)
class AutoReply:
    """An automatic response (RFC 3834: an out-of-office notice, a vacation reply, a read receipt): not
    a bounce. ``reason`` names what gave it away ("Auto-Submitted: auto-replied", …)."""

    reason: str
    sender: str | None = None
    subject: str | None = None


Report = Dsn | Arf | AutoReply


def parse_report(raw: bytes) -> Report | None:
    """What ``raw`` (a whole message, as received) reports, or None when it is none of the three or
    cannot be read. Never raises."""
    try:
        return _parse(raw)
    except Exception:  # a report is data from anyone: whatever breaks the parser means "not readable"
        log.debug("unreadable report", exc_info=True)
        return None


def _parse(raw: bytes) -> Report | None:
    if not raw or not raw.strip():
        return None
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    parts = list(msg.walk())
    types = [p.get_content_type() for p in parts]
    reporter = _first_address(msg.get("From"))
    original = _original_headers(parts)
    status = next((p for p, t in zip(parts, types, strict=True) if t in DELIVERY_STATUS), None)
    if status is not None:
        return _dsn(status, reporter, original)
    feedback = next((p for p, t in zip(parts, types, strict=True) if t == FEEDBACK_REPORT), None)
    if feedback is not None:
        return _arf(feedback, reporter, original)
    if any(t in DISPOSITION for t in types):  # RFC 8098 read receipt: automatic, not a bounce
        return AutoReply("disposition-notification", reporter, _text(msg.get("Subject")))
    why = auto_reply_reason(msg)
    if why is not None:
        return AutoReply(why, reporter, _text(msg.get("Subject")))
    return None


# -- DSN -----------------------------------------------------------------------------------------


def _dsn(part: Message, reporter: str | None, original: tuple[tuple[str, str], ...]) -> Dsn | None:
    blocks = _blocks(part)
    if not blocks:
        return None
    # The per-message block comes first (RFC 3464 §2.1); a reporter that left it out starts with a
    # recipient's block, told by its Final-Recipient.
    if "final-recipient" in blocks[0]:
        first, rest = {}, blocks
    else:
        first, rest = blocks[0], blocks[1:]
    recipients = tuple(r for r in map(_recipient, rest) if r is not None)
    if not recipients:
        return None
    return Dsn(
        recipients=recipients,
        reporting_mta=first.get("reporting-mta"),
        arrival_date=_date(first.get("arrival-date")),
        original_envelope_id=first.get("original-envelope-id"),
        reporter=reporter,
        original_headers=original,
        fields=first,
    )


def _recipient(block: dict[str, str]) -> DsnRecipient | None:
    final = _address(block.get("final-recipient") or block.get("original-recipient") or "")
    action = (block.get("action") or "").strip().lower()
    if not final or not action:
        return None  # both are required (RFC 3464 §2.3): nothing to go on without them
    original = block.get("original-recipient")
    return DsnRecipient(
        final_recipient=final,
        action=action.split()[0],
        status=(block.get("status") or "").strip(),
        original_recipient=_address(original) if original else None,
        diagnostic_code=block.get("diagnostic-code"),
        remote_mta=block.get("remote-mta"),
        last_attempt_date=_date(block.get("last-attempt-date")),
        will_retry_until=_date(block.get("will-retry-until")),
        fields=block,
    )


# -- ARF -----------------------------------------------------------------------------------------


def _arf(part: Message, reporter: str | None, original: tuple[tuple[str, str], ...]) -> Arf | None:
    pairs = [pair for block in _raw_blocks(part) for pair in block]
    if not pairs:
        return None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    feedback_type = (fields.get("feedback-type") or "").strip().lower()
    if not feedback_type:
        return None  # the one field every report has (RFC 5965 §3.1)
    return Arf(
        feedback_type=feedback_type.split()[0],
        user_agent=fields.get("user-agent"),
        version=fields.get("version"),
        original_mail_from=_address(fields["original-mail-from"]) if "original-mail-from" in fields else None,
        original_rcpt_to=tuple(a for n, v in pairs if n == "original-rcpt-to" and (a := _address(v))),
        arrival_date=_date(fields.get("arrival-date") or fields.get("received-date")),
        reported_domain=tuple(v.strip().lower() for n, v in pairs if n == "reported-domain" and v.strip()),
        source_ip=fields.get("source-ip"),
        reporter=reporter,
        original_headers=original,
        fields=fields,
    )


# -- auto-replies --------------------------------------------------------------------------------

#: Subjects of replies sent by vacation programs that forget the RFC 3834 field.
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response)|out of (the )?office|abwesenheit|r[ée]ponse automatique"
    r"|auto:|vacation)",
    re.IGNORECASE,
)


def auto_reply_reason(msg: Message) -> str | None:
    """Why ``msg`` is an automatic reply, or None. RFC 3834 §5 ``Auto-Submitted`` (any value but "no");
    the older conventions it lists in §3.1.7 and that many responders still send instead
    (``Precedence: auto_reply``/``bulk``/``junk``, ``X-Autoreply``, ``X-Autorespond``); and, last, a
    subject that says so."""
    submitted = (msg.get("Auto-Submitted") or "").strip().lower()
    if submitted and submitted.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {submitted}"
    precedence = (msg.get("Precedence") or "").strip().lower()
    if precedence in ("auto_reply", "auto-reply", "bulk", "junk"):
        return f"Precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Response"):
        value = msg.get(name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return f"{name}: {value.strip()}"
    subject = _text(msg.get("Subject")) or ""
    if _AUTO_SUBJECT.search(subject):
        return "Subject"
    return None


# -- helpers -------------------------------------------------------------------------------------


def _raw_blocks(part: Message) -> list[list[tuple[str, str]]]:
    """The groups of header-like fields of a status or feedback part, as (lower-case name, value)."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the email package parsed message/delivery-status into its blocks
        return [
            [(str(k).strip().lower(), _unfold(str(v))) for k, v in block.items()]
            for block in payload
            if isinstance(block, Message)
        ]
    data = part.get_payload(decode=True)
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload or "")
    return _parse_blocks(text)


def _blocks(part: Message) -> list[dict[str, str]]:
    out = []
    for block in _raw_blocks(part):
        fields: dict[str, str] = {}
        for name, value in block:
            fields.setdefault(name, value)
        if fields:
            out.append(fields)
    return out


_FIELD = re.compile(r"([!-9;-~]+)[ \t]*:(.*)")  # RFC 5322 §3.6.8 field name, then a colon


def _parse_blocks(text: str) -> list[list[tuple[str, str]]]:
    """Blocks of fields separated by blank lines, with continuation lines (RFC 5322 §2.2.3 folding)."""
    blocks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        if line[0] in " \t" and current:
            name, value = current[-1]
            current[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        m = _FIELD.match(line)
        if m:
            current.append((m[1].lower(), m[2].strip()))
    if current:
        blocks.append(current)
    return blocks


def _original_headers(parts: list[Message]) -> tuple[tuple[str, str], ...]:
    """The header fields of the returned original, from its header part or its whole message."""
    for p in parts:
        kind = p.get_content_type()
        if kind not in ORIGINAL_MESSAGE and kind not in ORIGINAL_HEADERS:
            continue
        # The email package reads every message/* part (but delivery-status) as a message of its own:
        # its header fields are the original's.
        payload = p.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            return tuple((str(k), _unfold(str(v))) for k, v in inner.items())
        if kind in ORIGINAL_HEADERS:
            data = p.get_payload(decode=True)
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(p.get_payload())
            headers = HeaderParser(policy=email.policy.compat32).parsestr(text.lstrip("\r\n"))
            return tuple((str(k), _unfold(str(v))) for k, v in headers.items())
    return ()


def message_id_field(headers: tuple[tuple[str, str], ...]) -> str | None:
    """The Message-ID of a header list, without its angle brackets."""
    for name, value in headers:
        if name.lower() == "message-id":
            value = value.strip()
            m = re.search(r"<([^<>]+)>", value)
            return (m[1] if m else value).strip() or None
    return None


def _address(value: str) -> str:
    """ "rfc822; <User@Example.com>" → "User@Example.com": the address without its type (RFC 3464
    §2.3.2) and brackets; a value without a type is taken as the address."""
    value = _unfold(value)
    kind, sep, rest = value.partition(";")
    if sep and "@" not in kind:
        value = rest
    return value.strip().strip("<>").strip()


def _first_address(value: str | None) -> str | None:
    if not value:
        return None
    found = [a for _, a in getaddresses([str(value)]) if a]
    return found[0] if found else None


def _date(value: str | None) -> dt.datetime | None:
    """An RFC 5322 date-time (RFC 3464 §2.2.5 and RFC 5965 §3.1 use it), in UTC; None if unreadable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(_unfold(value))
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _unfold(value: str) -> str:
    return " ".join(value.split())


def _text(value: object) -> str | None:
    if value is None:
        return None
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:  # a malformed encoded word: the value as written
        return str(value)
