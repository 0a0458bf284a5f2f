"""What became of one claimed queue entry: ``Delivered``, ``Deferred`` or ``Bounced``.

Each outcome carries what settling the entry needs (its id, the reply or verdict behind it, the time of
the next attempt) and the event records to write in the same transaction (``events.details``): the
Delivery (and, from the mailbox simulator's complaint@, a Complaint), the DeliveryDelay, the Bounce.
The queue turns them into its rows (``queue.settle``); the engine reads a permanent ``Bounced`` to put
the address on the suppression list.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeAlias

from sesame.events import details
from sesame.events.details import Detail
from sesame.mta.bounce import PERMANENT, UNDETERMINED, Verdict, bounced_recipient
from sesame.mta.reply import SmtpReply
from sesame.storage.models import utcnow


@dataclass(frozen=True)
class Delivered:
    """The recipient's server took the message: ``reply`` is its acceptance ("250 2.0.0 Ok")."""

    entry_id: int
    reply: SmtpReply
    events: tuple[Detail, ...]


@dataclass(frozen=True)
class Deferred:
    """A temporary failure (``verdict.temporary``): tried again at ``retry_at``."""

    entry_id: int
    verdict: Verdict
    retry_at: dt.datetime
    events: tuple[Detail, ...]


@dataclass(frozen=True)
class Bounced:
    """Given up: a permanent failure, or a temporary one past the message's retry window."""

    entry_id: int
    verdict: Verdict
    events: tuple[Detail, ...]

    @property
    def permanent(self) -> bool:
        """A hard bounce: the address may join the suppression list."""
        return self.verdict.bounce_type == PERMANENT


Outcome: TypeAlias = Delivered | Deferred | Bounced


def delivered(
    entry_id: int,
    recipient: str,
    reply: SmtpReply,
    *,
    sent_at: dt.datetime,
    helo: str,
    remote_mta_ip: str,
) -> Delivered:
    """``recipient``'s server accepted the message with ``reply``; ``helo`` is our own name, the
    Delivery's ``reportingMTA``."""
    record = details.delivery(
        [recipient],
        timestamp=utcnow(),
        sent_at=sent_at,
        smtp_response=reply.line(),
        reporting_mta=helo,
        remote_mta_ip=remote_mta_ip,
    )
    return Delivered(entry_id, reply, (record,))


def deferred(
    entry_id: int,
    recipient: str,
    verdict: Verdict,
    *,
    retry_at: dt.datetime,
    delay_type: str,
    expires: dt.datetime,
    remote_host: str | None = None,
) -> Deferred:
    """A temporary failure, tried again at ``retry_at`` and given up at ``expires``; ``remote_host`` is
    the host that answered it, if one did (the DeliveryDelay's ``reportingMTA``)."""
    record = details.delivery_delay(
        delay_type,
        [details.DelayedRecipient(recipient, verdict.status, verdict.diagnostic_code)],
        timestamp=utcnow(),
        expiration_time=expires,
        reporting_mta=remote_host,
    )
    return Deferred(entry_id, verdict, retry_at, (record,))


def bounce_event(recipient: str, verdict: Verdict, *, message_id: str, helo: str) -> Detail:
    """The Bounce record of ``recipient`` for a verdict that gives up, reported by us (``helo``)."""
    return details.bounce(
        verdict.bounce_type or UNDETERMINED,  # never None: a verdict that bounces has a type
        verdict.bounce_subtype,
        [bounced_recipient(verdict, recipient)],
        timestamp=utcnow(),
        feedback_id=details.feedback_id(message_id),
        reporting_mta=f"dns; {helo}",  # a DSN's Reporting-MTA, with its type (RFC 3464 §2.2.2)
    )


def bounced(entry_id: int, recipient: str, verdict: Verdict, *, message_id: str, helo: str) -> Bounced:
    return Bounced(entry_id, verdict, (bounce_event(recipient, verdict, message_id=message_id, helo=helo),))
