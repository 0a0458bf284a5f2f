"""The group-commit writer and the send counters, on both databases."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame import config
from sesame.storage import migrate
from sesame.storage.counters import SendCounters
from sesame.storage.db import Database
from sesame.storage.models import Account, SendCounter
from sesame.storage.writer import MAX_BATCH, Work, insert

ACCOUNT = "123456789012"


def _url(database: str, tmp_path: Path) -> str:
    url = config.load("serve", data_dir=tmp_path, database=database, env={}).database_url
    migrate.upgrade(url)
    return url


def run(database: str, tmp_path: Path, test: Any) -> None:
    url = _url(database, tmp_path)

    async def go() -> None:
        db = Database(url)
        try:
            async with db.write() as s:
                await insert(s, Account, [{"id": ACCOUNT, "name": "acme"}])
            await asyncio.wait_for(test(db), 60)
        finally:
            await db.close()

    asyncio.run(go())


def _count(account: str = ACCOUNT, bucket: int = 1) -> dict[str, Any]:
    return {"account_id": account, "region": "us-east-1", "span": 1, "bucket": bucket, "count": 1}


async def _counted(db: Database) -> int:
    async with db.read() as s:
        return int(await s.scalar(sa.select(sa.func.count()).select_from(SendCounter)) or 0)


def test_concurrent_items_share_batches_each_caller_gets_its_outcome(database: str, tmp_path: Path) -> None:
    batches: list[int] = []

    async def write(s: AsyncSession, items: list[int]) -> list[int]:
        batches.append(len(items))
        await insert(s, SendCounter, [_count(bucket=i) for i in items])
        return [i * 2 for i in items]

    work = Work("doubling", write)

    async def test(db: Database) -> None:
        n = MAX_BATCH + 100
        results = await asyncio.gather(*(db.writer.submit(work, i) for i in range(n)))
        assert results == [i * 2 for i in range(n)]
        assert sum(batches) == n and max(batches) <= MAX_BATCH
        assert len(batches) < n / 10  # batched, not one transaction per item
        assert await _counted(db) == n  # committed before any caller heard back

    run(database, tmp_path, test)


def test_a_failed_batch_fails_every_caller_and_writes_nothing(database: str, tmp_path: Path) -> None:
    async def write(s: AsyncSession, items: list[int]) -> list[None]:
        await insert(s, SendCounter, [_count(bucket=i) for i in items])
        if 13 in items:
            raise ValueError("unlucky")
        return [None] * len(items)

    work = Work("failing", write)

    async def test(db: Database) -> None:
        calls = [db.writer.submit(work, i) for i in range(20)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)
        assert await _counted(db) == 0
        assert await db.writer.submit(work, 1) is None  # the writer goes on
        assert await _counted(db) == 1

    run(database, tmp_path, test)


def test_one_kind_failing_leaves_the_other_kinds_of_the_batch_written(database: str, tmp_path: Path) -> None:
    committed: list[list[str]] = []

    async def good(s: AsyncSession, items: list[int]) -> list[str]:
        await insert(s, SendCounter, [_count(bucket=i) for i in items])
        return ["ok"] * len(items)

    async def bad(s: AsyncSession, items: list[int]) -> list[str]:
        await insert(s, SendCounter, [_count(bucket=1000 + i) for i in items])
        await insert(s, SendCounter, [_count(account="000000000000")])  # no such account
        return ["never"] * len(items)

    good_work = Work("good", good, committed.append)
    bad_work = Work("bad", bad, committed.append)

    async def test(db: Database) -> None:
        calls = [db.writer.submit(good_work if i % 2 else bad_work, i) for i in range(10)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert results[1::2] == ["ok"] * 5
        assert all(isinstance(r, sa.exc.IntegrityError) for r in results[0::2])
        assert committed == [["ok"] * 5]  # one batch; the failed kind's hook does not run
        assert await _counted(db) == 5

    run(database, tmp_path, test)


def test_counters_add_up_count_over_a_range_and_prune(database: str, tmp_path: Path) -> None:
    counters = SendCounters(database.startswith("sqlite"), {1: 120, 60: 1440})
    now = time.time()
    second, minute = int(now), int(now) // 60

    async def test(db: Database) -> None:
        for _ in range(3):
            async with db.write() as s:
                await counters.lock(s, [(ACCOUNT, "us-east-1")])
                await counters.add(
                    s,
                    {
                        (ACCOUNT, "us-east-1", 1, second): 2,
                        (ACCOUNT, "us-east-1", 1, second - 500): 1,  # past keeping
                        (ACCOUNT, "us-east-1", 60, minute): 5,
                        (ACCOUNT, "eu-west-1", 60, minute): 7,
                    },
                )
        async with db.write() as s:
            assert await counters.total(s, ACCOUNT, "us-east-1", 1, second, second) == 6
            assert await counters.total(s, ACCOUNT, "us-east-1", 1, second - 1000, second) == 9
            assert await counters.total(s, ACCOUNT, "us-east-1", 60, minute - 1439, minute) == 15
            assert await counters.since(s, ACCOUNT, "eu-west-1", 60, minute) == [(minute, 21)]
            await counters.prune(s, now)
            assert await counters.total(s, ACCOUNT, "us-east-1", 1, second - 1000, second) == 6
            await counters.add(s, {(ACCOUNT, "us-east-1", 1, second - 500): 1})
            await counters.prune(s, now + 1)  # pruned at most once a minute
            assert await counters.total(s, ACCOUNT, "us-east-1", 1, second - 1000, second) == 7

    run(database, tmp_path, test)


@pytest.mark.parametrize("off_by", [-1, 1])
def test_a_work_giving_the_wrong_number_of_outcomes_fails_its_batch(
    database: str, tmp_path: Path, off_by: int
) -> None:
    async def write(s: AsyncSession, items: list[int]) -> list[int]:
        return [0] * (len(items) + off_by)

    async def test(db: Database) -> None:
        with pytest.raises(ValueError):
            await db.writer.submit(Work("miscounting", write), 1)

    run(database, tmp_path, test)
