"""The delivery queue: claiming due entries with leases, and settling them with their outcome records.

A claim marks entries ``delivering`` with ``locked_by``/``locked_until``. On PostgreSQL the claim skips
rows other nodes hold (``FOR UPDATE SKIP LOCKED``); on SQLite the write lock (``BEGIN IMMEDIATE``)
serializes claims. An entry whose lease expired (its worker died) is due again, so nothing is lost; a
worker settles only entries it still holds, so an entry is not delivered twice in the normal path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sesame.storage.db import Database
from sesame.storage.models import DeliveryEvent, Message, QueueEntry, utcnow

#: States a worker picks up: new, waiting for a retry, or suppressed at acceptance (bounced at once).
DUE_STATES = ("queued", "deferred", "suppressed")


@dataclass(frozen=True)
class Claimed:
    id: int
    message_id: str
    recipient: str
    domain: str
    state: str
    attempts: int
    created_at: dt.datetime


@dataclass
class Settlement:
    """What became of one claimed entry, and the records to write with it."""

    entry_id: int
    state: str  # delivered | bounced | deferred
    next_attempt_at: dt.datetime | None = None
    last_reply: str | None = None
    events: tuple[tuple[str, dict[str, Any]], ...] = ()


class DeliveryQueue:
    def __init__(self, db: Database, worker_id: str) -> None:
        self.db = db
        self.worker_id = worker_id

    async def claim(self, limit: int, lease: float) -> list[Claimed]:
        now = utcnow()
        due = sa.or_(
            sa.and_(QueueEntry.state.in_(DUE_STATES), QueueEntry.next_attempt_at <= now),
            sa.and_(QueueEntry.state == "delivering", QueueEntry.locked_until < now),  # an expired lease
        )
        # Entries of one message come together, so that one SMTP transaction carries its recipients.
        pick = (
            sa.select(QueueEntry.id)
            .where(due)
            .order_by(QueueEntry.next_attempt_at, QueueEntry.message_id)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            sa.update(QueueEntry)
            .values(
                state="delivering",
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
        # The state before the claim tells a suppressed entry from one to send; read it in the same
        # transaction, before the update rewrites it.
        async with self.db.write() as s:
            ids = list(await s.scalars(pick))
            if not ids:
                return []
            found = await s.execute(sa.select(QueueEntry.id, QueueEntry.state).where(QueueEntry.id.in_(ids)))
            before = {entry_id: state for entry_id, state in found}
            rows = (await s.execute(stmt.where(QueueEntry.id.in_(ids)))).all()
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

    async def messages(self, ids: list[str]) -> dict[str, Message]:
        async with self.db.read() as s:
            return {m.id: m for m in await s.scalars(sa.select(Message).where(Message.id.in_(ids)))}

    async def settle(self, message: Message, settlements: list[Settlement]) -> int:
        """Record outcomes for entries this worker still holds; how many it still held."""
        held = 0
        async with self.db.write() as s:
            for st in settlements:
                result = await s.execute(
                    sa.update(QueueEntry)
                    .where(QueueEntry.id == st.entry_id, QueueEntry.locked_by == self.worker_id)
                    .values(
                        state=st.state,
                        next_attempt_at=st.next_attempt_at or utcnow(),
                        last_reply=st.last_reply,
                        locked_by=None,
                        locked_until=None,
                    )
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 0:  # type: ignore[attr-defined]
                    continue  # our lease expired and another worker has it now: its outcome counts
                held += 1
                for event_type, detail in st.events:
                    s.add(
                        DeliveryEvent(
                            message_id=message.id,
                            account_id=message.account_id,
                            region=message.region,
                            event_type=event_type,
                            created_at=utcnow(),
                            detail=detail,
                        )
                    )
        return held
