"""Event records in SES's own JSON: the event publishing format (``eventType``, with tags) and the
identity notification format (``notificationType``), and their names on each destination.

A record is a ``mail`` object describing the message plus the event's own object (the row's
``detail``, built by events/details.py when the outcome happened). Reference: ses-features.md §6.4-6.5.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.utils import getaddresses
from functools import cached_property
from typing import Any

from sesame.events.details import iso
from sesame.mail import mime

#: events-table type → (the record's eventType, the key of the event's own object).
RECORD_NAMES = {
    "Send": ("Send", "send"),
    "Reject": ("Reject", "reject"),
    "Bounce": ("Bounce", "bounce"),
    "Complaint": ("Complaint", "complaint"),
    "Delivery": ("Delivery", "delivery"),
    "Open": ("Open", "open"),
    "Click": ("Click", "click"),
    "RenderingFailure": ("Rendering Failure", "failure"),
    "DeliveryDelay": ("DeliveryDelay", "deliveryDelay"),
    "Subscription": ("Subscription", "subscription"),
}
#: EventBridge ``detail-type`` per event type.
DETAIL_TYPES = {
    "Send": "Email Sent",
    "Reject": "Email Rejected",
    "Bounce": "Email Bounced",
    "Complaint": "Email Complaint Received",
    "Delivery": "Email Delivered",
    "Open": "Email Opened",
    "Click": "Email Clicked",
    "RenderingFailure": "Email Rendering Failed",
    "DeliveryDelay": "Email Delivery Delayed",
    "Subscription": "Email Subscribed",
}
#: Identity notifications exist for these types only.
NOTIFICATION_TYPES = ("Bounce", "Complaint", "Delivery")
#: SNS Subject of an event publishing message.
SNS_SUBJECT = "Amazon SES Email Event Notification"
#: SES truncates the ``headers`` list past this many bytes of names and values.
HEADERS_LIMIT = 10 * 1024


@dataclass(frozen=True)
class Mail:
    """What a record says about its message."""

    message_id: str
    account_id: str
    region: str
    timestamp: dt.datetime
    source: str
    source_arn: str
    operation: str
    configuration_set: str | None
    destination: list[str]
    header_block: bytes  # the message's header section, as stored
    tags: dict[str, str] = field(default_factory=dict)
    source_ip: str | None = None  # the API or SMTP client's address

    @cached_property
    def fields(self) -> list[tuple[str, str]]:
        """The header fields, parsed once however many records of the message a batch publishes."""
        return mime.header_list(self.header_block)


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # a malformed encoded word: show it as written
        return value


#: The order SES writes ``commonHeaders`` in: sending events and notifications…
SENDING_ORDER = ("from", "replyTo", "to", "cc", "bcc", "returnPath", "date", "messageId", "subject")
#: …and receiving notifications (as a 2024 SES recording has them; ``sender``, ``cc`` and ``bcc``
#: placed where the documentation's table would put them among those).
RECEIVING_ORDER = (
    "returnPath", "from", "sender", "replyTo", "date", "to", "cc", "bcc", "messageId", "subject",
)  # fmt: skip
#: RFC 5322 §3.2.3 specials: a display name holding one is written as a quoted-string.
_SPECIALS = set('()<>[]:;@\\,."')


def _quoted(display: str) -> str:
    if not any(c in _SPECIALS for c in display):
        return display
    return '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'


def common_headers(
    headers: list[tuple[str, str]],
    message_id: str | None,
    *,
    order: tuple[str, ...] = SENDING_ORDER,
    quote_names: bool = False,
) -> dict[str, Any]:
    """The ``commonHeaders`` object of a message's header fields, keys in ``order``. ``quote_names``
    writes display names as the message could have (``"Doe, John" <j@example.com>``), as receiving
    notifications do; sending records show them bare."""
    by_name: dict[str, list[str]] = {}
    for name, value in headers:
        by_name.setdefault(name.lower(), []).append(value)

    def addresses(name: str) -> list[str] | None:
        values = by_name.get(name)
        if not values:
            return None
        out = []
        for display, address in getaddresses(values):
            if not address:
                continue
            if display:
                display = _decoded(display)
                out.append(f"{_quoted(display) if quote_names else display} <{address}>")
            else:
                out.append(address)
        return out

    found: dict[str, Any] = {}
    for key, name in (
        ("from", "from"), ("sender", "sender"), ("replyTo", "reply-to"), ("to", "to"), ("cc", "cc"),
        ("bcc", "bcc"),
    ):  # fmt: skip
        if (listed := addresses(name)) is not None:
            found[key] = listed
    if "return-path" in by_name:
        found["returnPath"] = by_name["return-path"][0].strip("<>")
    if "date" in by_name:
        found["date"] = by_name["date"][0]
    if message_id is not None:
        found["messageId"] = message_id
    if "subject" in by_name:
        found["subject"] = _decoded(by_name["subject"][0])
    return {key: found[key] for key in order if key in found}


def header_objects(fields: list[tuple[str, str]]) -> tuple[list[dict[str, str]], bool]:
    """The ``headers`` list of a record and its ``headersTruncated``: the fields in order until their
    names and values pass 10 KB."""
    shown: list[dict[str, str]] = []
    size = 0
    for name, value in fields:
        size += len(name) + len(value)
        if size > HEADERS_LIMIT:
            return shown, True
        shown.append({"name": name, "value": value})
    return shown, False


def auto_tags(mail: Mail) -> dict[str, list[str]]:
    """The message's tags with SES's automatic ``ses:`` tags, each value a list as SES writes it."""
    tags = {name: [value] for name, value in mail.tags.items()}
    tags["ses:operation"] = [mail.operation]
    if mail.configuration_set:
        tags["ses:configuration-set"] = [mail.configuration_set]
    domain = mail.source_arn.rpartition("/")[2].rpartition("@")[2]
    tags["ses:from-domain"] = [domain]
    if mail.source_ip:
        tags["ses:source-ip"] = [mail.source_ip]
    return tags


def mail_object(mail: Mail, *, notification: bool = False, headers: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "timestamp": iso(mail.timestamp),
        "source": mail.source,
        "sourceArn": mail.source_arn,
        "sendingAccountId": mail.account_id,
        "messageId": mail.message_id,
        "destination": list(mail.destination),
    }
    if headers:
        fields = mail.fields
        shown, truncated = header_objects(fields)
        out["headersTruncated"] = truncated
        out["headers"] = shown
        # Event publishing shows SES's message id; notifications the Message-ID the sender wrote.
        original = next((v for n, v in fields if n.lower() == "message-id"), mail.message_id)
        out["commonHeaders"] = common_headers(fields, original if notification else mail.message_id)
    if not notification:
        out["tags"] = auto_tags(mail)
    elif mail.source_ip:
        out["sourceIp"] = mail.source_ip  # notifications name the caller's address here, not in tags
    return out


def event_record(event_type: str, detail: dict[str, Any], mail: Mail) -> dict[str, Any]:
    """The event publishing record (SNS message, Firehose record, EventBridge detail)."""
    name, key = RECORD_NAMES[event_type]
    return {"eventType": name, "mail": mail_object(mail), key: detail}


def notification(event_type: str, detail: dict[str, Any], mail: Mail, *, headers: bool) -> dict[str, Any]:
    """The identity notification record (SetIdentityNotificationTopic), headers only when the identity
    asked for them (SetIdentityHeadersInNotificationsEnabled)."""
    _, key = RECORD_NAMES[event_type]
    return {
        "notificationType": event_type,
        "mail": mail_object(mail, notification=True, headers=headers),
        key: detail,
    }
