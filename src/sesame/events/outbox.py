"""The outbox: event records turned into publications, one per destination, claimed with leases.

Two steps, both transactions on the database, so that several processes on one PostgreSQL share the
work and a process killed at any instant loses nothing:

1. *Dispatch.* A row of the ``events`` table is written in the same transaction as the change that
   caused it (a message accepted, a delivery settled, an open). The dispatcher takes rows not yet
   dispatched, reads where their message's records go (the configuration set's event destinations,
   the sending identity's notification topics, feedback forwarding by email), writes one
   ``publications`` row for each, and marks the event dispatched, in one transaction.
2. *Publish.* Publishers claim due publications with a lease (as the delivery queue does), publish
   them, and record the outcome: published, or retried with backoff until a day has passed, then
   failed. A publication whose earlier sibling (same message, same destination) is still unpublished
   waits for it, so each destination sees one message's records in the order they happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.domain.authorization import identity_arn
from sesame.domain.event_destinations import enabled
from sesame.events.records import NOTIFICATION_TYPES
from sesame.storage.db import Database
from sesame.storage.models import (
    ConfigurationSet,
    DeliveryEvent,
    Identity,
    Message,
    Publication,
    table,
    utcnow,
)

#: Operations whose mail is the account's own; Sesame's own mail (verification emails, auto-replies,
#: forwarded feedback) raises no identity notifications and is never forwarded, lest feedback loop.
USER_OPERATIONS = frozenset(
    {"SendEmail", "SendRawEmail", "SendTemplatedEmail", "SendBulkTemplatedEmail", "SendBulkEmail"}
)
#: A publication that has failed for this long is given up (SES retries event publishing this long).
GIVE_UP_AFTER = dt.timedelta(hours=24)
#: An event destination's member → the publication's kind.
_KINDS = {
    "SnsDestination": "sns",
    "KinesisFirehoseDestination": "firehose",
    "CloudWatchDestination": "cloudwatch",
    "EventBridgeDestination": "eventbridge",
    "PinpointDestination": "pinpoint",
}


def undispatched(db: Database) -> sa.TextClause:
    """Events not yet dispatched, in the words of the partial index's own predicate, so that each
    database reads the index rather than the whole table."""
    return sa.text("events.dispatched = 0" if db.is_sqlite else "NOT events.dispatched")


@dataclass(frozen=True)
class Dispatched:
    """An event record as the dispatcher saw it, with what its message says about it: what observers
    (statistics, reputation, VDM) count, once per record, inside the dispatch transaction."""

    id: int
    message_id: str
    account_id: str
    region: str
    event_type: str
    created_at: dt.datetime
    detail: dict[str, Any]
    operation: str
    from_address: str
    configuration_set: str | None
    sent_at: dt.datetime  # when the message was accepted
    tenant: str | None = None  # the tenant it was sent as


#: ``observer(session, records)``: runs in the dispatch transaction; what it writes commits with it.
Observer = Callable[[AsyncSession, list[Dispatched]], Awaitable[None]]


@dataclass(frozen=True)
class Due:
    """A claimed publication, with its event row."""

    id: int
    event_id: int
    message_id: str
    account_id: str
    region: str
    destination: str
    kind: str
    target: dict[str, Any]
    format: str
    attempts: int
    created_at: dt.datetime
    event_type: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    publication_id: int
    error: str | None = None  # None: published
    permanent: bool = False  # no use retrying (a Pinpoint destination, a malformed target)


_PUBLICATIONS = table(Publication)


class Outbox:
    def __init__(self, db: Database, worker_id: str, observers: list[Observer] | None = None) -> None:
        self.db = db
        self.worker_id = worker_id
        self.observers = list(observers or [])

    # -- dispatch ---------------------------------------------------------------------------------

    async def dispatch(self, limit: int = 500) -> int:
        """Fan out up to ``limit`` undispatched events; how many were dispatched."""
        pending = undispatched(self.db)
        pick = (
            sa.select(
                DeliveryEvent.id,
                DeliveryEvent.message_id,
                DeliveryEvent.account_id,
                DeliveryEvent.region,
                DeliveryEvent.event_type,
                DeliveryEvent.created_at,
                DeliveryEvent.detail,
            )
            .where(pending)
            .order_by(DeliveryEvent.id)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        # A read first: an idle publisher then never takes SQLite's write lock.
        async with self.db.read() as s:
            if await s.scalar(sa.select(DeliveryEvent.id).where(pending).limit(1)) is None:
                return 0
        async with self.db.write() as s:
            events = (await s.execute(pick)).all()
            if not events:
                return 0
            ids = sorted({e.message_id for e in events})
            messages = {
                m.id: m
                for m in await s.execute(
                    sa.select(
                        Message.id,
                        Message.account_id,
                        Message.region,
                        Message.operation,
                        Message.source,
                        Message.from_address,
                        Message.configuration_set,
                        Message.created_at,
                        Message.tenant_name,
                    ).where(Message.id.in_(ids))
                )
            }
            sets = await self._sets(s, messages.values())
            identities = await self._identities(s, messages.values())
            now = utcnow()
            rows: list[dict[str, Any]] = []
            for e in events:
                m = messages.get(e.message_id)
                if m is not None:
                    rows += _fan_out(e, m, sets, identities, now)
            if rows:
                await s.execute(sa.insert(_PUBLICATIONS), rows)
            if self.observers:
                seen = [
                    Dispatched(
                        e.id,
                        e.message_id,
                        e.account_id,
                        e.region,
                        e.event_type,
                        e.created_at,
                        dict(e.detail or {}),
                        m.operation,
                        m.from_address,
                        m.configuration_set,
                        m.created_at,
                        m.tenant_name,
                    )  # fmt: skip
                    for e in events
                    if (m := messages.get(e.message_id)) is not None
                ]
                for observe in self.observers:
                    await observe(s, seen)
            await s.execute(
                sa.update(DeliveryEvent)
                .where(DeliveryEvent.id.in_([e.id for e in events]))
                .values(dispatched=True)
                .execution_options(synchronize_session=False)
            )
        return len(events)

    @staticmethod
    async def _sets(s: Any, messages: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
        keys = {(m.account_id, m.region, m.configuration_set) for m in messages if m.configuration_set}
        if not keys:
            return {}
        found = await s.execute(
            sa.select(
                ConfigurationSet.account_id,
                ConfigurationSet.region,
                ConfigurationSet.name,
                ConfigurationSet.options,
            ).where(
                sa.tuple_(ConfigurationSet.account_id, ConfigurationSet.region, ConfigurationSet.name).in_(
                    list(keys)
                )
            )
        )
        return {(a, r, n): options or {} for a, r, n, options in found}

    @staticmethod
    async def _identities(s: Any, messages: Any) -> dict[tuple[str, str, str], Any]:
        keys: set[tuple[str, str, str]] = set()
        for m in messages:
            if m.operation in USER_OPERATIONS:
                keys.add((m.account_id, m.region, m.from_address))
                keys.add((m.account_id, m.region, m.from_address.rpartition("@")[2].lower()))
        if not keys:
            return {}
        found = await s.execute(
            sa.select(
                Identity.account_id,
                Identity.region,
                Identity.identity,
                Identity.notifications,
                Identity.feedback_forwarding,
            ).where(sa.tuple_(Identity.account_id, Identity.region, Identity.identity).in_(list(keys)))
        )
        return {(r.account_id, r.region, r.identity): r for r in found}

    # -- publish ----------------------------------------------------------------------------------

    async def claim(self, limit: int, lease: float) -> list[Due]:
        now = utcnow()
        p, earlier = Publication, sa.orm.aliased(Publication)
        waiting_for_earlier = (
            sa.select(earlier.id)
            .where(
                earlier.message_id == p.message_id,
                earlier.destination == p.destination,
                earlier.id < p.id,
                earlier.state == "pending",
            )
            .exists()
        )
        pick = (
            sa.select(p.id)
            .where(
                p.state == "pending",
                p.next_attempt_at <= now,
                sa.or_(p.locked_until.is_(None), p.locked_until < now),
                ~waiting_for_earlier,
            )
            .order_by(p.next_attempt_at, p.id)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True, of=p)
        async with self.db.read() as s:
            due = sa.select(p.id).where(p.state == "pending", p.next_attempt_at <= now).limit(1)
            if await s.scalar(due) is None:
                return []
        async with self.db.write() as s:
            ids = list(await s.scalars(pick))
            if not ids:
                return []
            await s.execute(
                sa.update(p)
                .where(p.id.in_(ids))
                .values(
                    locked_by=self.worker_id,
                    locked_until=now + dt.timedelta(seconds=lease),
                    attempts=p.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            rows = await s.execute(
                sa.select(
                    p.id,
                    p.event_id,
                    p.message_id,
                    p.account_id,
                    p.region,
                    p.destination,
                    p.kind,
                    p.target,
                    p.format,
                    p.attempts,
                    p.created_at,
                    DeliveryEvent.event_type,
                    DeliveryEvent.detail,
                )
                .join(DeliveryEvent, DeliveryEvent.id == p.event_id)
                .where(p.id.in_(ids))
                .order_by(p.id)
            )
            return [Due(*r) for r in rows]

    async def settle(self, claimed: list[Due], outcomes: list[Outcome]) -> None:
        """Record what became of claimed publications (those this worker still holds)."""
        if not outcomes:
            return
        now = utcnow()
        by_id = {d.id: d for d in claimed}
        params = []
        for o in outcomes:
            due = by_id[o.publication_id]
            if o.error is None:
                state, retry_at = "published", now
            elif o.permanent or now - due.created_at >= GIVE_UP_AFTER:
                state, retry_at = "failed", now
            else:
                state, retry_at = "pending", now + backoff(due.attempts)
            params.append(
                {
                    "pid": o.publication_id,
                    "state": state,
                    "next_attempt_at": retry_at,
                    "last_error": o.error,
                    "published_at": now if o.error is None else None,
                }
            )
        p = _PUBLICATIONS
        stmt = (
            sa.update(p)
            .where(p.c.id == sa.bindparam("pid"), p.c.locked_by == self.worker_id)
            .values(
                state=sa.bindparam("state"),
                next_attempt_at=sa.bindparam("next_attempt_at"),
                last_error=sa.bindparam("last_error"),
                published_at=sa.bindparam("published_at"),
                locked_by=None,
                locked_until=None,
            )
        )
        async with self.db.write() as s:
            await s.execute(stmt, params)


def backoff(attempts: int) -> dt.timedelta:
    """5 s, 10 s, 20 s … up to 10 minutes between tries."""
    return dt.timedelta(seconds=min(600, 5 * 2 ** max(0, attempts - 1)))


def _fan_out(
    e: Any,
    m: Any,
    sets: dict[tuple[str, str, str], dict[str, Any]],
    identities: dict[tuple[str, str, str], Any],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """The publications one event makes."""
    rows: list[dict[str, Any]] = []
    domain = m.from_address.rpartition("@")[2].lower()
    address = identities.get((m.account_id, m.region, m.from_address))
    domain_row = identities.get((m.account_id, m.region, domain))
    identity = address or domain_row
    source_arn = identity_arn(m.region, m.account_id, identity.identity if identity else domain)

    def add(destination: str, kind: str, target: dict[str, Any], fmt: str) -> None:
        rows.append(
            {
                "event_id": e.id,
                "message_id": m.id,
                "account_id": m.account_id,
                "region": m.region,
                "destination": destination,
                "kind": kind,
                "target": {**target, "SourceArn": source_arn},
                "format": fmt,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        )

    published_by_set = False
    if m.configuration_set:
        options = sets.get((m.account_id, m.region, m.configuration_set), {})
        for d in enabled(options):
            kind = _KINDS[d.kind]
            if kind in ("cloudwatch", "pinpoint") and e.event_type == "DeliveryDelay":
                continue  # neither takes DeliveryDelay events (SES)
            if e.event_type in d.event_types:
                add(f"set/{m.configuration_set}/{d.name}", kind, d.target, "event")
                published_by_set = True
    if m.operation not in USER_OPERATIONS or e.event_type not in NOTIFICATION_TYPES:
        return rows
    # An address identity's settings win over its domain's (SES).
    settings: dict[str, Any] = (identity.notifications if identity is not None else None) or {}
    topic = settings.get(f"{e.event_type}Topic")
    if topic:
        headers = bool(settings.get(f"HeadersIn{e.event_type}NotificationsEnabled"))
        add(
            f"identity/{identity.identity if identity else domain}/{e.event_type}",
            "sns",
            {"TopicArn": topic, "Headers": headers},
            "notification",
        )
    if e.event_type == "Delivery":
        return rows  # delivery notifications go by SNS only
    forwarding = identity.feedback_forwarding if identity is not None else True
    # Feedback is never left with nowhere to go: with no topic and no event destination for it, SES
    # forwards it by email even when forwarding was turned off (ses-features.md §4.9).
    if forwarding or not (topic or published_by_set):
        add(f"forward/{m.source}", "email", {"Address": m.source}, "email")
    return rows
