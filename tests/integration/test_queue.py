"""The delivery queue's claims on both databases: what a worker that dies leaves behind."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sesame import config
from sesame.events import details
from sesame.mta import bounce
from sesame.mta.outcomes import Bounced, Deferred, Delivered
from sesame.mta.queue import DeliveryQueue
from sesame.mta.reply import SmtpReply
from sesame.runtime import Sesame
from sesame.storage.models import DeliveryEvent, Message, QueueEntry, utcnow


def test_a_suppressed_entry_stays_suppressed_when_its_worker_dies(database: str, tmp_path: Path) -> None:
    """A recipient on the suppression list is bounced, never sent to, even when the worker that claimed
    its entry died before settling it: the next worker must still see that it was suppressed."""
    settings = config.load("serve", data_dir=tmp_path, database=database, env={})
    sesame = Sesame(settings)
    sesame.migrate()

    async def go() -> tuple[list[str], list[str]]:
        await sesame.accounts.ensure("123456789012")
        async with sesame.db.write() as s:
            s.add(
                Message(id="m1", account_id="123456789012", region="us-east-1", operation="SendEmail",
                        source="a@example.com", from_address="a@example.com", body=b"Subject: x\r\n\r\nx\r\n")
            )  # fmt: skip
            await s.flush()
            s.add(QueueEntry(message_id="m1", recipient="gone@example.org", domain="example.org",
                             state="suppressed", created_at=utcnow()))  # fmt: skip
        first = await DeliveryQueue(sesame.db, "worker-that-dies").claim(10, lease=1.0)
        # While the first worker holds it, nobody else takes it.
        held = await DeliveryQueue(sesame.db, "other").claim(10, lease=60)
        assert held == []
        await asyncio.sleep(1.2)  # the first worker died: its lease runs out (1 s: a loaded CI machine)
        second = await DeliveryQueue(sesame.db, "next-worker").claim(10, lease=60)
        await sesame.db.close()
        return [c.state for c in first], [c.state for c in second]

    first, second = asyncio.run(go())
    assert first == ["suppressed"]
    assert second == ["suppressed"]  # was "delivering": the next worker sent it


def test_outcomes_settle_their_entries_and_write_their_events(database: str, tmp_path: Path) -> None:
    """Delivered, Deferred and Bounced each leave their entry in its state with its reply, and their
    records in the events table as event_type + the per-type object; an entry the worker no longer holds
    is left alone."""
    settings = config.load("serve", data_dir=tmp_path, database=database, env={})
    sesame = Sesame(settings)
    sesame.migrate()
    recipients = ["ok@example.org", "later@example.org", "gone@example.org", "taken@example.org"]
    retry_at = utcnow().replace(microsecond=0) + dt.timedelta(minutes=5)

    async def go() -> tuple[dict[str, tuple[str, str | None, dt.datetime]], list[tuple[str, dict[str, Any]]]]:
        await sesame.accounts.ensure("123456789012")
        async with sesame.db.write() as s:
            s.add(
                Message(id="m2", account_id="123456789012", region="us-east-1", operation="SendEmail",
                        source="a@example.com", from_address="a@example.com", body=b"Subject: x\r\n\r\nx\r\n")
            )  # fmt: skip
            await s.flush()
            for rcpt in recipients:
                s.add(QueueEntry(message_id="m2", recipient=rcpt, domain="example.org", state="queued",
                                 created_at=utcnow()))  # fmt: skip
        queue = DeliveryQueue(sesame.db, "worker")
        claimed = {c.recipient: c for c in await queue.claim(10, lease=60)}
        message = (await queue.messages(["m2"]))["m2"]
        at = utcnow()
        accepted = SmtpReply(250, None, "2.0.0 Ok: queued as 4Xq")
        full = bounce.classify_reply(SmtpReply(452, None, "4.2.2 Mailbox full"))
        unknown = bounce.classify_reply(SmtpReply(550, "5.1.1", "user unknown"))
        delivered = details.delivery(
            ["ok@example.org"],
            timestamp=at,
            sent_at=message.created_at,
            smtp_response=accepted.line(),
            reporting_mta="mx.test",
            remote_mta_ip="192.0.2.1",
        )
        delayed = details.delivery_delay(
            "MailboxFull",
            [details.DelayedRecipient("later@example.org", full.status, full.diagnostic_code)],
            timestamp=at,
            expiration_time=at + dt.timedelta(hours=1),
        )
        bounced = details.bounce(
            "Permanent",
            "General",
            [bounce.bounced_recipient(unknown, "gone@example.org")],
            timestamp=at,
            feedback_id=details.feedback_id("m2"),
            reporting_mta="dns; mx.test",
        )
        # Another worker took this one over (our lease ran out): our outcome for it must not count.
        async with sesame.db.write() as s:
            taken = await s.get(QueueEntry, claimed["taken@example.org"].id)
            assert taken is not None
            taken.locked_by = "other-worker"
        held = await queue.settle(
            message,
            [
                Delivered(claimed["ok@example.org"].id, accepted, (delivered,)),
                Deferred(claimed["later@example.org"].id, full, retry_at, (delayed,)),
                Bounced(claimed["gone@example.org"].id, unknown, (bounced,)),
                Bounced(claimed["taken@example.org"].id, unknown, (bounced,)),
            ],
        )
        assert held == 3
        async with sesame.db.read() as s:
            entries = {
                e.recipient: (e.state, e.last_reply, e.next_attempt_at)
                for e in await s.scalars(sa.select(QueueEntry).where(QueueEntry.message_id == "m2"))
            }
            events = [
                (r.event_type, r.detail)
                for r in await s.scalars(sa.select(DeliveryEvent).order_by(DeliveryEvent.event_type))
            ]
        await sesame.db.close()
        return entries, events

    entries, events = asyncio.run(go())
    assert entries["ok@example.org"][:2] == ("delivered", "250 2.0.0 Ok: queued as 4Xq")
    assert entries["later@example.org"] == ("deferred", "smtp; 452 4.2.2 Mailbox full", retry_at)
    assert entries["gone@example.org"][:2] == ("bounced", "smtp; 550 5.1.1 user unknown")
    assert entries["taken@example.org"][0] == "delivering"
    assert [t for t, _ in events] == ["Bounce", "Delivery", "DeliveryDelay"]
    bounce_detail, delivery_detail, delay_detail = (d for _, d in events)
    assert bounce_detail["bouncedRecipients"] == [
        {"emailAddress": "gone@example.org", "action": "failed", "status": "5.1.1",
         "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
    ]  # fmt: skip
    assert delivery_detail["smtpResponse"] == "250 2.0.0 Ok: queued as 4Xq"
    assert delay_detail["delayedRecipients"][0]["status"] == "4.2.2"
