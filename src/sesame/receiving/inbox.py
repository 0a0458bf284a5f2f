"""Received mail in the database: what the MX took, and the receipts that run rule actions over it.

The MX hands a message here before its final 250; the write goes through the process's group-commit
writer, so a burst of inbound mail costs few commits. The work that follows (verdicts, feedback,
receipts) is claimed with leases, on one node or many, and picked up again after a crash.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.nodes import lease_owner
from sesame.storage.db import Database
from sesame.storage.models import InboundMessage, Receipt, table, utcnow
from sesame.storage.writer import Work, insert


def new_message_id() -> str:
    """A receiving message id in SES's shape: 28 lower-case letters and digits (also the S3 key)."""
    return base64.b32encode(os.urandom(20)).decode().lower()[:28]


#: A judged message: its id, its receipt verdict members, the header fields SES adds, the lease its
#: receipts are to be held for.
Judged = tuple[str, dict[str, Any], bytes, float]


@dataclass(slots=True)
class Arrival:
    """A message as the MX took it, with the rules that matched its recipients at that moment."""

    peer: str
    helo: str
    tls: bool
    mail_from: str
    recipients: list[str]
    body: bytes
    plan: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)
    captured: bool = False  # dev mode, nothing to run: kept for /_sesame/inbound only
    id: str = field(default_factory=new_message_id)
    received_at: dt.datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Received:
    """A claimed message whose verdicts and feedback are to be worked out."""

    id: str
    received_at: dt.datetime
    peer: str
    helo: str
    tls: bool
    mail_from: str
    recipients: list[str]
    plan: list[dict[str, Any]]
    feedback: list[str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Due:
    """A claimed receipt: one account's rules over one message, from its next action on."""

    id: int
    message_id: str
    account_id: str
    region: str
    rule_set: str
    rules: list[dict[str, Any]]
    rule: int
    action: int
    headers: list[list[str]]
    attempts: int
    created_at: dt.datetime
    log: list[dict[str, Any]]


async def _write_arrivals(s: AsyncSession, arrivals: list[Arrival]) -> list[str]:
    await insert(
        s,
        InboundMessage,
        [
            {
                "id": a.id,
                "received_at": a.received_at,
                "peer": a.peer,
                "helo": a.helo[:255],
                "tls": a.tls,
                "mail_from": a.mail_from,
                "recipients": a.recipients,
                "plan": a.plan,
                "feedback": a.feedback,
                "verdicts": None,
                "added_headers": b"",
                "state": "captured" if a.captured else "received",
                "attempts": 0,
                "next_attempt_at": a.received_at,
                "locked_by": None,
                "locked_until": None,
                "size": len(a.body),
                "body": a.body,
            }
            for a in arrivals
        ],
    )
    return [a.id for a in arrivals]


_INBOUND, _RECEIPTS = table(InboundMessage), table(Receipt)
#: The hot writes, as Core statements compiled once and run for a whole batch (executemany).
_JUDGED = (
    sa.update(_INBOUND)
    .where(_INBOUND.c.id == sa.bindparam("mid"))
    .values(state="processed", locked_by=None, locked_until=None)
)
_NEW_RECEIPTS = sa.insert(_RECEIPTS).returning(_RECEIPTS.c.id, sort_by_parameter_order=True)
_ADVANCE = (
    sa.update(_RECEIPTS)
    .where(_RECEIPTS.c.id == sa.bindparam("rid"), _RECEIPTS.c.locked_by == sa.bindparam("worker"))
    .values(locked_by=None, locked_until=None)
)


class Inbox:
    def __init__(self, db: Database, node: str | None = None) -> None:
        self.db = db
        self.worker_id = lease_owner(node or f"{socket.gethostname()}:{os.getpid()}", "receiving")
        self._accept: Work[Arrival, str] = Work("received mail", _write_arrivals)
        self._evaluated: Work[Judged, list[Due]] = Work("judged mail", self._write_evaluated)
        self._advanced: Work[dict[str, Any], None] = Work("receipt progress", self._write_advanced)

    async def accept(self, arrival: Arrival) -> str:
        """Commit a received message (with the next group commit); its id once it is durable."""
        return await self.db.writer.submit(self._accept, arrival)

    # -- verdicts and feedback --------------------------------------------------------------------

    async def claim_received(self, limit: int, lease: float) -> list[Received]:
        m = InboundMessage
        rows = await self._claim(m, limit, lease, state="received")
        if not rows:
            return []
        async with self.db.read() as s:
            found = await s.execute(
                sa.select(
                    m.id, m.received_at, m.peer, m.helo, m.tls, m.mail_from, m.recipients, m.plan,
                    m.feedback, m.body,
                ).where(m.id.in_(rows))
            )  # fmt: skip
            return [Received(*r) for r in found]

    async def evaluated(
        self, message_id: str, verdicts: dict[str, Any], added_headers: bytes, lease: float
    ) -> list[Due]:
        """Record a message's verdicts and turn its plan into receipts, in one transaction (the next
        group commit's). The receipts come back leased to this worker, which runs them at once; one
        that fails is left to the receipt loop of any node, like every receipt whose lease runs out."""
        return await self.db.writer.submit(self._evaluated, (message_id, verdicts, added_headers, lease))

    async def _write_evaluated(self, s: AsyncSession, items: list[Judged]) -> list[list[Due]]:
        m, now = InboundMessage, utcnow()
        held = sa.select(m.id, m.plan).where(m.id.in_([i[0] for i in items]), m.locked_by == self.worker_id)
        plans: dict[str, list[dict[str, Any]]] = {row.id: row.plan for row in await s.execute(held)}
        mine = [i for i in items if i[0] in plans]  # the others' leases were lost: other workers do them
        if not mine:
            return [[] for _ in items]
        await s.execute(
            _JUDGED,
            [{"mid": mid, "verdicts": verdicts, "added_headers": added} for mid, verdicts, added, _ in mine],
        )
        rows = [
            {
                "message_id": mid,
                "account_id": entry["account_id"],
                "region": entry["region"],
                "rule_set": entry["rule_set"],
                "rules": entry["rules"],
                "rule": 0,
                "action": 0,
                "headers": [],
                "state": "pending",
                "attempts": 1,
                "next_attempt_at": now,
                "locked_by": self.worker_id,
                "locked_until": now + dt.timedelta(seconds=lease),
                "last_error": None,
                "log": [],
                "created_at": now,
            }
            for mid, _, _, lease in mine
            for entry in plans[mid]
        ]
        made: dict[str, list[Due]] = {}
        if rows:
            ids = (await s.execute(_NEW_RECEIPTS, rows)).scalars()
            for rid, x in zip(ids, rows, strict=True):
                due = Due(rid, x["message_id"], x["account_id"], x["region"], x["rule_set"], x["rules"],
                          0, 0, [], 1, now, [])  # fmt: skip
                made.setdefault(x["message_id"], []).append(due)
        return [made.get(i[0], []) for i in items]

    async def retry_received(self, message_id: str, delay: float) -> None:
        m = InboundMessage
        async with self.db.write() as s:
            await s.execute(
                sa.update(m)
                .where(m.id == message_id, m.locked_by == self.worker_id)
                .values(
                    locked_by=None,
                    locked_until=None,
                    next_attempt_at=utcnow() + dt.timedelta(seconds=delay),
                )
            )

    # -- receipts ---------------------------------------------------------------------------------

    async def claim_receipts(self, limit: int, lease: float) -> list[Due]:
        r = Receipt
        ids = await self._claim(r, limit, lease, state="pending")
        if not ids:
            return []
        async with self.db.read() as s:
            found = await s.execute(
                sa.select(
                    r.id, r.message_id, r.account_id, r.region, r.rule_set, r.rules, r.rule, r.action,
                    r.headers, r.attempts, r.created_at, r.log,
                ).where(r.id.in_(ids)).order_by(r.id)
            )  # fmt: skip
            return [Due(*row) for row in found]

    async def message(self, message_id: str) -> InboundMessage | None:
        async with self.db.read() as s:
            return await s.get(InboundMessage, message_id)

    async def advance(
        self,
        due: Due,
        *,
        state: str,
        rule: int | None = None,
        action: int | None = None,
        headers: list[list[str]] | None = None,
        log: list[dict[str, Any]] | None = None,
        last_error: str | None = None,
        next_attempt_at: dt.datetime | None = None,
    ) -> None:
        """Save a receipt's progress (its state, next rule and action, headers, log) and let it go,
        with the next group commit. What is not given stays as the claim found it."""
        values = {
            "rid": due.id,
            "state": state,
            "rule": due.rule if rule is None else rule,
            "action": due.action if action is None else action,
            "headers": due.headers if headers is None else headers,
            "log": due.log if log is None else log,
            "last_error": last_error,
            "next_attempt_at": next_attempt_at or utcnow(),
        }
        await self.db.writer.submit(self._advanced, values)

    async def _write_advanced(self, s: AsyncSession, items: list[dict[str, Any]]) -> list[None]:
        await s.execute(_ADVANCE, [{**v, "worker": self.worker_id} for v in items])
        return [None] * len(items)

    # -- reading, for /_sesame/inbound and tests ---------------------------------------------------

    async def recent(self, limit: int = 100) -> Sequence[InboundMessage]:
        async with self.db.read() as s:
            found = await s.scalars(
                sa.select(InboundMessage).order_by(InboundMessage.received_at.desc()).limit(limit)
            )
            return list(found)

    async def receipts(self, message_id: str) -> Sequence[Receipt]:
        async with self.db.read() as s:
            found = await s.scalars(
                sa.select(Receipt).where(Receipt.message_id == message_id).order_by(Receipt.id)
            )
            return list(found)

    async def forget(self, older_than: dt.timedelta) -> int:
        """Delete received messages (and their receipts) older than ``older_than`` whose work is done:
        nothing left to judge and no receipt still pending."""
        m, r = InboundMessage, Receipt
        pending = sa.select(r.id).where(r.message_id == m.id, r.state == "pending").exists()
        old = sa.and_(m.received_at < utcnow() - older_than, m.state != "received", ~pending)
        async with self.db.write() as s:
            result = await s.execute(sa.delete(m).where(old))
            return int(getattr(result, "rowcount", 0) or 0)

    async def clear(self) -> int:
        async with self.db.write() as s:
            result = await s.execute(sa.delete(InboundMessage))
            return int(getattr(result, "rowcount", 0) or 0)

    # -- leases -----------------------------------------------------------------------------------

    async def _claim(self, model: Any, limit: int, lease: float, *, state: str) -> list[Any]:
        """Lease up to ``limit`` due rows of ``model`` in ``state``: ``SKIP LOCKED`` on PostgreSQL, the
        database lock on SQLite (writers take it up front). An expired lease is due again."""
        now = utcnow()
        due = sa.and_(
            model.state == state,
            model.next_attempt_at <= now,
            sa.or_(model.locked_until.is_(None), model.locked_until < now),
        )
        async with self.db.read() as s:  # most passes find nothing: no write lock for them
            if await s.scalar(sa.select(model.id).where(due).limit(1)) is None:
                return []
        pick = sa.select(model.id).where(due).order_by(model.next_attempt_at).limit(limit)
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        async with self.db.write() as s:
            ids = list(await s.scalars(pick))
            if ids:
                await s.execute(
                    sa.update(model)
                    .where(model.id.in_(ids))
                    .values(
                        locked_by=self.worker_id,
                        locked_until=now + dt.timedelta(seconds=lease),
                        attempts=model.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
            return ids
