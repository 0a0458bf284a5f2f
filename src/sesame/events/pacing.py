"""Delivery first: while this process is delivering mail, its event publishing gives way.

Publishing a record (building its JSON, signing an SNS notification, posting it, writing its outcome)
costs about as much CPU as delivering a message, and on one process both share one core and one GIL.
Records wait durably in the outbox, and SES itself publishes them seconds after the fact. So while
deliveries are under way, a publisher keeps to a share of the time (``events.delivery_share``): after
a batch that took t seconds it waits t × (1 - share) / share, never longer than
``events.delivery_first_max_wait``, before the next. When delivery is idle it publishes at full speed,
and catches up. Under a load that keeps delivery busy for good, publishing still progresses at its
share, and its backlog waits in the outbox; a deployment that needs more runs publishing on processes
or nodes of its own, whose delivery this does not see.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

STEP = 0.05  # seconds between looks at whether delivery is still busy
#: While delivery is busy, batches are this fraction of their usual size, so that the publisher's share
#: is spread in short slices rather than taken in one long batch at the start of a burst.
SMALL = 0.1


class DeliveryFirst:
    def __init__(self, delivering: Callable[[], bool] | None, share: float, max_wait: float) -> None:
        self.delivering = delivering
        self.share = share
        self.max_wait = max_wait
        self._started: float | None = None

    async def turn(self) -> None:
        """Return when this publisher may start its next batch (the time since the last call is the
        last batch's)."""
        now = time.monotonic()
        if self._started is not None and self.delivering is not None and 0 < self.share < 1:
            spent = now - self._started
            until = now + min(self.max_wait, spent * (1 - self.share) / self.share)
            while self.delivering() and time.monotonic() < until:
                await asyncio.sleep(STEP)
        self._started = time.monotonic()

    def batch(self, usual: int) -> int:
        """How many records to take now."""
        if self.delivering is not None and 0 < self.share < 1 and self.delivering():
            return max(1, int(usual * SMALL))
        return usual

    def idle(self) -> None:
        """The last batch found nothing to do: the wait that follows is not work to make up for."""
        self._started = None
