"""What became of one claimed queue entry: ``Delivered``, ``Deferred`` or ``Bounced``.

Each outcome carries what settling the entry needs (its id, the reply or verdict behind it, the time of
the next attempt) and the event records to write in the same transaction (``events.details``): the
Delivery (and, from the mailbox simulator's complaint@, a Complaint), the DeliveryDelay, the Bounce.
The queue turns them into its rows (``queue.settle``); the engine reads a permanent ``Bounced`` to put
the address on the suppression list.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeAlias

from sesame.events.details import Detail
from sesame.mta.bounce import PERMANENT, Verdict
from sesame.mta.reply import SmtpReply


@dataclass(frozen=True)
class Delivered:
    """The recipient's server took the message: ``reply`` is its acceptance ("250 2.0.0 Ok")."""

    entry_id: int
    reply: SmtpReply
    events: tuple[Detail, ...]


@dataclass(frozen=True)
class Deferred:
    """A temporary failure (``verdict.temporary``): tried again at ``retry_at``."""

    entry_id: int
    verdict: Verdict
    retry_at: dt.datetime
    events: tuple[Detail, ...]


@dataclass(frozen=True)
class Bounced:
    """Given up: a permanent failure, or a temporary one past the message's retry window."""

    entry_id: int
    verdict: Verdict
    events: tuple[Detail, ...]

    @property
    def permanent(self) -> bool:
        """A hard bounce: the address may join the suppression list."""
        return self.verdict.bounce_type == PERMANENT


Outcome: TypeAlias = Delivered | Deferred | Bounced
