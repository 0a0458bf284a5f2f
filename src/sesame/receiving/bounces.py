"""SendBounce (reference 10.6): a DSN about a message Sesame received for the account, sent back to that
message's sender through Sesame's own queue, within 24 hours of its arrival."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sesame.domain.sending import Outgoing, Sending
from sesame.errors import DomainError, InvalidRequest
from sesame.mail.dsn import BOUNCE_TYPES, RecipientDsn, build_dsn, recipient_for
from sesame.receiving.inbox import Inbox
from sesame.storage.models import InboundMessage, utcnow

#: SES takes SendBounce only for mail it received within the last 24 hours.
BOUNCE_WINDOW = dt.timedelta(hours=24)


class BounceRejected(DomainError):
    """SES's MessageRejected for SendBounce."""


class Bounces:
    def __init__(self, inbox: Inbox, sending: Sending, reporting_mta: str, *, dev: bool) -> None:
        self.inbox = inbox
        self.sending = sending
        self.reporting_mta = reporting_mta
        self.dev = dev

    async def send_bounce(self, account_id: str, region: str, params: dict[str, Any]) -> str:
        original = await self._original(account_id, params["OriginalMessageId"])
        sender = params["BounceSender"]
        if await self.sending.covering(account_id, region, sender) is None:
            raise BounceRejected(
                "Email address is not verified. The following identities failed the check in region "
                f"{region.upper()}: {sender}"
            )
        if not original.mail_from:
            raise BounceRejected(
                "The original message came from the null sender; there is no one to bounce to."
            )
        dsn = params.get("MessageDsn") or {}
        body = build_dsn(
            reporting_mta=dsn.get("ReportingMta") or f"dns; {self.reporting_mta}",
            sender=sender,
            to=original.mail_from,
            original=original.body,
            recipients=[_recipient(info) for info in params["BouncedRecipientInfoList"]],
            explanation=params.get("Explanation") or "",
            arrival_date=dsn.get("ArrivalDate") or original.received_at,
            extension_fields=[(f["Name"], f["Value"]) for f in dsn.get("ExtensionFields") or []],
        )
        out = Outgoing(
            operation="SendBounce",
            from_address=sender,
            envelope_from="",  # RFC 3464 §2: a DSN goes out with the null reverse-path
            recipients=[original.mail_from],
            body=body,
            subject="Delivery Status Notification (Failure)",
            summary={"RawData": body.decode("utf-8", "replace"), "Destinations": [original.mail_from]},
        )
        return await self.sending.send_system(account_id, region, out)

    async def _original(self, account_id: str, message_id: str) -> InboundMessage:
        """The received message, if the account received it (a receipt of its rules ran over it, or
        dev mode captured it) in the last 24 hours."""
        found = await self.inbox.message(message_id)
        if found is not None and not (self.dev and found.state == "captured"):
            receipts = await self.inbox.receipts(message_id)
            if not any(r.account_id == account_id for r in receipts):
                found = None
        if found is None:
            raise BounceRejected(f"Could not find the original message {message_id}.")
        if utcnow() - found.received_at > BOUNCE_WINDOW:
            raise BounceRejected(f"The original message {message_id} was received more than 24 hours ago.")
        return found


def _recipient(info: dict[str, Any]) -> RecipientDsn:
    """One BouncedRecipientInfo: a BounceType (SES fills in the rest) or the DSN fields themselves."""
    fields = info.get("RecipientDsnFields")
    if info.get("BounceType") in BOUNCE_TYPES:
        return recipient_for(info["Recipient"], info["BounceType"])
    if fields is None:
        raise InvalidRequest("You must provide either BounceType or RecipientDsnFields for each recipient.")
    return RecipientDsn(
        final_recipient=fields.get("FinalRecipient") or info["Recipient"],
        action=fields["Action"],
        status=fields["Status"],
        diagnostic_code=fields.get("DiagnosticCode"),
        remote_mta=fields.get("RemoteMta"),
        last_attempt_date=fields.get("LastAttemptDate"),
        extension_fields=[(f["Name"], f["Value"]) for f in fields.get("ExtensionFields") or []],
    )
