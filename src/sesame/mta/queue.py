"""The delivery queue: claiming due entries with leases, and settling them with their outcome records.

Outcomes (mta/outcomes.py) are settled through the process's group-commit writer (storage/writer.py):
those of many deliveries, and mail accepted meanwhile, share one transaction and one commit.

A claim marks entries ``delivering`` with ``locked_by``/``locked_until``. On PostgreSQL the claim skips
rows other nodes hold (``FOR UPDATE SKIP LOCKED``); on SQLite the write lock (``BEGIN IMMEDIATE``)
serializes claims. An entry whose lease expired (its worker died) is due again, so nothing is lost; a
worker settles only entries it still holds, so an entry is not delivered twice in the normal path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.mta.bounce import Verdict
from sesame.mta.outcomes import Deferred, Delivered, Outcome, bounce_event
from sesame.storage.db import Database
from sesame.storage.models import DeliveryEvent, Message, QueueEntry, table, utcnow
from sesame.storage.writer import Work, insert

#: Entries accepted but never to be sent: their recipient is on the suppression list, or unsubscribed
#: from the contact list the mail was sent with. The engine bounces them.
NOT_SENT = ("suppressed", "unsubscribed")
#: PostgreSQL's NOTIFY channel on which a node that queues mail but does not deliver it (``--roles``
#: without delivery) wakes the delivery nodes, who would otherwise find it at their next poll.
QUEUE_CHANNEL = "sesame_queue"


@dataclass(frozen=True)
class Claimed:
    id: int
    message_id: str
    recipient: str
    domain: str
    state: str
    attempts: int
    created_at: dt.datetime


@dataclass(frozen=True)
class Outbound:
    """What delivery needs of an accepted message."""

    id: str
    account_id: str
    region: str
    created_at: dt.datetime
    source: str
    from_address: str
    subject: str | None
    configuration_set: str | None
    tenant_name: str | None
    body: bytes


def _entry_row(outcome: Outcome, now: dt.datetime) -> dict[str, Any]:
    """The queue entry's columns after ``outcome``: its state, when it is due again (a settled entry:
    now, never), the reply to show for it, and no lease."""
    if isinstance(outcome, Delivered):
        state, due, last = "delivered", now, outcome.reply.line()
    elif isinstance(outcome, Deferred):
        state, due, last = "deferred", outcome.retry_at, outcome.verdict.diagnostic_code
    else:
        state, due, last = "bounced", now, outcome.verdict.diagnostic_code
    return {
        "state": state,
        "next_attempt_at": due,
        "last_reply": last,
        "locked_by": None,
        "locked_until": None,
    }


_QUEUE = table(QueueEntry)
_SETTLE = (
    sa.update(_QUEUE)
    .where(_QUEUE.c.id == sa.bindparam("entry_id"))
    .values(
        {c: sa.bindparam(c) for c in ("state", "next_attempt_at", "last_reply", "locked_by", "locked_until")}
    )
)


class DeliveryQueue:
    def __init__(self, db: Database, worker_id: str) -> None:
        self.db = db
        self.worker_id = worker_id
        self._settle = Work("delivery outcomes", self._write_settlements)

    async def renew(self, ids: list[int], lease: float) -> None:
        """Extend this worker's leases on entries it is still delivering, so that a slow server (up to
        RFC 5321's ten minutes for the reply to the final dot) never lets another node take them and
        send the message a second time."""
        if not ids:
            return
        async with self.db.write() as s:
            await s.execute(
                sa.update(QueueEntry)
                .where(QueueEntry.id.in_(ids), QueueEntry.locked_by == self.worker_id)
                .values(locked_until=utcnow() + dt.timedelta(seconds=lease))
                .execution_options(synchronize_session=False)
            )

    async def claim(self, limit: int, lease: float) -> list[Claimed]:
        now = utcnow()
        unheld = sa.or_(QueueEntry.locked_until.is_(None), QueueEntry.locked_until < now)
        due = sa.or_(
            sa.and_(QueueEntry.state.in_(("queued", "deferred")), QueueEntry.next_attempt_at <= now),
            # An entry not to send keeps its state while claimed (below), so it is due only when unheld.
            sa.and_(QueueEntry.state.in_(NOT_SENT), QueueEntry.next_attempt_at <= now, unheld),
            sa.and_(QueueEntry.state == "delivering", QueueEntry.locked_until < now),  # an expired lease
        )
        # Entries of one message come together, so that one SMTP transaction carries its recipients.
        # The state before the claim tells a suppressed entry from one to send: it is read here. A
        # suppressed entry stays "suppressed" while held, so that if its worker dies, the next claim
        # still bounces it rather than sending mail to a suppressed address.
        pick = (
            sa.select(QueueEntry.id, QueueEntry.state)
            .where(due)
            .order_by(QueueEntry.next_attempt_at, QueueEntry.message_id)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            sa.update(QueueEntry)
            .values(
                state=sa.case((QueueEntry.state.in_(NOT_SENT), QueueEntry.state), else_="delivering"),
                locked_by=self.worker_id,
                locked_until=now + dt.timedelta(seconds=lease),
                attempts=QueueEntry.attempts + 1,
            )
            .returning(
                QueueEntry.id,
                QueueEntry.message_id,
                QueueEntry.recipient,
                QueueEntry.domain,
                QueueEntry.attempts,
                QueueEntry.created_at,
            )
            .execution_options(synchronize_session=False)
        )
        async with self.db.write() as s:
            before = {entry_id: state for entry_id, state in await s.execute(pick)}
            if not before:
                return []
            rows = (await s.execute(stmt.where(QueueEntry.id.in_(list(before))))).all()
        return [
            Claimed(
                r.id,
                r.message_id,
                r.recipient,
                r.domain,
                before.get(r.id, "queued"),
                r.attempts,
                r.created_at,
            )
            for r in rows
        ]

    async def messages(self, ids: list[str]) -> dict[str, Outbound]:
        """The claimed messages, read in one statement (Core rows: no ORM identity map to fill)."""
        columns = [getattr(Message, f.name) for f in dataclasses.fields(Outbound)]
        async with self.db.read() as s:
            rows = await s.execute(sa.select(*columns).where(Message.id.in_(ids)))
            return {r.id: Outbound(*r) for r in rows}

    async def settle(self, message: Outbound, outcomes: Sequence[Outcome]) -> int:
        """Record the outcomes of one message's entries, once the writer has committed them; how many of
        the entries this worker still held (only those are settled)."""
        if not outcomes:
            return 0
        held: int = await self.db.writer.submit(self._settle, (message, outcomes))
        return held

    async def _write_settlements(
        self, s: AsyncSession, batch: list[tuple[Outbound, Sequence[Outcome]]]
    ) -> list[int]:
        """Inside the writer's transaction: record outcomes for the entries this worker still holds;
        per message, how many."""
        by_id = {o.entry_id: (m, o) for m, outcomes in batch for o in outcomes}
        if not by_id:
            return [0] * len(batch)
        now = utcnow()
        held = set(
            await s.scalars(
                sa.select(QueueEntry.id).where(
                    QueueEntry.id.in_(list(by_id)), QueueEntry.locked_by == self.worker_id
                )
            )
        )
        counts = [sum(1 for o in outcomes if o.entry_id in held) for _, outcomes in batch]
        # Entries not held any more: our lease expired and another worker has them; its outcome counts.
        if not held:
            return counts
        await s.execute(  # Core statements on the tables: the ORM's bulk machinery costs more here
            _SETTLE, [{"entry_id": entry_id, **_entry_row(by_id[entry_id][1], now)} for entry_id in held]
        )
        records = [
            {
                "message_id": m.id,
                "account_id": m.account_id,
                "region": m.region,
                "event_type": event.event_type,
                "created_at": now,
                "detail": event.body,
            }
            for entry_id in held
            for m, outcome in [by_id[entry_id]]
            for event in outcome.events
        ]
        await insert(s, DeliveryEvent, records)
        return counts


# -- operator actions (sesame queue, through the admin API) ----------------------------------------

PENDING_STATES = ("queued", "deferred", "delivering", *NOT_SENT)


async def pending_counts(db: Database) -> dict[str, int]:
    """Entries not yet settled, by state (read through the state index: delivered rows are not counted)."""
    async with db.read() as s:
        rows = await s.execute(
            sa.select(QueueEntry.state, sa.func.count())
            .where(QueueEntry.state.in_(PENDING_STATES))
            .group_by(QueueEntry.state)
        )
        return {state: n for state, n in rows}


async def summary(db: Database) -> list[dict[str, Any]]:
    """Queue entries counted by destination domain and state."""
    async with db.read() as s:
        rows = await s.execute(
            sa.select(QueueEntry.domain, QueueEntry.state, sa.func.count())
            .group_by(QueueEntry.domain, QueueEntry.state)
            .order_by(QueueEntry.domain, QueueEntry.state)
        )
        return [{"domain": d, "state": st, "count": n} for d, st, n in rows]


async def show(db: Database, message_id: str) -> dict[str, Any] | None:
    """One message: its envelope, each recipient's state and last reply, and its outcome records."""
    async with db.read() as s:
        message = await s.get(Message, message_id)
        if message is None:
            return None
        entries = await s.scalars(
            sa.select(QueueEntry).where(QueueEntry.message_id == message_id).order_by(QueueEntry.id)
        )
        records = await s.scalars(
            sa.select(DeliveryEvent).where(DeliveryEvent.message_id == message_id).order_by(DeliveryEvent.id)
        )
        return {
            "MessageId": message.id,
            "AccountId": message.account_id,
            "Region": message.region,
            "Source": message.source,
            "Subject": message.subject,
            "Status": message.status,
            "Size": message.size,
            "CreatedAt": message.created_at.isoformat(),
            "Recipients": [
                {
                    "Recipient": e.recipient,
                    "State": e.state,
                    "Attempts": e.attempts,
                    "NextAttemptAt": e.next_attempt_at.isoformat(),
                    "LastReply": e.last_reply,
                }
                for e in entries
            ],
            "Events": [
                {"Type": r.event_type, "At": r.created_at.isoformat(), **(r.detail or {})} for r in records
            ],
        }


async def retry_now(db: Database, message_id: str) -> int:
    """Deferred recipients of the message become due at once; how many."""
    async with db.write() as s:
        result = await s.execute(
            sa.update(QueueEntry)
            .where(QueueEntry.message_id == message_id, QueueEntry.state == "deferred")
            .values(next_attempt_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


async def bounce_now(db: Database, message_id: str, verdict: Verdict, helo: str) -> int:
    """Pending recipients (not being delivered right now) bounce with ``verdict``, reported by us
    (``helo``); how many."""
    async with db.write() as s:
        message = await s.get(Message, message_id)
        if message is None:
            return 0
        entries = list(
            await s.scalars(
                sa.select(QueueEntry).where(
                    QueueEntry.message_id == message_id,
                    QueueEntry.state.in_(("queued", "deferred", *NOT_SENT)),
                )
            )
        )
        for e in entries:
            e.state, e.last_reply = "bounced", "bounced by the operator"
            record = bounce_event(e.recipient, verdict, message_id=message_id, helo=helo)
            s.add(
                DeliveryEvent(
                    message_id=message_id,
                    account_id=message.account_id,
                    region=message.region,
                    event_type=record.event_type,
                    created_at=utcnow(),
                    detail=record.body,
                )
            )
        return len(entries)


async def delete(db: Database, message_id: str) -> bool:
    """Forget the message, its queue entries and records (nothing more is delivered)."""
    async with db.write() as s:
        message = await s.get(Message, message_id)
        if message is None:
            return False
        await s.execute(sa.delete(DeliveryEvent).where(DeliveryEvent.message_id == message_id))
        await s.execute(sa.delete(QueueEntry).where(QueueEntry.message_id == message_id))
        await s.delete(message)
        return True
