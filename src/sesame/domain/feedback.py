"""Asynchronous feedback: bounces that arrive after the remote server said 250, and complaints.

A DSN (RFC 3464) from a server that accepted a message and failed to deliver it later, or an abuse
report (RFC 5965 ARF) from a mailbox provider's feedback loop, comes back to the message's return path
(``<message id>@<return-path domain>``, mta/return_path.py). The MX hands each such mail to
``Feedback.receive``, which finds the message and writes, in one transaction:

* the Bounce event(s), one per bounce type and subtype the report's failed recipients have (a DSN's
  recipients are classified one by one, by ``classify_dsn``, as our own transaction's replies are), or
  the Complaint event, with the report's ``complaintFeedbackType``, ``userAgent`` and ``arrivalDate``;
* the suppression-list entries, decided as for synchronous bounces (domain/suppression.py: the
  account's or configuration set's reasons, hard bounces only), with the report's feedback id;
* for a hard bounce of a recipient still waiting in the queue, its end (no more retries). A recipient
  that was delivered keeps its state; the bounce is recorded in its last reply and in the event.

The events then go where synchronous ones go (the outbox: event destinations, identity notifications,
feedback forwarding) and are counted by the same observers (reputation, VDM, statistics).

Reports that match no message, or cannot be read, are logged, counted (``sesame_feedback_reports``) and
dropped: ``receive`` says what happened and raises only when storage fails (so that the MX can answer
4xx and the report is sent again).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from email.utils import getaddresses

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.domain.suppression import add, key, suppressible, target_in
from sesame.events import details
from sesame.events.details import BouncedRecipient, Detail
from sesame.mail.feedback import Arf, AutoReply, Dsn, parse_report
from sesame.metrics import FEEDBACK
from sesame.mta.bounce import PERMANENT, UNDETERMINED, Verdict, classify_dsn
from sesame.mta.return_path import message_id_of
from sesame.storage.db import Database
from sesame.storage.models import DeliveryEvent, Message, QueueEntry, utcnow

log = logging.getLogger(__name__)

#: What ``receive`` reports.
BOUNCE, COMPLAINT, AUTO_REPLY, DELAYED, IGNORED, UNMATCHED, MALFORMED = (
    "bounce",
    "complaint",
    "auto-reply",
    "delayed",
    "ignored",
    "unmatched",
    "malformed",
)
#: Queue states in which a recipient is still waiting for delivery; a hard bounce ends the wait.
WAITING = ("queued", "deferred", "suppressed", "unsubscribed")
#: ARF feedback types that are not complaints: a recipient saying a message is *not* spam (RFC 6650).
NOT_COMPLAINTS = frozenset({"not-spam"})


@dataclass(frozen=True)
class _Entry:
    id: int
    recipient: str
    state: str


@dataclass(frozen=True)
class _Message:
    id: str
    account_id: str
    region: str
    configuration_set: str | None
    tenant: str | None
    entries: tuple[_Entry, ...]

    def entry(self, *addresses: str | None) -> _Entry | None:
        by_key = {key(e.recipient): e for e in self.entries}
        return next((by_key[key(a)] for a in addresses if a and key(a) in by_key), None)


@dataclass(frozen=True)
class _Bounced:
    address: str
    entry: _Entry | None
    verdict: Verdict


class Feedback:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def receive(self, recipient: str, raw: bytes) -> str:
        """Take one report that came to ``recipient`` (a return path); what became of it: "bounce",
        "complaint", "auto-reply", "delayed" (a DSN of delays or successes only), "ignored" (a not-spam
        report), "unmatched" (no such message), "malformed" (not a report)."""
        outcome = await self._receive(recipient, raw)
        FEEDBACK.labels(outcome).inc()
        return outcome

    async def _receive(self, recipient: str, raw: bytes) -> str:
        report = parse_report(raw)
        if report is None:
            log.info("feedback to %s: not a report Sesame reads (%d bytes); dropped", recipient, len(raw))
            return MALFORMED
        if isinstance(report, AutoReply):
            log.info("feedback to %s: an automatic reply (%s); not a bounce", recipient, report.reason)
            return AUTO_REPLY
        message = await self._message(recipient, report.original_message_id)
        if message is None:
            log.info("feedback to %s matches no message (%s); dropped", recipient, type(report).__name__)
            return UNMATCHED
        if isinstance(report, Dsn):
            return await self._bounce(message, report)
        return await self._complaint(message, report)

    async def _message(self, recipient: str, original_message_id: str | None) -> _Message | None:
        """The message the return path names, else the one the returned Message-ID names (Sesame writes
        ``<message id>@<region>.amazonses.com``, reference §1.7)."""
        candidates = [message_id_of(recipient)]
        if original_message_id:
            candidates.append(message_id_of(original_message_id))
        async with self.db.read() as s:
            for message_id in dict.fromkeys(c for c in candidates if c):
                row = (
                    await s.execute(
                        sa.select(
                            Message.id,
                            Message.account_id,
                            Message.region,
                            Message.configuration_set,
                            Message.tenant_name,
                        ).where(Message.id == message_id)
                    )
                ).first()
                if row is None:
                    continue
                entries = await s.execute(
                    sa.select(QueueEntry.id, QueueEntry.recipient, QueueEntry.state)
                    .where(QueueEntry.message_id == message_id)
                    .order_by(QueueEntry.id)
                )
                return _Message(*row, entries=tuple(_Entry(*e) for e in entries))
        return None

    # -- bounces ----------------------------------------------------------------------------------

    async def _bounce(self, message: _Message, dsn: Dsn) -> str:
        failed = [r for r in dsn.recipients if r.action == "failed"]
        if not failed:
            log.info("DSN for %s reports no failure (%s)", message.id, [r.action for r in dsn.recipients])
            return DELAYED
        bounced = []
        for r in failed:
            entry = message.entry(r.original_recipient, r.final_recipient)
            if entry is None and len(message.entries) == 1 and len(failed) == 1:
                # The one recipient, under another name (a forward, an alias the DSN reports): it is
                # what the report is about.
                entry = message.entries[0]
            verdict = classify_dsn(r.action, r.status, r.diagnostic_code)
            bounced.append(_Bounced(entry.recipient if entry else r.final_recipient, entry, verdict))
        reporting_mta = dsn.reporting_mta or _reporter_mta(dsn.reporter)
        groups: dict[tuple[str, str], list[_Bounced]] = defaultdict(list)
        for b in bounced:
            groups[(b.verdict.bounce_type or UNDETERMINED, b.verdict.bounce_subtype)].append(b)
        now = utcnow()
        records: list[Detail] = []
        suppress: list[tuple[str, str]] = []  # (address, feedback id)
        for (bounce_type, subtype), members in groups.items():
            feedback_id = details.feedback_id(message.id)
            records.append(
                details.bounce(
                    bounce_type,
                    subtype,
                    [
                        BouncedRecipient(
                            b.address, b.verdict.action, b.verdict.status, b.verdict.diagnostic_code or None
                        )
                        for b in members
                    ],
                    timestamp=now,
                    feedback_id=feedback_id,
                    reporting_mta=reporting_mta,
                )
            )
            if suppressible(bounce_type, subtype):
                # Only the message's own recipients: a report cannot put any address it likes on the list.
                suppress += [(b.entry.recipient, feedback_id) for b in members if b.entry is not None]
        async with self.db.write() as s:
            await self._record(s, message, records)
            target = await target_in(
                s, message.account_id, message.region, message.configuration_set, message.tenant
            )
            if suppress and "BOUNCE" in target.reasons:
                for address, feedback_id in suppress:
                    await add(
                        s,
                        message.account_id,
                        message.region,
                        address,
                        "BOUNCE",
                        message.id,
                        feedback_id,
                        tenant=target.tenant,
                    )
            for b in bounced:
                if b.entry is None:
                    continue
                done = b.verdict.bounce_type == PERMANENT and b.entry.state in WAITING
                why = b.verdict.diagnostic_code or b.verdict.status
                await s.execute(
                    sa.update(QueueEntry)
                    .where(QueueEntry.id == b.entry.id)
                    .values(
                        last_reply=f"bounced after acceptance: {why}",
                        **({"state": "bounced"} if done else {}),
                    )
                    .execution_options(synchronize_session=False)
                )
        log.info("DSN for %s: %d recipient(s) bounced", message.id, len(bounced))
        return BOUNCE

    # -- complaints -------------------------------------------------------------------------------

    async def _complaint(self, message: _Message, arf: Arf) -> str:
        if arf.feedback_type in NOT_COMPLAINTS:
            log.info("a %s report for %s: not a complaint", arf.feedback_type, message.id)
            return IGNORED
        complained = _complainants(message, arf)
        if not complained:
            log.info("complaint about %s names no recipient of it; dropped", message.id)
            return UNMATCHED
        feedback_id = details.feedback_id(message.id)
        record = details.complaint(
            complained,
            timestamp=utcnow(),
            feedback_id=feedback_id,
            feedback_type=arf.feedback_type,
            user_agent=arf.user_agent,
            arrival_date=arf.arrival_date,
        )
        async with self.db.write() as s:
            await self._record(s, message, [record])
            target = await target_in(
                s, message.account_id, message.region, message.configuration_set, message.tenant
            )
            if "COMPLAINT" in target.reasons:
                for address in complained:
                    await add(
                        s,
                        message.account_id,
                        message.region,
                        address,
                        "COMPLAINT",
                        message.id,
                        feedback_id,
                        tenant=target.tenant,
                    )
        log.info("complaint (%s) about %s from %s", arf.feedback_type, message.id, ", ".join(complained))
        return COMPLAINT

    async def _record(self, s: AsyncSession, message: _Message, records: list[Detail]) -> None:
        now = utcnow()
        for r in records:
            s.add(
                DeliveryEvent(
                    message_id=message.id,
                    account_id=message.account_id,
                    region=message.region,
                    event_type=r.event_type,
                    created_at=now,
                    detail=r.body,
                )
            )


def _complainants(message: _Message, arf: Arf) -> list[str]:
    """Who complained: the report's Original-Rcpt-To (or the returned message's recipient fields) when
    they name recipients of the message. Providers
    often redact it, and then SES names every recipient on the complaining domain (reference §6.4):
    those whose domain is the reporter's or a parent of it (feedback@arf.mail.example.com reports for
    example.com); failing that, every recipient of the message."""
    candidates = list(arf.original_rcpt_to)
    for name, value in arf.original_headers:
        # Microsoft's reports keep the recipient in a header of the returned message; others leave the
        # original To and Cc as they were (or redacted, which then matches nobody).
        if name.lower() in ("x-hmxmroriginalrecipient", "to", "cc"):
            candidates += [a for _, a in getaddresses([value]) if a]
    named = [e.recipient for a in candidates if (e := message.entry(a)) is not None]
    if named:
        return list(dict.fromkeys(named))
    reporter = (arf.reporter or "").rpartition("@")[2].lower()
    on_domain = [
        e.recipient
        for e in message.entries
        if reporter
        and (d := e.recipient.rpartition("@")[2].lower())
        and (reporter == d or reporter.endswith("." + d))
    ]
    return on_domain or [e.recipient for e in message.entries]


def _reporter_mta(reporter: str | None) -> str:
    """A Reporting-MTA for a DSN that left it out: the reporter's domain."""
    domain = (reporter or "").rpartition("@")[2]
    return f"dns; {domain}" if domain else "dns; unknown"
