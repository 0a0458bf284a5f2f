"""Dedicated IP pools, mapped onto this node's source addresses (``delivery.dedicated_ips``).

SES leases addresses to an account; Sesame's operator lists the node's addresses in the settings, and
each account sorts them into its own pools. A configuration set's ``SendingPoolName`` then decides the
address its mail leaves from (the delivery engine binds it).
"""

from __future__ import annotations

import random

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.config import Settings
from sesame.storage.db import Database
from sesame.storage.models import DedicatedIp, DedicatedIpPool, utcnow


class PoolError(Exception):
    """``kind``: 'not-found', 'exists', 'invalid'."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class DedicatedIps:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    @property
    def addresses(self) -> list[str]:
        return list(self.settings.delivery.dedicated_ips)

    async def create_pool(self, account_id: str, region: str, name: str, scaling_mode: str | None) -> None:
        async with self.db.write() as s:
            if await s.get(DedicatedIpPool, (account_id, region, name)) is not None:
                raise PoolError("exists", f"Pool {name} already exists.")
            s.add(
                DedicatedIpPool(
                    account_id=account_id,
                    region=region,
                    name=name,
                    scaling_mode=scaling_mode or "STANDARD",
                    created_at=utcnow(),
                )
            )

    async def pool(self, account_id: str, region: str, name: str) -> DedicatedIpPool:
        async with self.db.read() as s:
            row = await s.get(DedicatedIpPool, (account_id, region, name))
        if row is None:
            raise PoolError("not-found", f"Pool {name} does not exist.")
        return row

    async def delete_pool(self, account_id: str, region: str, name: str) -> None:
        async with self.db.write() as s:
            row = await s.get(DedicatedIpPool, (account_id, region, name))
            if row is None:
                raise PoolError("not-found", f"Pool {name} does not exist.")
            await s.execute(
                sa.update(DedicatedIp)
                .where(
                    DedicatedIp.account_id == account_id,
                    DedicatedIp.region == region,
                    DedicatedIp.pool_name == name,
                )
                .values(pool_name=None)
            )
            await s.delete(row)

    async def set_scaling(self, account_id: str, region: str, name: str, mode: str) -> None:
        async with self.db.write() as s:
            row = await s.get(DedicatedIpPool, (account_id, region, name))
            if row is None:
                raise PoolError("not-found", f"Pool {name} does not exist.")
            row.scaling_mode = mode

    async def pools(self, account_id: str, region: str) -> list[str]:
        async with self.db.read() as s:
            return list(
                await s.scalars(
                    sa.select(DedicatedIpPool.name)
                    .where(DedicatedIpPool.account_id == account_id, DedicatedIpPool.region == region)
                    .order_by(DedicatedIpPool.name)
                )
            )

    async def ips(self, account_id: str, region: str) -> list[tuple[str, str | None, int]]:
        """(address, pool, warm-up %) for each of the node's addresses, as this account has sorted them."""
        async with self.db.read() as s:
            rows = {
                r.ip: r
                for r in await s.scalars(
                    sa.select(DedicatedIp).where(
                        DedicatedIp.account_id == account_id, DedicatedIp.region == region
                    )
                )
            }
        out = []
        for ip in self.addresses:
            row = rows.get(ip)
            out.append((ip, row.pool_name if row else None, row.warmup_percentage if row else 100))
        return out

    async def _row(self, s: AsyncSession, account_id: str, region: str, ip: str) -> DedicatedIp:
        if ip not in self.addresses:
            raise PoolError("not-found", f"Dedicated IP {ip} does not exist.")
        row = await s.get(DedicatedIp, (account_id, region, ip))
        if row is None:
            row = DedicatedIp(
                account_id=account_id, region=region, ip=ip, pool_name=None, warmup_percentage=100
            )
            s.add(row)
        return row

    async def move(self, account_id: str, region: str, ip: str, pool: str) -> None:
        async with self.db.write() as s:
            if await s.get(DedicatedIpPool, (account_id, region, pool)) is None:
                raise PoolError("not-found", f"Pool {pool} does not exist.")
            (await self._row(s, account_id, region, ip)).pool_name = pool

    async def warm_up(self, account_id: str, region: str, ip: str, percentage: int) -> None:
        async with self.db.write() as s:
            (await self._row(s, account_id, region, ip)).warmup_percentage = percentage

    async def source_for(self, account_id: str, region: str, pool: str | None) -> str | None:
        """The address a message of ``pool`` leaves from (one of the pool's, at random), or None for the
        default route."""
        if not pool:
            return None
        choices = [ip for ip, p, _ in await self.ips(account_id, region) if p == pool]
        return random.choice(choices) if choices else None
