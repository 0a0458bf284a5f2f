"""The reputation window and enforcement decisions on both databases, with counters placed at chosen
hours (the end-to-end tests cannot wait hours): the newest hours holding ``window_sends`` recipients,
no more than ``window_hours`` back; no decision under ``min_sends``; a pause only the operator lifts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sesame import config
from sesame.domain.reputation import ACCOUNT, RATE_SPAN
from sesame.runtime import Sesame
from sesame.storage.reputation import Counts, Rates


def test_window_and_enforcement(database: str, tmp_path: Path) -> None:
    env = {
        "SESAME_REPUTATION__MIN_SENDS": "10",
        "SESAME_REPUTATION__WINDOW_SENDS": "100",
        "SESAME_REPUTATION__WINDOW_HOURS": "48",
    }
    settings = config.load("serve", data_dir=tmp_path, database=database, env=env)
    sesame = Sesame(settings)

    async def go() -> None:
        await sesame.open()
        try:
            account = (await sesame.accounts.create("rep")).account_id
            await sesame.accounts.region(account, "us-east-1")
            rep, store = sesame.reputation, sesame.reputation.store
            scope = (account, "us-east-1", ACCOUNT)
            hour = int(time.time()) // RATE_SPAN

            async def at(hours_ago: int, sends: int, bounces: int = 0, complaints: int = 0) -> None:
                key = (*scope, RATE_SPAN, hour - hours_ago)
                async with sesame.db.write() as s:
                    await store.add(s, {key: Counts(sends, bounces, complaints)})

            async def rates() -> Rates:
                async with sesame.db.write() as s:
                    return await rep.window_rates(s, scope)

            await at(60, 1000, 1000)  # older than window_hours: never counted
            await at(3, 100, 50)
            await at(0, 60, 0)
            got = await rates()  # 60 recipients are not enough: the window reaches back to hour -3
            assert (got.sends, got.bounces, got.bounce_rate) == (160, 50, 50 / 160)
            await at(0, 40, 1)
            got = await rates()  # the newest hour holds 100 now: a busy sender is judged on recent mail
            assert (got.sends, got.bounces) == (100, 1)

            status = rep.status_for
            small = Rates(*scope, 9, 9, 9)
            assert status(small, "HEALTHY") == "HEALTHY"  # under min_sends nothing is decided
            assert status(Rates(*scope, 100, 5, 0), "HEALTHY") == "PROBATION"
            assert status(Rates(*scope, 1000, 0, 1), "HEALTHY") == "PROBATION"  # 0.1% complaints
            assert status(Rates(*scope, 100, 4, 0), "PROBATION") == "HEALTHY"  # healed
            assert status(Rates(*scope, 100, 10, 0), "PROBATION") == "SHUTDOWN"
            assert status(Rates(*scope, 1000, 0, 5), "HEALTHY") == "SHUTDOWN"  # 0.5% complaints
            assert status(Rates(*scope, 100, 0, 0), "SHUTDOWN") == "SHUTDOWN"  # the operator's to lift

            async with sesame.db.write() as s:
                await rep._enforce(s, [Rates(*scope, 100, 10, 0)])
            row = await sesame.accounts.region(account, "us-east-1")
            assert (row.enforcement_status, row.sending_enabled) == ("SHUTDOWN", False)
            assert await rep.reinstate(account) == ["us-east-1"]
            row = await sesame.accounts.region(account, "us-east-1")
            assert (row.enforcement_status, row.sending_enabled) == ("HEALTHY", True)
            got = await rates()
            assert (got.sends, got.bounces) == (0, 0)  # afresh
            (current,) = [r for r in await rep.current() if r["AccountId"] == account]
            assert current["BounceRate"] == 0.0 and current["ResetAt"] is not None
        finally:
            await sesame.close()

    asyncio.run(go())
