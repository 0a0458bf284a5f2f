"""Send counters (the send_counters table): recipients counted per account, region, span and bucket.

A bucket is ``epoch seconds // span``. The domain chooses the spans and how many buckets of each to keep
(``keep``); this module counts over a range of buckets, adds increments, and prunes what is past
keeping. Counting and adding run inside the writer's transaction, so a check and its increment are one
atomic step.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.storage.models import AccountRegion, SendCounter, table

#: (account_id, region, span, bucket)
CounterKey = tuple[str, str, int, int]

#: The sum over a range of buckets: run for every batch of sends, as text (a select() built for each
#: call costs more to build and look up in the compiled cache than the query costs SQLite).
_TOTAL = sa.text(
    f"SELECT coalesce(sum(count), 0) FROM {SendCounter.__tablename__} WHERE account_id = :a AND region = :r"
    " AND span = :span AND bucket BETWEEN :first AND :last"
)

#: Pruning runs with a write at most this often (seconds): it scans the table.
PRUNE_EVERY = 60.0


class SendCounters:
    def __init__(self, is_sqlite: bool, keep: Mapping[int, int]) -> None:
        self.is_sqlite = is_sqlite
        self.keep = dict(keep)
        self._last_prune = 0.0
        self._upsert = _upsert(is_sqlite)

    async def lock(self, s: AsyncSession, accounts: Iterable[tuple[str, str]]) -> None:
        """Serialize counting per account and region until ``s`` commits, across processes: on
        PostgreSQL by locking their account_regions rows (in a stable order, so two writers never
        deadlock); SQLite has one writer at a time already."""
        if self.is_sqlite:
            return
        for account_id, region in sorted(accounts):
            await s.execute(
                sa.select(AccountRegion.account_id)
                .where(AccountRegion.account_id == account_id, AccountRegion.region == region)
                .with_for_update()
            )

    @staticmethod
    async def total(s: AsyncSession, account_id: str, region: str, span: int, first: int, last: int) -> int:
        """The sum of the account's counters of ``span`` over buckets ``first``..``last``."""
        params = {"a": account_id, "r": region, "span": span, "first": first, "last": last}
        return int(await s.scalar(_TOTAL, params) or 0)

    @staticmethod
    async def since(
        s: AsyncSession, account_id: str, region: str, span: int, first: int
    ) -> list[tuple[int, int]]:
        """(bucket, count) of the account's counters of ``span`` from bucket ``first`` on, oldest first."""
        rows = await s.execute(
            sa.select(SendCounter.bucket, SendCounter.count)
            .where(
                SendCounter.account_id == account_id,
                SendCounter.region == region,
                SendCounter.span == span,
                SendCounter.bucket >= first,
            )
            .order_by(SendCounter.bucket)
        )
        return [(b, n) for b, n in rows]

    async def add(self, s: AsyncSession, increments: Mapping[CounterKey, int]) -> None:
        """Add each increment to its counter, creating the counter at need."""
        if increments:
            rows = [
                {"account_id": a, "region": r, "span": span, "bucket": b, "count": n}
                for (a, r, span, b), n in increments.items()
            ]
            await s.execute(self._upsert, rows)

    async def prune(self, s: AsyncSession, now: float | None = None) -> None:
        """Delete the counters older than each span keeps; at most once every ``PRUNE_EVERY`` seconds."""
        now = time.time() if now is None else now
        if now - self._last_prune <= PRUNE_EVERY:
            return
        self._last_prune = now
        await s.execute(
            sa.delete(SendCounter).where(
                sa.or_(
                    *(
                        sa.and_(SendCounter.span == span, SendCounter.bucket < int(now) // span - kept)
                        for span, kept in self.keep.items()
                    )
                )
            )
        )


def _upsert(is_sqlite: bool) -> Any:
    """One row's ``INSERT … ON CONFLICT DO UPDATE SET count = count + excluded.count``, run for each row
    (executemany): the same statement every time, so it is compiled once, where a multi-row VALUES would
    be compiled for each batch size. The two dialects spell the conflict clause alike but SQLAlchemy
    builds it per dialect."""
    if is_sqlite:
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    counters = table(SendCounter)
    stmt = insert(counters)
    return stmt.on_conflict_do_update(
        index_elements=["account_id", "region", "span", "bucket"],
        set_={"count": counters.c.count + stmt.excluded.count},
    )
