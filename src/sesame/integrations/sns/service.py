"""Sesame's own SNS: topics, subscriptions and Publish, on the same accounts and database as SES.

``Sns.publish`` is also the way in for Sesame's event publisher (a topic named in an event destination
or identity notification that exists here): ``await sesame.sns.publish(topic_arn, message, subject)``
returns the MessageId once the message and one delivery per confirmed subscription are committed,
together, so a returned MessageId is never lost (delivery.py delivers them, at least once). Publishes
share group commits with accepted mail (storage/writer.py), which keeps the per-event cost low.

Access: a caller acts on its own account's topics in the region it signed for (no topic policies, so
no cross-account grants); ``publish``/``exists`` themselves take any ARN: the caller decides who may.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.errors import SesameError
from sesame.integrations.sns import arns, policy
from sesame.integrations.sns.checks import (
    DEFAULT_ATTRIBUTES,
    check_endpoint,
    check_message,
    check_subscription_attributes,
    check_topic_attribute,
    default_policy,
)
from sesame.integrations.sns.errors import InvalidParameter, NotFound, TopicNotFound
from sesame.storage.db import Database
from sesame.storage.models import SnsDelivery, SnsMessage, SnsSubscription, SnsTopic, utcnow
from sesame.storage.writer import Work, insert

PENDING_ARN = "pending confirmation"  # Subscribe's answer for a subscription not yet confirmed
LIST_PENDING = "PendingConfirmation"  # how List* show one
PAGE = 100  # SNS lists 100 topics or subscriptions a page
#: A confirmation token is good for three days, as SNS's.
TOKEN_LIFETIME = dt.timedelta(days=3)


@dataclass(frozen=True)
class Subscription:
    arn: str
    owner: str
    protocol: str
    endpoint: str
    topic_arn: str
    confirmed: bool

    def listed(self) -> dict[str, str]:
        return {
            "SubscriptionArn": self.arn if self.confirmed else LIST_PENDING,
            "Owner": self.owner,
            "Protocol": self.protocol,
            "Endpoint": self.endpoint,
            "TopicArn": self.topic_arn,
        }


@dataclass(frozen=True)
class _Publish:
    message_id: str
    topic_arn: str
    message: str
    subject: str | None
    structure: str | None
    attributes: dict[str, Any]


class Sns:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: Called after new deliveries are committed (the delivery loop's wake-up), if set.
        self.on_deliveries: Callable[[], None] | None = None
        self._publish = Work("SNS publishes", self._write_publishes, self._published)

    def _wake(self) -> None:
        if self.on_deliveries is not None:
            self.on_deliveries()

    # -- topics ------------------------------------------------------------------------------------

    async def create_topic(
        self, account_id: str, region: str, name: str, attributes: dict[str, str] | None = None
    ) -> str:
        if not arns.TOPIC_NAME.fullmatch(name):
            if name.endswith(".fifo") or (attributes or {}).get("FifoTopic") == "true":
                raise InvalidParameter("Invalid parameter: Sesame's SNS does not serve FIFO topics")
            raise InvalidParameter("Invalid parameter: Topic Name")
        attributes = dict(attributes or {})
        for key, value in attributes.items():
            check_topic_attribute(key, value)
        if attributes.get("FifoTopic", "false") != "false":
            raise InvalidParameter("Invalid parameter: Sesame's SNS does not serve FIFO topics")
        arn = arns.topic_arn(region, account_id, name)
        for _ in range(2):  # a concurrent CreateTopic of the same name may win the insert: read its row
            try:
                async with self.db.write() as s:
                    row = await s.get(SnsTopic, arn)
                    if row is None:
                        new = SnsTopic(arn=arn, account_id=account_id, region=region, name=name)
                        new.attributes = attributes
                        s.add(new)
                        return arn
            except sa.exc.IntegrityError:
                continue
            # SNS answers the existing topic's ARN, unless the attributes asked for differ.
            if any(row.attributes.get(k, DEFAULT_ATTRIBUTES.get(k)) != v for k, v in attributes.items()):
                raise InvalidParameter(
                    "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
                )
            return arn
        return arn

    async def delete_topic(self, arn: str) -> None:
        """Its subscriptions, and deliveries not yet made, go with it (SNS: deleting a topic that does
        not exist succeeds)."""
        async with self.db.write() as s:
            await s.execute(sa.delete(SnsTopic).where(SnsTopic.arn == arn))

    async def list_topics(
        self, account_id: str, region: str, after: str | None
    ) -> tuple[list[str], str | None]:
        query = sa.select(SnsTopic).where(SnsTopic.account_id == account_id, SnsTopic.region == region)
        rows, next_token = await self.db.page(query, SnsTopic.arn, after, PAGE)
        return [r.arn for r in rows], next_token

    async def _topic(self, s: AsyncSession, arn: str) -> SnsTopic:
        row = await s.get(SnsTopic, arn)
        if row is None:
            raise TopicNotFound(arn)
        return row

    async def topic_attributes(self, arn: str) -> dict[str, str]:
        async with self.db.read() as s:
            row = await self._topic(s, arn)
            counts = dict(
                (status, n)
                for status, n in await s.execute(
                    sa.select(SnsSubscription.status, sa.func.count())
                    .where(SnsSubscription.topic_arn == arn)
                    .group_by(SnsSubscription.status)
                )
            )
        attrs = {
            "TopicArn": arn,
            "Owner": row.account_id,
            "Policy": json.dumps(default_policy(arn, row.account_id), separators=(",", ":")),
            "DisplayName": "",
            "SubscriptionsConfirmed": str(counts.get("confirmed", 0)),
            "SubscriptionsPending": str(counts.get("pending", 0)),
            "SubscriptionsDeleted": str(counts.get("deleted", 0)),
            "EffectiveDeliveryPolicy": json.dumps(policy.default_topic_policy(), separators=(",", ":")),
            **DEFAULT_ATTRIBUTES,
            **row.attributes,
        }
        if "DeliveryPolicy" in row.attributes:
            attrs["EffectiveDeliveryPolicy"] = row.attributes["DeliveryPolicy"]
        return attrs

    async def set_topic_attribute(self, arn: str, name: str, value: str | None) -> None:
        value = value or ""
        check_topic_attribute(name, value)
        if name == "FifoTopic":
            raise InvalidParameter("Invalid parameter: AttributeName")
        async with self.db.write() as s:
            row = await self._topic(s, arn)
            attrs = dict(row.attributes)
            if value == "" and name in ("DeliveryPolicy", "Policy", "KmsMasterKeyId"):
                attrs.pop(name, None)  # SNS: an empty value resets the attribute
            else:
                attrs[name] = value
            row.attributes = attrs

    async def exists(self, topic_arn: str) -> bool:
        """Whether Sesame holds a topic of this ARN (in any account)."""
        (rows,) = await self.db.fetch(
            [("SELECT 1 AS one FROM sns_topics WHERE arn = :arn", {"arn": topic_arn})]
        )
        return bool(rows)

    # -- subscriptions -------------------------------------------------------------------------------

    async def subscribe(
        self,
        account_id: str,
        topic_arn: str,
        protocol: str,
        endpoint: str | None,
        attributes: dict[str, str] | None = None,
    ) -> tuple[str, bool]:
        """The subscription's ARN and whether it is confirmed. A new (or still pending) one gets a
        SubscriptionConfirmation, by HTTP or by email; an endpoint already confirmed keeps its
        subscription, as in SNS."""
        protocol = protocol.lower() if protocol else protocol
        endpoint = check_endpoint(protocol, endpoint)
        attributes = dict(attributes or {})
        check_subscription_attributes(protocol, attributes)
        now = utcnow()
        async with self.db.write() as s:
            await self._topic(s, topic_arn)
            existing = await s.scalar(
                sa.select(SnsSubscription).where(
                    SnsSubscription.topic_arn == topic_arn,
                    SnsSubscription.protocol == protocol,
                    SnsSubscription.endpoint == endpoint,
                )
            )
            if existing is not None and existing.status == "confirmed":
                return existing.arn, True
            if existing is not None and existing.status == "deleted":
                existing.status = "pending"  # unsubscribed, and now asked for again: confirm anew
            if existing is None:
                existing = SnsSubscription(
                    arn=f"{topic_arn}:{uuid.uuid4()}",
                    topic_arn=topic_arn,
                    account_id=account_id,
                    protocol=protocol,
                    endpoint=endpoint,
                    status="pending",
                    token=secrets.token_hex(64),
                    token_expires_at=now + TOKEN_LIFETIME,
                    attributes=attributes,
                )
                s.add(existing)
                await s.flush()
            else:  # asked again: a fresh confirmation, with the token good for three more days
                existing.token_expires_at = now + TOKEN_LIFETIME
                existing.attributes = {**existing.attributes, **attributes}
            s.add(
                SnsDelivery(
                    subscription_arn=existing.arn,
                    message_id=str(uuid.uuid4()),
                    kind="SubscriptionConfirmation",
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            arn = existing.arn
        self._wake()
        return arn, False

    async def confirm(self, topic_arn: str, token: str, authenticate_on_unsubscribe: bool = False) -> str:
        """Confirm the subscription ``token`` was sent for; its ARN (again, if it was confirmed). The
        SubscribeURL of an UnsubscribeConfirmation restores the subscription the same way."""
        async with self.db.write() as s:
            row = await s.scalar(sa.select(SnsSubscription).where(SnsSubscription.token == token))
            if row is None or row.topic_arn != topic_arn:
                await self._topic(s, topic_arn)
                raise InvalidParameter("Invalid token")
            if row.status != "confirmed":
                if row.token_expires_at < utcnow():
                    raise InvalidParameter("Invalid token")
                row.status, row.confirmed_at = "confirmed", utcnow()
            if authenticate_on_unsubscribe:
                row.authenticate_on_unsubscribe = True
            return row.arn

    async def subscription(self, arn: str) -> SnsSubscription:
        async with self.db.read() as s:
            row = await s.get(SnsSubscription, arn)
        if row is None or row.status == "deleted":
            raise NotFound("Subscription does not exist")
        return row

    async def unsubscribe(self, arn: str) -> None:
        """End the subscription: the deliveries it still had coming are dropped, and an HTTP/S endpoint
        gets SNS's UnsubscribeConfirmation, whose SubscribeURL restores the subscription within three
        days. The row is kept (status ``deleted``) for that, and pruned later."""
        now = utcnow()
        async with self.db.write() as s:
            row = await s.get(SnsSubscription, arn)
            if row is None or row.status == "deleted":
                raise NotFound("Subscription does not exist")
            await s.execute(sa.delete(SnsDelivery).where(SnsDelivery.subscription_arn == arn))
            was_confirmed = row.status == "confirmed"
            row.status, row.token_expires_at = "deleted", now + TOKEN_LIFETIME
            if was_confirmed and row.protocol in ("http", "https"):
                s.add(
                    SnsDelivery(
                        subscription_arn=arn,
                        message_id=str(uuid.uuid4()),
                        kind="UnsubscribeConfirmation",
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        self._wake()

    async def list_subscriptions(
        self, account_id: str, region: str, topic_arn: str | None, after: str | None
    ) -> tuple[list[Subscription], str | None]:
        query = sa.select(SnsSubscription).join(SnsTopic, SnsTopic.arn == SnsSubscription.topic_arn)
        query = query.where(SnsSubscription.status != "deleted")
        if topic_arn is not None:
            query = query.where(SnsSubscription.topic_arn == topic_arn)
        else:
            query = query.where(SnsTopic.account_id == account_id, SnsTopic.region == region)
        rows, next_token = await self.db.page(query, SnsSubscription.arn, after, PAGE)
        return [
            Subscription(r.arn, r.account_id, r.protocol, r.endpoint, r.topic_arn, r.status == "confirmed")
            for r in rows
        ], next_token

    async def require_topic(self, arn: str) -> None:
        if not await self.exists(arn):
            raise TopicNotFound(arn)

    # -- publishing ----------------------------------------------------------------------------------

    async def publish(
        self,
        topic_arn: str,
        message: str,
        subject: str | None = None,
        *,
        attributes: dict[str, Any] | None = None,
        structure: str | None = None,
    ) -> str:
        """Publish to a topic Sesame holds; the MessageId once the message and its deliveries (one per
        confirmed subscription) are committed. TopicNotFound if Sesame has no such topic."""
        check_message(message, subject, structure)
        item = _Publish(str(uuid.uuid4()), topic_arn, message, subject, structure, attributes or {})
        outcome: SesameError | None = await self.db.writer.submit(self._publish, item)
        if outcome is not None:
            raise outcome
        return item.message_id

    async def _write_publishes(self, s: AsyncSession, batch: list[_Publish]) -> list[SesameError | None]:
        """Inside the group commit: the messages of topics that exist, and their deliveries."""
        topics = sorted({p.topic_arn for p in batch})
        found = set(await s.scalars(sa.select(SnsTopic.arn).where(SnsTopic.arn.in_(topics))))
        subscribers: dict[str, list[str]] = {}
        for topic, arn in await s.execute(
            sa.select(SnsSubscription.topic_arn, SnsSubscription.arn).where(
                SnsSubscription.topic_arn.in_(topics), SnsSubscription.status == "confirmed"
            )
        ):
            subscribers.setdefault(topic, []).append(arn)
        now = utcnow()
        messages: list[dict[str, Any]] = []
        deliveries: list[dict[str, Any]] = []
        outcomes: list[SesameError | None] = []
        for p in batch:
            if p.topic_arn not in found:
                outcomes.append(TopicNotFound(p.topic_arn))
                continue
            outcomes.append(None)
            subs = subscribers.get(p.topic_arn)
            if not subs:
                continue  # nobody to tell: SNS accepts the message all the same
            messages.append(
                {
                    "id": p.message_id,
                    "topic_arn": p.topic_arn,
                    "subject": p.subject,
                    "message": p.message,
                    "structure": p.structure,
                    "attributes": p.attributes,
                    "created_at": now,
                }
            )
            deliveries += [
                {
                    "subscription_arn": arn,
                    "message_id": p.message_id,
                    "kind": "Notification",
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for arn in subs
            ]
        await insert(s, SnsMessage, messages)
        await insert(s, SnsDelivery, deliveries)
        return outcomes

    def _published(self, outcomes: list[SesameError | None]) -> None:
        if any(o is None for o in outcomes):
            self._wake()
