"""The SQL of statistics and reputation (domain/reputation.py decides what to count and what it means).

``reputation_counters`` holds outcome counts per account, region, scope ("" or a configuration set),
span and bucket (``epoch seconds // span``), added with one upsert per row as storage/counters.py does
for sends; ``reputation`` holds the rates last computed for each scope and when each was last reset.
Everything here runs inside a transaction the caller holds (the outbox's dispatch transaction, or an
operator's write), so counting and what it decides commit together.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.storage.models import (
    AccountRegion,
    ConfigurationSet,
    Identity,
    QueueEntry,
    Reputation,
    ReputationCounter,
    table,
    utcnow,
)

#: (account_id, region, scope, span, bucket)
Key = tuple[str, str, str, int, int]
#: (account_id, region, scope)
Scope = tuple[str, str, str]
#: Pruning scans the table: at most this often (seconds) per process.
PRUNE_EVERY = 60.0


@dataclass
class Counts:
    sends: int = 0
    bounces: int = 0
    complaints: int = 0
    rejects: int = 0

    def __bool__(self) -> bool:
        return bool(self.sends or self.bounces or self.complaints or self.rejects)


@dataclass(frozen=True)
class Rates:
    """A scope's totals over its window, and the rates they make (0 with nothing sent)."""

    account_id: str
    region: str
    scope: str
    sends: int
    bounces: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        return self.bounces / self.sends if self.sends else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sends if self.sends else 0.0


class ReputationStore:
    def __init__(self, is_sqlite: bool, keep: Mapping[int, int]) -> None:
        self.is_sqlite = is_sqlite
        self.keep = dict(keep)
        self._last_prune = 0.0
        self._upsert = _upsert(is_sqlite)

    # -- counters ---------------------------------------------------------------------------------

    async def add(self, s: AsyncSession, increments: Mapping[Key, Counts]) -> None:
        """Add each increment to its counter. Rows go in key order, so that two transactions adding to
        the same counters (two publishers on one PostgreSQL) lock them in the same order."""
        rows = [
            {"account_id": a, "region": r, "scope": sc, "span": span, "bucket": b, **c.__dict__}
            for (a, r, sc, span, b), c in sorted(increments.items())
            if c
        ]
        if rows:
            await s.execute(self._upsert, rows)

    @staticmethod
    async def buckets(
        s: AsyncSession, account_id: str, region: str, scope: str, span: int, first: int
    ) -> list[tuple[int, Counts]]:
        """(bucket, counts) of one scope's counters of ``span`` from bucket ``first`` on, newest first."""
        c = ReputationCounter
        rows = await s.execute(
            sa.select(c.bucket, c.sends, c.bounces, c.complaints, c.rejects)
            .where(
                c.account_id == account_id,
                c.region == region,
                c.scope == scope,
                c.span == span,
                c.bucket >= first,
            )
            .order_by(c.bucket.desc())
        )
        return [(b, Counts(n, bo, co, rj)) for b, n, bo, co, rj in rows]

    async def prune(self, s: AsyncSession, now: float | None = None) -> None:
        """Delete counters older than each span keeps; at most once every ``PRUNE_EVERY`` seconds."""
        now = time.time() if now is None else now
        if now - self._last_prune <= PRUNE_EVERY:
            return
        self._last_prune = now
        c = ReputationCounter
        await s.execute(
            sa.delete(c).where(
                sa.or_(
                    *(
                        sa.and_(c.span == span, c.bucket < int(now) // span - kept)
                        for span, kept in self.keep.items()
                    )
                )
            )
        )

    # -- rates and resets -------------------------------------------------------------------------

    @staticmethod
    async def reset_times(s: AsyncSession, scopes: Iterable[Scope]) -> dict[Scope, dt.datetime]:
        """When each scope's rates were last reset, for those ever reset."""
        wanted = sorted(set(scopes))
        if not wanted:
            return {}
        r = Reputation
        rows = await s.execute(
            sa.select(r.account_id, r.region, r.scope, r.reset_at).where(
                sa.tuple_(r.account_id, r.region, r.scope).in_(wanted), r.reset_at.is_not(None)
            )
        )
        return {(a, g, sc): when for a, g, sc, when in rows if when is not None}

    async def save(self, s: AsyncSession, rates: Iterable[Rates]) -> None:
        """Store the rates just computed (keeping each scope's reset time)."""
        now = utcnow()
        rows = [
            {
                "account_id": x.account_id,
                "region": x.region,
                "scope": x.scope,
                "sends": x.sends,
                "bounces": x.bounces,
                "complaints": x.complaints,
                "bounce_rate": x.bounce_rate,
                "complaint_rate": x.complaint_rate,
                "reset_at": None,
                "updated_at": now,
            }
            for x in sorted(rates, key=lambda x: (x.account_id, x.region, x.scope))
        ]
        if rows:
            insert = _insert(self.is_sqlite)
            stmt = insert(table(Reputation))
            keep = {"account_id", "region", "scope", "reset_at"}
            await s.execute(
                stmt.on_conflict_do_update(
                    index_elements=["account_id", "region", "scope"],
                    set_={k: stmt.excluded[k] for k in rows[0] if k not in keep},
                ),
                rows,
            )

    async def reset(self, s: AsyncSession, scope: Scope, when: dt.datetime, spans: Iterable[int]) -> None:
        """Start a scope's rates afresh at ``when``: its counters of ``spans`` go, its rates are zero, and
        outcomes of mail sent before ``when`` are not counted for it any more."""
        account_id, region, name = scope
        c = ReputationCounter
        await s.execute(
            sa.delete(c).where(
                c.account_id == account_id, c.region == region, c.scope == name, c.span.in_(list(spans))
            )
        )
        await self.save(s, [Rates(account_id, region, name, 0, 0, 0)])
        await s.execute(
            sa.update(Reputation)
            .where(Reputation.account_id == account_id, Reputation.region == region, Reputation.scope == name)
            .values(reset_at=when)
        )

    @staticmethod
    async def all_rates(s: AsyncSession) -> list[Reputation]:
        return list(await s.scalars(sa.select(Reputation).order_by(Reputation.account_id, Reputation.scope)))

    # -- what the rules need to know --------------------------------------------------------------

    @staticmethod
    async def recipients(s: AsyncSession, message_ids: Iterable[str]) -> dict[str, list[str]]:
        """Each message's envelope recipients (its queue entries)."""
        ids = sorted(set(message_ids))
        out: dict[str, list[str]] = {}
        if ids:
            q = sa.select(QueueEntry.message_id, QueueEntry.recipient).where(QueueEntry.message_id.in_(ids))
            for message_id, rcpt in await s.execute(q):
                out.setdefault(message_id, []).append(rcpt)
        return out

    @staticmethod
    async def verified(
        s: AsyncSession, accounts: Iterable[tuple[str, str]], names: Iterable[str]
    ) -> set[Scope]:
        """Which of ``names`` are verified identities of which of ``accounts``: (account, region, name)."""
        keys, wanted = sorted(set(accounts)), sorted(set(names))
        if not keys or not wanted:
            return set()
        i = Identity
        rows = await s.execute(
            sa.select(i.account_id, i.region, i.identity).where(
                sa.tuple_(i.account_id, i.region).in_(keys),
                i.identity.in_(wanted),
                i.verification_status == "SUCCESS",
            )
        )
        return {(a, r, name) for a, r, name in rows}

    @staticmethod
    async def set_options(s: AsyncSession, sets: Iterable[Scope]) -> dict[Scope, dict[str, Any]]:
        wanted = sorted(set(sets))
        if not wanted:
            return {}
        c = ConfigurationSet
        rows = await s.execute(
            sa.select(c.account_id, c.region, c.name, c.options).where(
                sa.tuple_(c.account_id, c.region, c.name).in_(wanted)
            )
        )
        return {(a, r, n): options or {} for a, r, n, options in rows}

    @staticmethod
    async def enforcement(s: AsyncSession, accounts: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Each account's EnforcementStatus in each region, locked until the transaction ends
        (PostgreSQL): two publishers deciding about one account take turns."""
        keys = sorted(set(accounts))
        if not keys:
            return {}
        a = AccountRegion
        q = (
            sa.select(a.account_id, a.region, a.enforcement_status)
            .where(sa.tuple_(a.account_id, a.region).in_(keys))
            .order_by(a.account_id, a.region)
            .with_for_update()
        )
        return {(acc, reg): status for acc, reg, status in await s.execute(q)}

    @staticmethod
    async def set_enforcement(
        s: AsyncSession, account_id: str, region: str, status: str, sending_enabled: bool | None = None
    ) -> None:
        values: dict[str, Any] = {"enforcement_status": status, "updated_at": utcnow()}
        if sending_enabled is not None:
            values["sending_enabled"] = sending_enabled
        await s.execute(
            sa.update(AccountRegion)
            .where(AccountRegion.account_id == account_id, AccountRegion.region == region)
            .values(**values)
        )


def _insert(is_sqlite: bool) -> Any:
    if is_sqlite:
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    return insert


def _upsert(is_sqlite: bool) -> Any:
    """One row's ``INSERT … ON CONFLICT DO UPDATE`` adding every count, run for each row (executemany):
    one statement, compiled once (storage/counters.py explains why)."""
    counters = table(ReputationCounter)
    stmt = _insert(is_sqlite)(counters)
    return stmt.on_conflict_do_update(
        index_elements=["account_id", "region", "scope", "span", "bucket"],
        set_={k: counters.c[k] + stmt.excluded[k] for k in ("sends", "bounces", "complaints", "rejects")},
    )
