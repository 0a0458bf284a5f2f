"""Delivery first (events/pacing.py): a publisher keeps to its share of the time while delivery is busy,
takes small batches then, and runs at full speed when delivery is idle."""

from __future__ import annotations

import asyncio
import time

from sesame.events.pacing import DeliveryFirst


def test_a_publisher_waits_its_share_while_delivery_is_busy() -> None:
    async def go() -> tuple[float, float]:
        pacing = DeliveryFirst(lambda: True, share=0.2, max_wait=5.0)
        await pacing.turn()  # the first batch starts at once
        await asyncio.sleep(0.1)  # it takes 0.1 s
        started = time.monotonic()
        await pacing.turn()  # so the next waits 0.1 × 0.8 / 0.2 = 0.4 s
        waited = time.monotonic() - started
        pacing.idle()  # a batch that found nothing is no work to make up for
        started = time.monotonic()
        await pacing.turn()
        return waited, time.monotonic() - started

    waited, after_idle = asyncio.run(go())
    assert 0.35 <= waited < 0.6
    assert after_idle < 0.05


def test_the_wait_is_capped_and_ends_when_delivery_does() -> None:
    busy = {"on": True}

    async def go() -> tuple[float, float]:
        capped = DeliveryFirst(lambda: True, share=0.01, max_wait=0.2)
        await capped.turn()
        await asyncio.sleep(0.1)  # would ask for 9.9 s
        started = time.monotonic()
        await capped.turn()
        first = time.monotonic() - started
        freed = DeliveryFirst(lambda: busy["on"], share=0.01, max_wait=10.0)
        await freed.turn()
        await asyncio.sleep(0.1)
        asyncio.get_running_loop().call_later(0.2, lambda: busy.update(on=False))
        started = time.monotonic()
        await freed.turn()
        return first, time.monotonic() - started

    capped_wait, freed_wait = asyncio.run(go())
    assert 0.15 <= capped_wait < 0.4
    assert 0.15 <= freed_wait < 0.5


def test_batches_are_small_only_while_delivery_is_busy() -> None:
    busy = {"on": True}
    pacing = DeliveryFirst(lambda: busy["on"], share=0.05, max_wait=10.0)
    assert pacing.batch(200) == 20
    busy["on"] = False
    assert pacing.batch(200) == 200
    assert DeliveryFirst(None, 0.05, 10.0).batch(200) == 200  # no delivery in this process
