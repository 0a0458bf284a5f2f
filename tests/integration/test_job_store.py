"""The bulk-job table's leases on both databases: two workers never hold one job, a cancelled job is
not written again by the worker that held it, and an expired lease passes the job on."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from sesame import config
from sesame.jobs.store import JobLost, JobStore
from sesame.runtime import Sesame
from sesame.storage.models import Account, BulkJob

ACCOUNT, REGION = "999988887777", "us-east-1"


def test_leases_cancel_and_takeover(database: str, tmp_path: Path) -> None:
    settings = config.load("serve", data_dir=tmp_path, database=database, env={})
    sesame = Sesame(settings)
    sesame.migrate()

    async def go() -> None:
        db = sesame.db
        async with db.write() as s:
            s.add(Account(id=ACCOUNT, name="jobs"))
        one, two = JobStore(db, "worker-one"), JobStore(db, "worker-two")
        ids = [await one.create(ACCOUNT, REGION, "export", "MESSAGE_INSIGHTS", {}) for _ in range(3)]
        # Claims at once: each job goes to one worker only.
        got = await asyncio.gather(one.claim(2, 60), two.claim(2, 60))
        held = [j.id for claimed in got for j in claimed]
        assert sorted(held) == sorted(ids)
        mine = got[0][0].id
        await one.heartbeat(mine, 60, processed=5)
        with pytest.raises(JobLost):
            await two.heartbeat(mine, 60, processed=6)  # not worker two's
        await one.cancel(ACCOUNT, REGION, "export", mine)
        with pytest.raises(JobLost):
            await one.heartbeat(mine, 60, processed=7)  # cancelled under it
        assert not await one.finish(mine, "COMPLETED")
        async with db.read() as s:
            row = await s.get(BulkJob, mine)
            assert row is not None and (row.status, row.processed) == ("CANCELLED", 5)
        # A lease that ran out: the other worker takes the job, and the first can no longer write it.
        other = got[1][0].id
        async with db.write() as s:
            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            await s.execute(sa.update(BulkJob).where(BulkJob.id == other).values(locked_until=past))
        taken = await one.claim(5, 60)
        assert [j.id for j in taken] == [other] and taken[0].attempts == 2
        with pytest.raises(JobLost):
            await two.heartbeat(other, 60)
        assert await one.finish(other, "COMPLETED", exported=1)
        await db.close()

    asyncio.run(go())
