"""SNS ARNs: ``arn:PARTITION:sns:REGION:ACCOUNT:TOPIC`` and, for a subscription, ``…:TOPIC:UUID``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sesame.integrations.sns.errors import AuthorizationError, InvalidParameter

#: Topic names: 1-256 letters, digits, hyphens and underscores (a FIFO topic's name ends in ".fifo").
TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
_TOPIC_ARN = re.compile(r"arn:(aws[a-z-]*):sns:([a-z0-9-]+):([0-9]{12}):([A-Za-z0-9_.-]{1,256})")
_SUBSCRIPTION_ARN = re.compile(
    r"(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}):[0-9a-f-]{36}"
)


@dataclass(frozen=True)
class TopicArn:
    region: str
    account_id: str
    name: str


def topic_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:sns:{region}:{account_id}:{name}"


def parse_topic(arn: str, parameter: str = "TopicArn") -> TopicArn:
    m = _TOPIC_ARN.fullmatch(arn)
    if m is None:
        raise InvalidParameter(f"Invalid parameter: {parameter}")
    return TopicArn(m[2], m[3], m[4])


def topic_of_subscription(arn: str) -> str:
    m = _SUBSCRIPTION_ARN.fullmatch(arn)
    if m is None:
        raise InvalidParameter("Invalid parameter: SubscriptionArn Reason: An ARN must have 6 or 7 elements")
    return m[1]


def check_owner(arn: str, account_id: str, region: str, action: str, parameter: str = "TopicArn") -> None:
    """A caller acts on topics of its own account, in the region it signed for (Sesame keeps no topic
    policies that could grant more)."""
    parsed = parse_topic(arn, parameter)
    if parsed.region != region:
        raise InvalidParameter(f"Invalid parameter: {parameter}")
    if parsed.account_id != account_id:
        raise AuthorizationError(
            f"User: arn:aws:iam::{account_id}:root is not authorized to perform: SNS:{action} on"
            f" resource: {arn}"
        )
