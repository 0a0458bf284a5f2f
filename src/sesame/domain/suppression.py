"""The account-level suppression list (SES v2 PutSuppressedDestination … ListSuppressedDestinations).

Addresses are compared case-insensitively: mailbox providers treat ``User@Example.com`` and
``user@example.com`` as one recipient, and a bounce from one should protect the other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.domain.configuration_sets import suppressed_reasons
from sesame.storage.db import Database
from sesame.storage.models import AccountRegion, ConfigurationSet, SuppressedDestination, utcnow

REASONS = ("BOUNCE", "COMPLAINT")
#: An account's SuppressedReasons until it sets its own (SES: both).
DEFAULT_REASONS = ["BOUNCE", "COMPLAINT"]
#: A bounce of an address already on the account's list says nothing new about it.
ON_ACCOUNT_LIST = "OnAccountSuppressionList"
#: Nor does one of mail to a contact who unsubscribed: the address works, its owner said no.
UNSUBSCRIBED = "UnsubscribedRecipient"
#: The width of ``SuppressedDestination.feedback_id``.
FEEDBACK_ID_MAX = 80


def key(address: str) -> str:
    return address.strip().lower()


def effective_reasons(
    account_attributes: Mapping[str, Any] | None, set_reasons: list[str] | None
) -> list[str]:
    """The reasons that put an address on the list for mail of a configuration set: the set's own
    ``SuppressionOptions.SuppressedReasons`` when it has them (an empty list: none), else the
    account's ``SuppressedReasons`` (PutAccountSuppressionAttributes), else both."""
    if set_reasons is not None:
        return list(set_reasons)
    return list((account_attributes or {}).get("SuppressedReasons", DEFAULT_REASONS))


def suppressible(bounce_type: str | None, bounce_subtype: str | None) -> bool:
    """Whether a bounce may put its address on the list (when BOUNCE is among the reasons): a hard
    bounce, unless it happened because the address was on the list already [DG] or its contact had
    unsubscribed."""
    return bounce_type == "Permanent" and bounce_subtype not in (ON_ACCOUNT_LIST, UNSUBSCRIBED)


async def reasons_in(
    s: AsyncSession, account_id: str, region: str, configuration_set: str | None
) -> list[str]:
    """``effective_reasons`` read inside a transaction. A configuration set that no longer exists
    leaves the account's reasons."""
    attributes = await s.scalar(
        sa.select(AccountRegion.suppression_attributes).where(
            AccountRegion.account_id == account_id, AccountRegion.region == region
        )
    )
    own: list[str] | None = None
    if configuration_set:
        row = await s.scalar(
            sa.select(ConfigurationSet).where(
                ConfigurationSet.account_id == account_id,
                ConfigurationSet.region == region,
                ConfigurationSet.name == configuration_set,
            )
        )
        own = suppressed_reasons(row) if row is not None else None
    return effective_reasons(attributes, own)


async def add(
    s: AsyncSession,
    account_id: str,
    region: str,
    address: str,
    reason: str,
    message_id: str | None = None,
    feedback_id: str | None = None,
) -> None:
    """Put ``address`` on the list inside a transaction (or renew its entry with the newer cause).
    A ``feedback_id`` longer than its column (80) is left out: events/details.py's ids (the message id
    and a UUID) are longer, and PostgreSQL would refuse the whole transaction."""
    if feedback_id is not None and len(feedback_id) > FEEDBACK_ID_MAX:
        feedback_id = None
    row = await s.get(SuppressedDestination, (account_id, region, key(address)))
    if row is None:
        s.add(
            SuppressedDestination(
                account_id=account_id,
                region=region,
                email_address=key(address),
                reason=reason,
                last_update_time=utcnow(),
                message_id=message_id,
                feedback_id=feedback_id,
            )
        )
    else:
        row.reason, row.last_update_time = reason, utcnow()
        row.message_id, row.feedback_id = message_id, feedback_id


class Suppression:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(
        self, account_id: str, region: str, address: str, reason: str, message_id: str | None = None
    ) -> None:
        async with self.db.write() as s:
            await add(s, account_id, region, address, reason, message_id)

    async def reasons(self, account_id: str, region: str, configuration_set: str | None) -> list[str]:
        """The reasons that put an address on the list for mail of ``configuration_set``."""
        async with self.db.read() as s:
            return await reasons_in(s, account_id, region, configuration_set)

    async def get(self, account_id: str, region: str, address: str) -> SuppressedDestination | None:
        async with self.db.read() as s:
            return await s.get(SuppressedDestination, (account_id, region, key(address)))

    async def delete(self, account_id: str, region: str, address: str) -> bool:
        async with self.db.write() as s:
            row = await s.get(SuppressedDestination, (account_id, region, key(address)))
            if row is None:
                return False
            await s.delete(row)
            return True

    async def matching(
        self, account_id: str, region: str, addresses: Iterable[str], reasons: Iterable[str]
    ) -> dict[str, str]:
        """Which of ``addresses`` are suppressed for one of ``reasons``: lower-cased address → reason."""
        wanted = {key(a) for a in addresses}
        reasons = list(reasons)
        if not wanted or not reasons:
            return {}
        async with self.db.read() as s:
            rows = await s.execute(
                sa.select(SuppressedDestination.email_address, SuppressedDestination.reason).where(
                    SuppressedDestination.account_id == account_id,
                    SuppressedDestination.region == region,
                    SuppressedDestination.email_address.in_(wanted),
                    SuppressedDestination.reason.in_(reasons),
                )
            )
            return {address: reason for address, reason in rows}

    async def page(
        self,
        account_id: str,
        region: str,
        *,
        reasons: list[str] | None,
        start: dt.datetime | None,
        end: dt.datetime | None,
        after: str | None,
        limit: int,
    ) -> tuple[list[SuppressedDestination], str | None]:
        q = sa.select(SuppressedDestination).where(
            SuppressedDestination.account_id == account_id, SuppressedDestination.region == region
        )
        if reasons:
            q = q.where(SuppressedDestination.reason.in_(reasons))
        if start:
            q = q.where(SuppressedDestination.last_update_time >= start)
        if end:
            q = q.where(SuppressedDestination.last_update_time <= end)
        return await self.db.page(q, SuppressedDestination.email_address, after, limit)
