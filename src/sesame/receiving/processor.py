"""The receiving loop: what follows a received message's 250, claimed with leases on any node.

1. A received message gets its verdicts (SPF, DKIM, DMARC, spam, virus) and the header fields SES adds
   to the stored copy; its return-path recipients' reports become Bounce and Complaint records; then
   its plan becomes one receipt per account (``Inbox.evaluated``), leased to the worker that judged it.
2. That worker runs each receipt's actions in order (``receiving/actions.py``) at once; a receipt that
   stops at a failing action keeps its place and is taken up again by the receipt loop of any node.

A step that fails is tried again later; a crash leaves a lease that expires, and another pass (on
this node or another) takes the work up again. Work may so be done twice, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sesame.receiving import verdicts
from sesame.receiving.actions import Actions
from sesame.receiving.inbox import Inbox, Received
from sesame.receiving.scanners import Scanners
from sesame.resolver import Lookup
from sesame.storage.models import InboundMessage

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds a claim is held: enough for a Lambda function's 30 s and a slow S3 put, with room.
LEASE_SECONDS = 120.0
#: Seconds between passes when nothing wakes the loop (other nodes' mail, retries coming due).
POLL_SECONDS = 1.0
#: Seconds before a message whose verdicts could not be worked out is tried again.
RETRY_SECONDS = 30.0
BATCH = 200
#: Seconds between passes that delete received mail past its retention.
FORGET_SECONDS = 300.0
#: Messages judged, or receipts run, at once: they mostly wait on DNS and the network.
CONCURRENCY = 32

#: ``judge(message, scan) -> (the receipt's verdict members, the header fields SES adds)``
Judging = Callable[[Received, bool], Awaitable[tuple[dict[str, object], bytes]]]
#: ``feedback(recipient, raw) -> what it was`` for mail to a return-path address.
FeedbackSink = Callable[[str, bytes], Awaitable[str]]


class Judge:
    """A received message's verdicts and the header fields SES puts in front of its stored copy."""

    def __init__(self, lookup: Lookup, scanners: Scanners, hostname: str) -> None:
        self.lookup = lookup
        self.scanners = scanners
        self.hostname = hostname

    async def __call__(self, message: Received, scan: bool) -> tuple[dict[str, object], bytes]:
        v = await verdicts.evaluate(
            self.lookup,
            client_ip=message.peer,
            helo=message.helo,
            mail_from=message.mail_from,
            message=message.body,
            scan=self.scanners if scan else None,
        )
        added = verdicts.received_headers(
            v,
            hostname=self.hostname,
            message_id=message.id,
            recipient=message.recipients[0] if len(message.recipients) == 1 else None,
            authserv_id=self.hostname,
            when=message.received_at,
        )
        return v.receipt(), added


class Processor:
    def __init__(
        self,
        inbox: Inbox,
        judge: Judging,
        feedback: FeedbackSink,
        actions: Actions,
        *,
        retention: dt.timedelta | None = None,
    ) -> None:
        self.inbox = inbox
        self.retention = retention  # None: keep received mail (dev mode's inbox)
        self.judge = judge
        self.feedback = feedback
        self.actions = actions
        self._received = asyncio.Event()  # set by the MX after each commit
        self._due = asyncio.Event()  # set when messages became receipts

    def wake(self) -> None:
        self._received.set()

    async def run(self) -> None:
        """Two loops, so that messages are judged while earlier ones' actions run."""
        await asyncio.gather(
            self._loop(self.evaluate_once, self._received), self._loop(self.act_once, self._due)
        )

    @staticmethod
    async def _loop(step: Callable[[], Awaitable[bool]], event: asyncio.Event) -> None:
        while True:
            try:
                busy = await step()
            except Exception:
                log.exception("a receiving pass failed")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), POLL_SECONDS)
                event.clear()

    async def evaluate_once(self) -> bool:
        """Judge claimed messages side by side: their verdicts mostly wait on DNS."""
        received = await self.inbox.claim_received(BATCH, LEASE_SECONDS)
        await _side_by_side(self._evaluate, received)
        if received:
            self._due.set()
        return bool(received)

    async def act_once(self) -> bool:
        due = await self.inbox.claim_receipts(BATCH, LEASE_SECONDS)
        await _side_by_side(self.actions.run, due)
        return bool(due)

    async def _evaluate(self, message: Received) -> None:
        scan = any(r["rule"].get("ScanEnabled") for entry in message.plan for r in entry["rules"])
        try:
            verdicts, added = await self.judge(message, scan)
            for recipient in message.feedback:
                outcome = await self.feedback(recipient, message.body)
                log.info("report from %s to %s: %s", message.mail_from or "<>", recipient, outcome)
            due = await self.inbox.evaluated(message.id, verdicts, added, LEASE_SECONDS)
        except Exception:
            log.exception("working out received message %s failed; trying again later", message.id)
            await self.inbox.retry_received(message.id, RETRY_SECONDS)
            return
        # The receipts are this worker's: run them now, with the message in hand, rather than read it
        # back through the receipt loop.
        judged = InboundMessage(
            id=message.id,
            received_at=message.received_at,
            peer=message.peer,
            helo=message.helo,
            tls=message.tls,
            mail_from=message.mail_from,
            recipients=message.recipients,
            verdicts=verdicts,
            added_headers=added,
            state="processed",
            body=message.body,
        )
        for receipt in due:
            await self.actions.run(receipt, judged)


async def _side_by_side(work: Callable[[T], Awaitable[None]], items: list[T]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: T) -> None:
        async with gate:
            await work(item)

    await asyncio.gather(*(one(i) for i in items))
