"""The delivery queue's claims on both databases: what a worker that dies leaves behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sesame import config
from sesame.mta.queue import DeliveryQueue
from sesame.runtime import Sesame
from sesame.storage.models import Message, QueueEntry, utcnow


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
        first = await DeliveryQueue(sesame.db, "worker-that-dies").claim(10, lease=0.05)
        # While the first worker holds it, nobody else takes it.
        held = await DeliveryQueue(sesame.db, "other").claim(10, lease=60)
        assert held == []
        await asyncio.sleep(0.2)  # the first worker died: its lease runs out
        second = await DeliveryQueue(sesame.db, "next-worker").claim(10, lease=60)
        await sesame.db.close()
        return [c.state for c in first], [c.state for c in second]

    first, second = asyncio.run(go())
    assert first == ["suppressed"]
    assert second == ["suppressed"]  # was "delivering": the next worker sent it
