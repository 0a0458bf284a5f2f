"""GetMessageInsights: one message's events, per recipient, from the events and messages tables.

The model's EventType documentation leaves out, as VDM's metrics do, deliveries, bounces, complaints,
opens and clicks of mail to the mailbox simulator or to more than one recipient, and complaints made by
the account's suppression list; SEND, REJECT, RENDERING_FAILURE, DELIVERY_DELAY and SUBSCRIPTION are
shown for every recipient they concern.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from sesame.domain.authorization import identity_arn
from sesame.domain.sending import is_simulator
from sesame.domain.vdm import ON_SUPPRESSION_LIST, Vdm
from sesame.errors import NotFound
from sesame.events.records import Mail, auto_tags
from sesame.storage.db import Database
from sesame.storage.models import DeliveryEvent, Message, QueueEntry

#: events-table type → (InsightsEvent Type, the detail's list of recipients and the key of each address)
_PER_RECIPIENT = {
    "Delivery": ("DELIVERY", "recipients", None),
    "Bounce": ("BOUNCE", "bouncedRecipients", "emailAddress"),
    "Complaint": ("COMPLAINT", "complainedRecipients", "emailAddress"),
    "DeliveryDelay": ("DELIVERY_DELAY", "delayedRecipients", "emailAddress"),
}
#: Types about the whole message, hence each of its recipients.
_PER_MESSAGE = {
    "Send": "SEND",
    "Reject": "REJECT",
    "RenderingFailure": "RENDERING_FAILURE",
    "Subscription": "SUBSCRIPTION",
    "Open": "OPEN",
    "Click": "CLICK",
}
#: Shown only for mail to one recipient, never to the simulator.
_EXCLUDABLE = {"DELIVERY", "BOUNCE", "COMPLAINT", "OPEN", "CLICK"}
_BOUNCE_TYPES = {"Permanent": "PERMANENT", "Transient": "TRANSIENT", "Undetermined": "UNDETERMINED"}


class MessageNotFound(NotFound):
    pass


class MessageInsights:
    def __init__(self, db: Database, vdm: Vdm) -> None:
        self.db = db
        self.vdm = vdm

    async def get(self, account_id: str, region: str, message_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            message = await s.get(Message, message_id)
            if message is None or (message.account_id, message.region) != (account_id, region):
                raise MessageNotFound(f"Message {message_id} does not exist.")
            recipients = list(
                await s.scalars(
                    sa.select(QueueEntry.recipient)
                    .where(QueueEntry.message_id == message_id)
                    .order_by(QueueEntry.id)
                )
            )
            events = (
                await s.execute(
                    sa.select(DeliveryEvent.event_type, DeliveryEvent.created_at, DeliveryEvent.detail)
                    .where(DeliveryEvent.message_id == message_id)
                    .order_by(DeliveryEvent.id)
                )
            ).all()
        if not recipients:  # not queued (a rendering failure): the addresses the caller gave
            destination = (message.summary or {}).get("Destination") or {}
            recipients = [
                a
                for key in ("ToAddresses", "CcAddresses", "BccAddresses")
                for a in destination.get(key) or []
            ]
        by_address = per_recipient(recipients, events)
        insights = []
        for insight in by_address.values():
            insight["Isp"] = await self.vdm.isp(insight["Destination"].rpartition("@")[2])
            insights.append(insight)
        out: dict[str, Any] = {
            "MessageId": message.id,
            "FromEmailAddress": message.from_address,
            "EmailTags": email_tags(message, recipients),
            "Insights": insights,
        }
        if message.subject:
            out["Subject"] = message.subject
        return out


def email_tags(message: Any, recipients: list[str]) -> list[dict[str, str]]:
    """A message's EmailTags: its own and SES's auto-tags (``ses:from-domain``, …). ``message`` has the
    columns of a Message row (a row or the ORM object)."""
    tags = auto_tags(
        Mail(
            message_id=message.id,
            account_id=message.account_id,
            region=message.region,
            timestamp=message.created_at,
            source=message.source,
            source_arn=identity_arn(message.region, message.account_id, message.from_address),
            operation=message.operation,
            configuration_set=message.configuration_set,
            destination=recipients,
            header_block=b"",
            tags=dict(message.tags or {}),
            source_ip=message.source_ip,
        )
    )
    return [{"Name": k, "Value": v} for k, values in tags.items() for v in values]


def per_recipient(
    recipients: list[str], events: Iterable[tuple[str, dt.datetime, dict[str, Any] | None]]
) -> dict[str, dict[str, Any]]:
    """A message's Insights without their Isp, by lower-cased recipient: ``{"Destination", "Events"}``
    from its events-table rows (type, time, detail) in the order they happened. Also read by the
    MESSAGE_INSIGHTS export jobs (jobs/exports.py)."""
    by_address: dict[str, dict[str, Any]] = {r.lower(): {"Destination": r, "Events": []} for r in recipients}
    single = len(by_address) == 1
    for event_type, created_at, detail in events:
        for address, entry in _entries(event_type, detail or {}, list(by_address)):
            if entry["Type"] in _EXCLUDABLE and (not single or is_simulator(address)):
                continue
            if address in by_address:
                by_address[address]["Events"].append({"Timestamp": created_at, **entry})
    return by_address


def _entries(
    event_type: str, detail: dict[str, Any], everyone: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    """(recipient, InsightsEvent without its Timestamp) for each recipient the event concerns."""
    if event_type in _PER_MESSAGE:
        return [(a, {"Type": _PER_MESSAGE[event_type]}) for a in everyone]
    if event_type not in _PER_RECIPIENT:
        return []
    kind, member, key = _PER_RECIPIENT[event_type]
    out = []
    for item in detail.get(member) or []:
        address = (item if key is None else item.get(key, "")).lower()
        entry: dict[str, Any] = {"Type": kind}
        if kind == "BOUNCE":
            bounce = {"BounceType": _BOUNCE_TYPES.get(detail.get("bounceType", ""), "UNDETERMINED")}
            if detail.get("bounceSubType"):
                bounce["BounceSubType"] = detail["bounceSubType"]
            if item.get("diagnosticCode"):
                bounce["DiagnosticCode"] = item["diagnosticCode"]
            entry["Details"] = {"Bounce": bounce}
        elif kind == "COMPLAINT":
            if detail.get("complaintSubType") == ON_SUPPRESSION_LIST:
                continue
            complaint = {}
            if detail.get("complaintFeedbackType"):
                complaint["ComplaintFeedbackType"] = detail["complaintFeedbackType"]
            entry["Details"] = {"Complaint": complaint}
        out.append((address, entry))
    return out
