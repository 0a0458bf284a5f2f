"""The per-type objects of SES event records: ``delivery``, ``bounce``, ``deliveryDelay``, ``complaint``.

An event record is ``{"eventType": …, "mail": {…}, <key>: {…}}``; this module builds the third member,
field for field as SES writes it (project reference §6.4, from the SES Developer Guide's event-publishing
contents and examples). It is what the ``events`` table keeps per row (``DeliveryEvent.event_type`` and
``DeliveryEvent.detail``), written with the state change that caused it; the record around it (``mail``,
tags) is put together when the event is published. Everything here is plain JSON: strings, numbers,
lists, and timestamps already in SES's form.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: ``eventType`` values of the records built here [§6.3].
DELIVERY, BOUNCE, DELIVERY_DELAY, COMPLAINT = "Delivery", "Bounce", "DeliveryDelay", "Complaint"
#: The record member holding each type's object.
RECORD_KEYS = {
    DELIVERY: "delivery",
    BOUNCE: "bounce",
    DELIVERY_DELAY: "deliveryDelay",
    COMPLAINT: "complaint",
}


@dataclass(frozen=True)
class Detail:
    """One event of one type: ``body`` is its per-type object, as stored in ``DeliveryEvent.detail``
    and published under the record member ``key``."""

    event_type: str
    body: dict[str, Any]

    @property
    def key(self) -> str:
        return RECORD_KEYS[self.event_type]


@dataclass(frozen=True)
class BouncedRecipient:
    """One ``bouncedRecipients`` entry. SES always gives ``emailAddress``; ``action`` ("failed"),
    ``status`` ("5.1.1") and ``diagnosticCode`` ("smtp; 550 5.1.1 user unknown") when it has a DSN or
    a reply to go on; None leaves a field out."""

    email_address: str
    action: str | None = None
    status: str | None = None
    diagnostic_code: str | None = None

    def json(self) -> dict[str, str]:
        out = {"emailAddress": self.email_address}
        if self.action is not None:
            out["action"] = self.action
        if self.status is not None:
            out["status"] = self.status
        if self.diagnostic_code is not None:
            out["diagnosticCode"] = self.diagnostic_code
        return out


@dataclass(frozen=True)
class DelayedRecipient:
    """One ``delayedRecipients`` entry: the address, its status ("4.4.1") and ``diagnosticCode``."""

    email_address: str
    status: str
    diagnostic_code: str

    def json(self) -> dict[str, str]:
        return {
            "emailAddress": self.email_address,
            "status": self.status,
            "diagnosticCode": self.diagnostic_code,
        }


def iso(when: dt.datetime) -> str:
    """SES's timestamp form: UTC, milliseconds, ``Z`` ("2017-08-05T00:41:02.669Z"). ``when`` must be
    timezone-aware (storage gives UTC datetimes on both databases)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def feedback_id(message_id: str) -> str:
    """A ``feedbackId`` for a bounce or complaint of ``message_id``: unique per event, and, like SES's
    ("0100…-61b59c11-…-000000"), naming the message it is about."""
    return f"{message_id}-{uuid.uuid4()}-000000"


def delivery(
    recipients: Sequence[str],
    *,
    timestamp: dt.datetime,
    sent_at: dt.datetime,
    smtp_response: str,
    reporting_mta: str,
    remote_mta_ip: str,
) -> Detail:
    """The remote server took the message (``smtp_response``, "250 2.0.0 OK …") at ``timestamp``;
    ``processingTimeMillis`` counts from ``sent_at``, when SES accepted it. ``reporting_mta`` is our own
    host name (SES: "a8-77.smtp-out.amazonses.com"), ``remote_mta_ip`` the address that answered."""
    return Detail(
        DELIVERY,
        {
            "timestamp": iso(timestamp),
            "processingTimeMillis": int((timestamp - sent_at).total_seconds() * 1000),
            "recipients": list(recipients),
            "smtpResponse": smtp_response,
            "reportingMTA": reporting_mta,
            "remoteMtaIp": remote_mta_ip,
        },
    )


def bounce(
    bounce_type: str,
    bounce_subtype: str,
    recipients: Sequence[BouncedRecipient],
    *,
    timestamp: dt.datetime,
    feedback_id: str,
    reporting_mta: str,
) -> Detail:
    """A hard bounce, or a soft one SES stopped retrying. ``reporting_mta`` as a DSN's ``Reporting-MTA``
    gives it, with its type: "dns; mta.example.com" (RFC 3464 §2.2.2)."""
    return Detail(
        BOUNCE,
        {
            "bounceType": bounce_type,
            "bounceSubType": bounce_subtype,
            "bouncedRecipients": [r.json() for r in recipients],
            "timestamp": iso(timestamp),
            "feedbackId": feedback_id,
            "reportingMTA": reporting_mta,
        },
    )


def delivery_delay(
    delay_type: str,
    recipients: Sequence[DelayedRecipient],
    *,
    timestamp: dt.datetime,
    expiration_time: dt.datetime,
    reporting_mta: str | None = None,
) -> Detail:
    """A temporary failure SES keeps retrying until ``expiration_time``. ``reporting_mta`` is the host
    that answered, when one did (left out for failures decided here: no route, no connection)."""
    body: dict[str, Any] = {
        "timestamp": iso(timestamp),
        "delayType": delay_type,
        "expirationTime": iso(expiration_time),
        "delayedRecipients": [r.json() for r in recipients],
    }
    if reporting_mta is not None:
        body["reportingMTA"] = reporting_mta
    return Detail(DELIVERY_DELAY, body)


def complaint(
    recipients: Sequence[str],
    *,
    timestamp: dt.datetime,
    feedback_id: str,
    subtype: str | None = None,
    feedback_type: str | None = None,
    user_agent: str | None = None,
    arrival_date: dt.datetime | None = None,
) -> Detail:
    """A recipient's complaint. ``complaintSubType`` is always there: null, or "OnAccountSuppressionList"
    when the address was on the account's suppression list. The ARF report's fields, when there is one
    (RFC 5965 §3.1: Feedback-Type, User-Agent, Arrival-Date), follow as ``complaintFeedbackType``
    ("abuse", …), ``userAgent`` and ``arrivalDate``."""
    body: dict[str, Any] = {
        "complainedRecipients": [{"emailAddress": r} for r in recipients],
        "timestamp": iso(timestamp),
        "feedbackId": feedback_id,
        "complaintSubType": subtype,
    }
    if user_agent is not None:
        body["userAgent"] = user_agent
    if feedback_type is not None:
        body["complaintFeedbackType"] = feedback_type
    if arrival_date is not None:
        body["arrivalDate"] = iso(arrival_date)
    return Detail(COMPLAINT, body)
