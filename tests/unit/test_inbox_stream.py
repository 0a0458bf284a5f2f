"""The dev inbox's event stream (console/inbox.py ``changes``): a change event per new newest message, a
heartbeat, and an end."""

from __future__ import annotations

import asyncio
import time

from sesame.console.inbox import changes


def test_changes_heartbeat_and_end() -> None:
    stamps = iter(["a", "a", "b", "b", "b", "c"] + ["c"] * 100)

    async def latest() -> str:
        return next(stamps)

    async def collect() -> list[str]:
        return [chunk async for chunk in changes(latest, poll=0.01, heartbeat=0.025, lifetime=0.2)]

    started = time.monotonic()
    got = asyncio.run(collect())
    assert time.monotonic() - started < 1.0  # it ends by itself
    assert got[0] == "retry: 2000\n\n"
    assert got.count("event: change\ndata: {}\n\n") == 2  # a → b, b → c
    assert got.count(": heartbeat\n\n") >= 3
