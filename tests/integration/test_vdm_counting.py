"""VDM counts each record once with two dispatchers sharing one database (two processes' outboxes on
PostgreSQL, taking turns on SQLite), and a message's first open or click only, wherever its records
fall among the dispatchers' batches."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sesame import config
from sesame.domain.vdm import Query, Vdm
from sesame.events.outbox import Outbox
from sesame.resolver import Lookup
from sesame.runtime import Sesame
from sesame.storage.db import Database
from sesame.storage.models import Account, DeliveryEvent, Message, QueueEntry, table, utcnow

ACCOUNT, REGION = "111122223333", "us-east-1"
MESSAGES = 60


def _rows(now: dt.datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    messages, queue, events = [], [], []

    def event(message_id: str, event_type: str, detail: dict[str, Any]) -> None:
        row = {"message_id": message_id, "account_id": ACCOUNT, "region": REGION, "event_type": event_type}
        events.append({**row, "created_at": now, "detail": detail, "dispatched": False})

    for i in range(MESSAGES + 1):
        message_id = f"m{i:03d}"
        recipients = [f"r{i}@gmail.com"] if i < MESSAGES else ["a@gmail.com", "b@gmail.com"]
        messages.append({"id": message_id, "account_id": ACCOUNT, "region": REGION, "created_at": now,
                         "operation": "SendEmail", "source": "me@from.test", "from_address": "me@from.test",
                         "tags": {}, "summary": {}, "status": "queued", "size": 1, "body": b"x"})  # fmt: skip
        queue += [{"message_id": message_id, "recipient": r, "domain": "gmail.com", "state": "delivered",
                   "next_attempt_at": now, "attempts": 1, "created_at": now} for r in recipients]  # fmt: skip
        event(message_id, "Send", {})
        event(message_id, "Delivery", {"recipients": recipients})
    # Opens and clicks of the first ten messages, interleaved, three opens and two clicks each.
    for _ in range(3):
        for i in range(10):
            event(f"m{i:03d}", "Open", {"ipAddress": "192.0.2.1", "userAgent": "x"})
            if _ < 2:
                event(f"m{i:03d}", "Click", {"ipAddress": "192.0.2.1", "link": "https://example.com/"})
    event(f"m{MESSAGES:03d}", "Open", {"ipAddress": "192.0.2.1"})  # two recipients: not counted
    return messages, queue, events


def test_two_dispatchers_count_each_record_once(database: str, tmp_path: Path) -> None:
    settings = config.load("serve", data_dir=tmp_path, database=database, env={})
    sesame = Sesame(settings)
    sesame.migrate()

    async def go() -> dict[str, int]:
        now = utcnow()
        messages, queue, events = _rows(now)
        async with sesame.db.write() as s:
            await s.execute(sa.insert(table(Account)), [{"id": ACCOUNT, "name": "a", "created_at": now}])
            await s.execute(sa.insert(table(Message)), messages)
            await s.execute(sa.insert(table(QueueEntry)), queue)
            await s.execute(sa.insert(table(DeliveryEvent)), events)
        other_db = Database(settings.database_url)  # a second process's pool
        first = Outbox(sesame.db, "one", [sesame.vdm.observe])
        second = Outbox(other_db, "two", [Vdm(other_db, Lookup(settings.dns)).observe])

        async def drain(outbox: Outbox) -> int:
            n = 0
            while k := await outbox.dispatch(limit=7):  # small batches: a message's opens span several
                n += k
            return n

        try:
            dispatched = await asyncio.gather(drain(first), drain(second))
        finally:
            await other_db.close()
        assert sum(dispatched) == len(events)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        out = {}
        for metric in ("SEND", "DELIVERY", "OPEN", "CLICK"):
            values = await sesame.vdm.metric(
                ACCOUNT, REGION, Query("q", metric, {"ISP": "Gmail"}, today, today)
            )
            out[metric] = sum(n for _, n in values)
        await sesame.close()
        return out

    assert asyncio.run(go()) == {"SEND": MESSAGES, "DELIVERY": MESSAGES, "OPEN": 10, "CLICK": 10}
