"""The SES mailbox simulator: mail to simulator.amazonses.com never leaves, it is answered here as SES
answers it (project reference, mailbox simulator).

The local part says what happens, a +label ignored (bounce+x@ is bounce@): ``bounce`` is a hard bounce
(550 5.1.1 user unknown), ``suppressionlist`` (and the older ``blacklist``) a bounce for an address on
SES's global suppression list, ``complaint`` a delivery and then the recipient's complaint, ``ooto`` a
delivery and an automatic out-of-office reply (RFC 3834) to the sender; anything else (``success``) is
delivered. The engine settles these outcomes like any others, but never puts a simulator address on
the suppression list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sesame.domain import compose
from sesame.domain.compose import Envelope
from sesame.domain.sending import SIMULATOR_DOMAIN, Outgoing
from sesame.events import details
from sesame.mta import bounce, outcomes
from sesame.mta.outcomes import Outcome
from sesame.mta.queue import Claimed, Outbound
from sesame.mta.reply import SmtpReply
from sesame.storage.models import utcnow

#: What the simulator "server" answers: accepted, from the loopback address.
ACCEPTED = SmtpReply(250, None, "2.6.0 Message received")
UNKNOWN_USER = SmtpReply(550, "5.1.1", "user unknown")
REMOTE_IP = "127.0.0.1"


def mailbox(address: str) -> str:
    """The simulator mailbox an address is: its local part, lower case, without a +label."""
    return address.rpartition("@")[0].split("+", 1)[0].lower()


def answer(message: Outbound, entries: Sequence[Claimed], helo: str) -> list[Outcome]:
    """Each recipient's outcome; ``helo`` is our own name, the reporting MTA of the records."""
    out: list[Outcome] = []
    for e in entries:
        box = mailbox(e.recipient)
        if box == "bounce":
            verdict = bounce.classify_reply(UNKNOWN_USER)
            out.append(outcomes.bounced(e.id, e.recipient, verdict, message_id=message.id, helo=helo))
        elif box in ("suppressionlist", "blacklist"):
            verdict = bounce.local("global-suppressed")
            out.append(outcomes.bounced(e.id, e.recipient, verdict, message_id=message.id, helo=helo))
        else:
            delivered = outcomes.delivered(
                e.id, e.recipient, ACCEPTED, sent_at=message.created_at, helo=helo, remote_mta_ip=REMOTE_IP
            )
            if box == "complaint":
                complaint = details.complaint(
                    [e.recipient],
                    timestamp=utcnow(),
                    feedback_id=details.feedback_id(message.id),
                    feedback_type="abuse",
                )
                delivered = dataclasses.replace(delivered, events=(*delivered.events, complaint))
            out.append(delivered)
    return out


def out_of_office(message: Outbound, entries: Sequence[Claimed]) -> list[Outgoing]:
    """The automatic replies (RFC 3834) of the ``ooto`` recipients to the envelope sender, to be queued
    like mail."""
    return [_auto_reply(message, e.recipient) for e in entries if mailbox(e.recipient) == "ooto"]


def _auto_reply(message: Outbound, recipient: str) -> Outgoing:
    return compose.simple(
        "AutoReply",
        message.region,
        Envelope(source=recipient, to=[message.source]),
        subject=f"Out of the office: {message.subject or ''}".strip(),
        text="I am out of the office and will answer your message when I am back.\n",
        headers=[("Auto-Submitted", "auto-replied"), ("In-Reply-To", f"<{message.id}@{SIMULATOR_DOMAIN}>")],
        limit=compose.V2_MAX_BYTES,
        summary={"Destination": {"ToAddresses": [message.source]}, "Subject": "Out of the office"},
    )
