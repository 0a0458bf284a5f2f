"""Sesame's SNS in process, on both databases: the interface the event publisher calls
(``sesame.sns.publish`` / ``exists``), and the delivery queue's leases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from sesame import config
from sesame.integrations.sns import TopicNotFound
from sesame.integrations.sns.outbox import Outbox, Outcome
from sesame.runtime import Sesame
from sesame.storage.models import SnsDelivery, SnsSubscription

ACCOUNT = "123456789012"


def make(database: str, tmp_path: Path) -> Sesame:
    settings = config.load("serve", data_dir=tmp_path, database=database, env={})
    sesame = Sesame(settings)
    sesame.migrate()
    return sesame


async def confirmed_topic(sesame: Sesame, name: str, endpoints: int = 1) -> str:
    await sesame.accounts.ensure(ACCOUNT)
    topic = await sesame.sns.create_topic(ACCOUNT, "eu-west-1", name)
    for i in range(endpoints):
        await sesame.sns.subscribe(ACCOUNT, topic, "https", f"https://hooks.example.org/{i}")
    async with sesame.db.read() as s:
        tokens = list(
            await s.scalars(sa.select(SnsSubscription.token).where(SnsSubscription.topic_arn == topic))
        )
    for token in tokens:
        await sesame.sns.confirm(topic, token)
    return topic


def test_publish_writes_one_delivery_per_confirmed_subscription(database: str, tmp_path: Path) -> None:
    sesame = make(database, tmp_path)

    async def go() -> None:
        topic = await confirmed_topic(sesame, "ses-events", endpoints=2)
        assert topic == f"arn:aws:sns:eu-west-1:{ACCOUNT}:ses-events"
        assert await sesame.sns.exists(topic)
        assert not await sesame.sns.exists(topic + "-not")
        # Concurrent publishes share group commits; each gets its MessageId and its deliveries.
        ids = await asyncio.gather(*(sesame.sns.publish(topic, f"event {i}", "Subject") for i in range(40)))
        assert len(set(ids)) == 40
        with pytest.raises(TopicNotFound) as info:
            await sesame.sns.publish(f"arn:aws:sns:eu-west-1:{ACCOUNT}:nope", "x")
        assert info.value.topic_arn.endswith(":nope")
        async with sesame.db.read() as s:
            rows = (
                await s.execute(
                    sa.select(SnsDelivery.message_id, sa.func.count())
                    .where(SnsDelivery.kind == "Notification")
                    .group_by(SnsDelivery.message_id)
                )
            ).all()
        assert {m: n for m, n in rows} == {m: 2 for m in ids}
        await sesame.db.close()

    asyncio.run(go())


def test_an_expired_lease_is_claimed_again_and_only_its_holder_settles(database: str, tmp_path: Path) -> None:
    sesame = make(database, tmp_path)

    async def go() -> None:
        topic = await confirmed_topic(sesame, "leases")
        message_id = await sesame.sns.publish(topic, "once")
        # A lease long enough that a loaded machine still makes the second claim inside it.
        first = Outbox(sesame.db, "worker-that-dies", lease_seconds=1.5)
        other = Outbox(sesame.db, "next-worker", lease_seconds=60)
        (held,) = [j for j in await first.claim(10) if j.message_id == message_id]
        assert held.attempts == 1 and held.endpoint == "https://hooks.example.org/0"
        assert [j for j in await other.claim(10) if j.message_id == message_id] == []
        await asyncio.sleep(1.6)  # the first worker died: its lease runs out
        (again,) = [j for j in await other.claim(10) if j.message_id == message_id]
        assert again.id == held.id and again.attempts == 2
        # The dead worker's late outcome changes nothing; the holder's does.
        await first.settle(Outcome(held.id, "delivered"))
        async with sesame.db.read() as s:
            assert (
                await s.scalar(sa.select(SnsDelivery.state).where(SnsDelivery.id == held.id)) == "delivering"
            )
        await other.settle(Outcome(held.id, "delivered"))
        async with sesame.db.read() as s:
            assert (
                await s.scalar(sa.select(SnsDelivery.state).where(SnsDelivery.id == held.id)) == "delivered"
            )
        await sesame.db.close()

    asyncio.run(go())


def test_deleting_a_topic_drops_what_it_still_owed(database: str, tmp_path: Path) -> None:
    sesame = make(database, tmp_path)

    async def go() -> None:
        topic = await confirmed_topic(sesame, "gone")
        await sesame.sns.publish(topic, "never delivered")
        await sesame.sns.delete_topic(topic)
        assert not await sesame.sns.exists(topic)
        async with sesame.db.read() as s:
            assert await s.scalar(sa.select(sa.func.count()).select_from(SnsDelivery)) == 0
        await sesame.db.close()

    asyncio.run(go())


def test_concurrent_create_topic_of_one_name_answers_one_topic(database: str, tmp_path: Path) -> None:
    sesame = make(database, tmp_path)

    async def go() -> None:
        await sesame.accounts.ensure(ACCOUNT)
        arns = await asyncio.gather(
            *(sesame.sns.create_topic(ACCOUNT, "us-east-1", "race") for _ in range(8))
        )
        assert set(arns) == {f"arn:aws:sns:us-east-1:{ACCOUNT}:race"}
        topics, _ = await sesame.sns.list_topics(ACCOUNT, "us-east-1", None)
        assert topics == [f"arn:aws:sns:us-east-1:{ACCOUNT}:race"]
        await sesame.db.close()

    asyncio.run(go())
