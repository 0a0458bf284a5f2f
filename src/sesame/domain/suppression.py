"""The account-level suppression list (SES v2 PutSuppressedDestination … ListSuppressedDestinations).

Addresses are compared case-insensitively: mailbox providers treat ``User@Example.com`` and
``user@example.com`` as one recipient, and a bounce from one should protect the other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa

from sesame.storage.db import Database
from sesame.storage.models import SuppressedDestination, utcnow

REASONS = ("BOUNCE", "COMPLAINT")


def key(address: str) -> str:
    return address.strip().lower()


class Suppression:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(
        self, account_id: str, region: str, address: str, reason: str, message_id: str | None = None
    ) -> None:
        async with self.db.write() as s:
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
                    )
                )
            else:
                row.reason, row.last_update_time, row.message_id = reason, utcnow(), message_id

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
