"""What Sesame's SNS checks before it takes a topic attribute, a subscription or a message, with SNS's
words for a refusal (InvalidParameter), and the documents it computes (a topic's default policy)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from sesame.domain.addresses import bare_address
from sesame.errors import SesameError
from sesame.integrations.sns import policy
from sesame.integrations.sns.errors import InvalidParameter

PROTOCOLS = ("http", "https", "email", "email-json")
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

DEFAULT_ATTRIBUTES = {"SignatureVersion": "1", "TracingConfig": "PassThrough"}


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


def check_topic_attribute(name: str, value: str) -> None:
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


def check_endpoint(protocol: str, endpoint: str | None) -> str:
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


def check_subscription_attributes(protocol: str, attributes: dict[str, str]) -> None:
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
