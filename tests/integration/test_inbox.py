"""Received mail in the database, on both databases: claims with leases, judged messages becoming
receipts, and old mail forgotten only once its work is done."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from sesame import config
from sesame.receiving.inbox import Arrival, Inbox
from sesame.runtime import Sesame
from sesame.storage.models import InboundMessage, Receipt

PLAN = [
    {
        "account_id": "123456789012",
        "region": "us-east-1",
        "rule_set": "s",
        "rules": [{"rule": {}, "recipients": []}],
    }
]


def make(database: str, tmp_path: Path) -> Sesame:
    settings = config.load("serve", data_dir=tmp_path, database=database, env={})
    sesame = Sesame(settings)
    sesame.migrate()
    return sesame


def arrival(**kw: object) -> Arrival:
    fields: dict[str, object] = {
        "peer": "192.0.2.1",
        "helo": "mx.example",
        "tls": False,
        "mail_from": "a@example.org",
        "recipients": ["b@example.com"],
        "body": b"Subject: x\r\n\r\nx\r\n",
        "plan": PLAN,
    }
    return Arrival(**{**fields, **kw})  # type: ignore[arg-type]


def test_a_claimed_message_is_judged_once_and_becomes_receipts(database: str, tmp_path: Path) -> None:
    sesame = make(database, tmp_path)

    async def go() -> None:
        one, other = Inbox(sesame.db), Inbox(sesame.db)  # two nodes
        message_id = await one.accept(arrival())
        (claimed,) = await one.claim_received(10, 60)
        assert claimed.id == message_id and claimed.plan == PLAN
        assert await other.claim_received(10, 60) == []  # leased to the first
        # Not its lease: nothing is recorded, no receipt made.
        assert await other.evaluated(message_id, {"spfVerdict": {"status": "PASS"}}, b"X: y\r\n", 60) == []
        assert await other.claim_receipts(10, 60) == []
        (due,) = await one.evaluated(message_id, {"spfVerdict": {"status": "PASS"}}, b"X: y\r\n", 60)
        assert (due.message_id, due.account_id, due.rule, due.action) == (message_id, "123456789012", 0, 0)
        assert await other.claim_receipts(10, 60) == []  # made leased to the worker that judged it
        await one.advance(due, state="pending", rule=1, next_attempt_at=dt.datetime.now(dt.UTC))
        (again,) = await other.claim_receipts(10, 60)  # a receipt let go is any worker's
        assert (again.id, again.rule) == (due.id, 1)
        await other.advance(again, state="done", rule=1)
        stored = await one.message(message_id)
        assert stored is not None and stored.state == "processed" and stored.added_headers == b"X: y\r\n"

    async def run() -> None:
        try:
            await go()
        finally:  # in the loop that opened the connections
            await sesame.close()

    asyncio.run(run())


def test_old_mail_is_forgotten_once_its_work_is_done(database: str, tmp_path: Path) -> None:
    sesame = make(database, tmp_path)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=5)

    async def go() -> None:
        inbox = Inbox(sesame.db)
        done = await inbox.accept(arrival(received_at=old))
        pending = await inbox.accept(arrival(received_at=old))
        unjudged = await inbox.accept(arrival(received_at=old))
        recent = await inbox.accept(arrival())
        for message_id in (done, pending, recent):
            async with sesame.db.write() as s:
                await s.execute(
                    sa.update(InboundMessage)
                    .where(InboundMessage.id == message_id)
                    .values(locked_by=inbox.worker_id)
                )
            for due in await inbox.evaluated(message_id, {}, b"", 60):
                await inbox.advance(due, state="pending" if message_id == pending else "done")
        assert await inbox.forget(dt.timedelta(days=3)) == 1
        async with sesame.db.read() as s:
            left = set(await s.scalars(sa.select(InboundMessage.id)))
            receipts = set(await s.scalars(sa.select(Receipt.message_id)))
        assert left == {pending, unjudged, recent}
        assert done not in receipts

    async def run() -> None:
        try:
            await go()
        finally:  # in the loop that opened the connections
            await sesame.close()

    asyncio.run(run())
