"""The SNS delivery queue (``sns_deliveries``): claiming due deliveries with leases, and settling them.

Publish and Subscribe write one delivery per (message, subscription) in the transaction that answers
the caller. As in the mail queue (mta/queue.py), a claim marks rows ``delivering`` with
``locked_by``/``locked_until``: on PostgreSQL it skips rows another node holds (``FOR UPDATE SKIP
LOCKED``), on SQLite the write lock serializes claims; a lease that expired (its node died) makes the
row due again, so a delivery is made at least once, and a node settles only rows it still holds.
Outcomes are written through the group-commit writer, with accepted mail and other outcomes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.storage.db import Database
from sesame.storage.models import SnsDelivery, SnsMessage, SnsSubscription, SnsTopic, table, utcnow
from sesame.storage.writer import Work

#: Delivered rows and their messages are kept this long (for inspection), then pruned.
KEEP_DELIVERED = dt.timedelta(days=1)


@dataclass(frozen=True)
class Job:
    """One claimed delivery with what it needs of its subscription, topic and message."""

    id: int
    kind: str
    attempts: int
    message_id: str
    created_at: dt.datetime
    subscription_arn: str
    protocol: str
    endpoint: str
    status: str  # the subscription's: pending | confirmed | deleted
    token: str
    subscription_attributes: dict[str, Any]
    topic_arn: str
    account_id: str
    region: str
    topic_attributes: dict[str, Any]
    subject: str | None
    message: str | None
    structure: str | None
    message_attributes: dict[str, Any] | None
    published_at: dt.datetime | None


@dataclass(frozen=True)
class Outcome:
    id: int
    state: str  # delivered | pending (a retry is due at next_attempt_at) | failed
    next_attempt_at: dt.datetime | None = None
    error: str | None = None


class Outbox:
    def __init__(self, db: Database, worker_id: str, lease_seconds: float) -> None:
        self.db = db
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self._settle = Work("SNS delivery outcomes", self._write_outcomes)

    # -- claiming ------------------------------------------------------------------------------------

    async def claim(self, limit: int) -> list[Job]:
        now = utcnow()
        due = sa.or_(
            sa.and_(SnsDelivery.state == "pending", SnsDelivery.next_attempt_at <= now),
            sa.and_(SnsDelivery.state == "delivering", SnsDelivery.locked_until < now),  # an expired lease
        )
        pick = sa.select(SnsDelivery.id).where(due).order_by(SnsDelivery.next_attempt_at).limit(limit)
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        async with self.db.write() as s:
            ids = list(await s.scalars(pick))
            if not ids:
                return []
            await s.execute(
                sa.update(SnsDelivery)
                .where(SnsDelivery.id.in_(ids))
                .values(
                    state="delivering",
                    locked_by=self.worker_id,
                    locked_until=now + dt.timedelta(seconds=self.lease_seconds),
                    attempts=SnsDelivery.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            return await self._jobs(s, ids)

    async def _jobs(self, s: AsyncSession, ids: list[int]) -> list[Job]:
        d, sub, topic, msg = SnsDelivery, SnsSubscription, SnsTopic, SnsMessage
        rows = await s.execute(
            sa.select(
                d.id,
                d.kind,
                d.attempts,
                d.message_id,
                d.created_at,
                sub.arn,
                sub.protocol,
                sub.endpoint,
                sub.status,
                sub.token,
                sub.attributes,
                topic.arn,
                topic.account_id,
                topic.region,
                topic.attributes,
                msg.subject,
                msg.message,
                msg.structure,
                msg.attributes,
                msg.created_at,
            )
            .join(sub, sub.arn == d.subscription_arn)
            .join(topic, topic.arn == sub.topic_arn)
            .outerjoin(msg, msg.id == d.message_id)
            .where(d.id.in_(ids))
        )
        return [
            Job(
                id=r[0],
                kind=r[1],
                attempts=r[2],
                message_id=r[3],
                created_at=r[4],
                subscription_arn=r[5],
                protocol=r[6],
                endpoint=r[7],
                status=r[8],
                token=r[9],
                subscription_attributes=r[10] or {},
                topic_arn=r[11],
                account_id=r[12],
                region=r[13],
                topic_attributes=r[14] or {},
                subject=r[15],
                message=r[16],
                structure=r[17],
                message_attributes=r[18],
                published_at=r[19],
            )
            for r in rows
        ]

    # -- settling ------------------------------------------------------------------------------------

    async def settle(self, outcome: Outcome) -> None:
        """Record ``outcome`` once the writer has committed it (if this worker still holds the row)."""
        await self.db.writer.submit(self._settle, outcome)

    async def _write_outcomes(self, s: AsyncSession, batch: list[Outcome]) -> list[None]:
        """Inside the group commit: settle the rows this worker still holds (a row whose lease ran out
        and went to another worker is that worker's to settle)."""
        t = table(SnsDelivery)
        await s.execute(
            sa.update(t)
            .where(t.c.id == sa.bindparam("row_id"), t.c.locked_by == self.worker_id)
            .values(
                state=sa.bindparam("new_state"),
                next_attempt_at=sa.bindparam("at"),
                last_error=sa.bindparam("error"),
                locked_by=None,
                locked_until=None,
            ),
            [
                {"row_id": o.id, "new_state": o.state, "at": o.next_attempt_at or utcnow(), "error": o.error}
                for o in batch
            ],
        )
        return [None] * len(batch)

    async def prune(self) -> None:
        """Forget deliveries made more than a day ago, messages with no delivery left, and unsubscribed
        subscriptions once their SubscribeURL has expired."""
        now = utcnow()
        cutoff = now - KEEP_DELIVERED
        async with self.db.write() as s:
            await s.execute(
                sa.delete(SnsSubscription).where(
                    SnsSubscription.status == "deleted", SnsSubscription.token_expires_at < now
                )
            )
            await s.execute(
                sa.delete(SnsDelivery).where(
                    SnsDelivery.state == "delivered", SnsDelivery.created_at < cutoff
                )
            )
            await s.execute(
                sa.delete(SnsMessage).where(
                    SnsMessage.created_at < cutoff,
                    ~sa.exists().where(SnsDelivery.message_id == SnsMessage.id),
                )
            )
