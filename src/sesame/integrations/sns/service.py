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

import base64
import datetime as dt
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.domain.addresses import bare_address
from sesame.errors import SesameError
from sesame.integrations.sns import arns, policy
from sesame.integrations.sns.errors import InvalidParameter, NotFound, TopicNotFound
from sesame.storage.db import Database
from sesame.storage.models import SnsDelivery, SnsMessage, SnsSubscription, SnsTopic, utcnow
from sesame.storage.writer import Work, insert

PROTOCOLS = ("http", "https", "email", "email-json")
PENDING_ARN = "pending confirmation"  # Subscribe's answer for a subscription not yet confirmed
LIST_PENDING = "PendingConfirmation"  # how List* show one
PAGE = 100  # SNS lists 100 topics or subscriptions a page
#: A confirmation token is good for three days, as SNS's.
TOKEN_LIFETIME = dt.timedelta(days=3)
MAX_MESSAGE_BYTES = 256 * 1024
MAX_ATTRIBUTES = 10
#: Topic attributes a caller may set, with what checks the value.
TOPIC_ATTRIBUTES: dict[str, Callable[[str], None] | None] = {
    "DisplayName": None,
    "Policy": None,
    "DeliveryPolicy": policy.check_topic_policy,
    "SignatureVersion": None,
    "TracingConfig": None,
    "KmsMasterKeyId": None,
    "ArchivePolicy": None,
    "DataProtectionPolicy": None,
    "ContentBasedDeduplication": None,
    "FifoTopic": None,
    **{
        f"{kind}{feedback}": None
        for kind in ("HTTP", "Application", "Lambda", "SQS", "Firehose")
        for feedback in ("SuccessFeedbackRoleArn", "SuccessFeedbackSampleRate", "FailureFeedbackRoleArn")
    },
}
SUBSCRIPTION_ATTRIBUTES = frozenset(
    {"DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy"}
    | {"SubscriptionRoleArn", "ReplayPolicy"}
)
DATA_TYPES = ("String", "Number", "Binary", "String.Array")


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
            _check_topic_attribute(key, value)
        if attributes.get("FifoTopic", "false") != "false":
            raise InvalidParameter("Invalid parameter: Sesame's SNS does not serve FIFO topics")
        arn = arns.topic_arn(region, account_id, name)
        async with self.db.write() as s:
            row = await s.get(SnsTopic, arn)
            if row is not None:
                # SNS answers the existing topic's ARN, unless the attributes asked for differ.
                if any(row.attributes.get(k, _DEFAULTS.get(k)) != v for k, v in attributes.items()):
                    raise InvalidParameter(
                        "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
                    )
                return arn
            s.add(SnsTopic(arn=arn, account_id=account_id, region=region, name=name, attributes=attributes))
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
            "SubscriptionsDeleted": "0",
            "EffectiveDeliveryPolicy": json.dumps(policy.default_topic_policy(), separators=(",", ":")),
            **_DEFAULTS,
            **row.attributes,
        }
        if "DeliveryPolicy" in row.attributes:
            attrs["EffectiveDeliveryPolicy"] = row.attributes["DeliveryPolicy"]
        return attrs

    async def set_topic_attribute(self, arn: str, name: str, value: str | None) -> None:
        value = value or ""
        _check_topic_attribute(name, value)
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
        endpoint = _check_endpoint(protocol, endpoint)
        attributes = dict(attributes or {})
        _check_subscription_attributes(protocol, attributes)
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
        """Confirm the subscription ``token`` was sent for; its ARN (again, if it was confirmed)."""
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
        if row is None:
            raise NotFound("Subscription does not exist")
        return row

    async def unsubscribe(self, arn: str) -> None:
        """Forget the subscription and the deliveries it still had coming."""
        async with self.db.write() as s:
            row = await s.get(SnsSubscription, arn)
            if row is None:
                raise NotFound("Subscription does not exist")
            await s.delete(row)

    async def list_subscriptions(
        self, account_id: str, region: str, topic_arn: str | None, after: str | None
    ) -> tuple[list[Subscription], str | None]:
        query = sa.select(SnsSubscription).join(SnsTopic, SnsTopic.arn == SnsSubscription.topic_arn)
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


_DEFAULTS = {"SignatureVersion": "1", "TracingConfig": "PassThrough"}


def default_policy(arn: str, account_id: str) -> dict[str, Any]:
    """The access policy SNS gives a new topic: its owner may do everything."""
    actions = [
        "SNS:GetTopicAttributes",
        "SNS:SetTopicAttributes",
        "SNS:AddPermission",
        "SNS:RemovePermission",
        "SNS:DeleteTopic",
        "SNS:Subscribe",
        "SNS:ListSubscriptionsByTopic",
        "SNS:Publish",
    ]
    return {
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [
            {
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": actions,
                "Resource": arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": account_id}},
            }
        ],
    }


def _check_topic_attribute(name: str, value: str) -> None:
    if name not in TOPIC_ATTRIBUTES:
        raise InvalidParameter("Invalid parameter: AttributeName")
    if name == "SignatureVersion" and value not in ("1", "2"):
        raise InvalidParameter("Invalid parameter: SignatureVersion")
    if name in ("Policy", "DataProtectionPolicy", "ArchivePolicy") and value:
        try:
            json.loads(value)
        except ValueError:
            raise InvalidParameter(f"Invalid parameter: {name}") from None
    check = TOPIC_ATTRIBUTES[name]
    if check is not None and value:
        check(value)


def _check_endpoint(protocol: str, endpoint: str | None) -> str:
    if protocol not in PROTOCOLS:
        raise InvalidParameter(
            f"Invalid parameter: Amazon SNS does not support this protocol string: {protocol}"
            if protocol not in ("sqs", "lambda", "sms", "application", "firehose")
            else f"Invalid parameter: Sesame's SNS does not deliver to protocol {protocol}"
            f" (only {', '.join(PROTOCOLS)})"
        )
    if not endpoint:
        raise InvalidParameter("Invalid parameter: Endpoint")
    if protocol in ("http", "https"):
        if not endpoint.lower().startswith(f"{protocol}://") or len(endpoint) <= len(protocol) + 3:
            raise InvalidParameter("Invalid parameter: Endpoint must match the specified protocol")
        return endpoint
    try:
        return bare_address(endpoint)
    except SesameError:
        raise InvalidParameter("Invalid parameter: Email address") from None


def _check_subscription_attributes(protocol: str, attributes: dict[str, str]) -> None:
    for name, value in attributes.items():
        if name not in SUBSCRIPTION_ATTRIBUTES:
            raise InvalidParameter(f"Invalid parameter: Attributes Reason: Unknown attribute: {name}")
        if name == "RawMessageDelivery":
            if value.lower() not in ("true", "false"):
                raise InvalidParameter("Invalid parameter: Attributes Reason: RawMessageDelivery")
            if protocol in ("email", "email-json") and value.lower() == "true":
                raise InvalidParameter(
                    "Invalid parameter: Attributes Reason: Delivery protocol [email] does not support"
                    " raw message delivery"
                )
        elif name == "DeliveryPolicy":
            if protocol not in ("http", "https"):
                raise InvalidParameter("Invalid parameter: Attributes Reason: DeliveryPolicy: HTTP/S only")
            policy.check_subscription_policy(value)
        elif name in ("FilterPolicy", "FilterPolicyScope", "ReplayPolicy", "RedrivePolicy") and value:
            # Refused rather than ignored: a subscriber would get messages its filter excludes.
            raise InvalidParameter(
                f"Invalid parameter: Attributes Reason: Sesame's SNS does not support {name}"
            )


def check_message(message: str, subject: str | None, structure: str | None) -> None:
    if not message:
        raise InvalidParameter("Invalid parameter: Empty message")
    if len(message.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise InvalidParameter("Invalid parameter: Message too long")
    if subject is not None:
        # SNS: ASCII, starting with a letter, digit or punctuation, no line breaks, under 100 characters.
        if not subject or len(subject) > 100 or not subject.isascii() or any(c in subject for c in "\r\n"):
            raise InvalidParameter("Invalid parameter: Subject")
    if structure is not None:
        if structure != "json":
            raise InvalidParameter("Invalid parameter: MessageStructure")
        try:
            texts = json.loads(message)
        except ValueError:
            raise InvalidParameter(
                "Invalid parameter: Message Structure - JSON message body failed to parse"
            ) from None
        if not isinstance(texts, dict) or "default" not in texts:
            raise InvalidParameter(
                "Invalid parameter: Message Structure - No default entry in JSON message body"
            )


def message_attributes(given: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Publish's MessageAttributes as notifications carry them: ``{"Type": …, "Value": …}``."""
    if len(given) > MAX_ATTRIBUTES:
        raise InvalidParameter(
            f"Invalid parameter: MessageAttributes Reason: Number of message attributes [{len(given)}]"
            f" exceeds the allowed maximum [{MAX_ATTRIBUTES}]."
        )
    out: dict[str, Any] = {}
    for name, attr in given.items():
        kind = attr.get("DataType", "")
        if kind.split(".", 1)[0] not in ("String", "Number", "Binary"):
            raise InvalidParameter(
                f"Invalid parameter: MessageAttributes Reason: The message attribute '{name}' has an invalid"
                f" message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )
        if kind.startswith("Binary"):
            value = attr.get("BinaryValue")
            if value is None:
                raise InvalidParameter(f"Invalid parameter: MessageAttributes Reason: '{name}' has no value")
            out[name] = {"Type": kind, "Value": base64.b64encode(value).decode("ascii")}
        else:
            text = attr.get("StringValue")
            if text is None:
                raise InvalidParameter(f"Invalid parameter: MessageAttributes Reason: '{name}' has no value")
            out[name] = {"Type": kind, "Value": text}
    return out
