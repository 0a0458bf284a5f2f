"""The messages SNS sends to subscribers, field for field: SubscriptionConfirmation and Notification
JSON documents (HTTP/S bodies and email-json mail), and the texts of email subscriptions.

Field order follows the documents SNS sends (``Type``, ``MessageId``, …), which some consumers log or
compare byte for byte; the signature covers the fields ``signing.string_to_sign`` names.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from sesame.integrations.sns.signing import Signer

CONFIRMATION_SUBJECT = "AWS Notification - Subscription Confirmation"
DEFAULT_SUBJECT = "AWS Notification Message"


def timestamp(when: dt.datetime) -> str:
    """SNS's Timestamp: ISO 8601 in UTC with milliseconds, ``2012-04-26T20:45:04.751Z``."""
    when = when.astimezone(dt.UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


class Urls:
    """The links in messages, all served by Sesame (http/sns.py) under its public URL."""

    PREFIX = "/_sesame/sns"

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def subscribe(self, topic_arn: str, token: str) -> str:
        query = urlencode({"Action": "ConfirmSubscription", "TopicArn": topic_arn, "Token": token})
        return f"{self.base}{self.PREFIX}/confirm?{query}"

    def unsubscribe(self, subscription_arn: str) -> str:
        query = urlencode({"Action": "Unsubscribe", "SubscriptionArn": subscription_arn})
        return f"{self.base}{self.PREFIX}/unsubscribe?{query}"

    def cert(self, name: str) -> str:
        return f"{self.base}{self.PREFIX}/{name}"


def confirmation_text(topic_arn: str) -> str:
    return (
        f"You have chosen to subscribe to the topic {topic_arn}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message."
    )


def unsubscribe_text(subscription_arn: str) -> str:
    return (
        f"You have chosen to deactivate subscription {subscription_arn}.\n"
        "To cancel this operation and restore the subscription, visit the SubscribeURL included in this"
        " message."
    )


def confirmation(
    *,
    kind: str = "SubscriptionConfirmation",
    subscription_arn: str = "",
    message_id: str,
    token: str,
    topic_arn: str,
    when: dt.datetime,
    urls: Urls,
    signer: Signer,
    signature_version: str,
) -> dict[str, Any]:
    """A SubscriptionConfirmation, or (``kind``) the UnsubscribeConfirmation of ``subscription_arn``,
    whose SubscribeURL restores it: the two share their fields."""
    if kind == "SubscriptionConfirmation":
        text = confirmation_text(topic_arn)
    else:
        text = unsubscribe_text(subscription_arn)
    doc: dict[str, Any] = {
        "Type": kind,
        "MessageId": message_id,
        "Token": token,
        "TopicArn": topic_arn,
        "Message": text,
        "SubscribeURL": urls.subscribe(topic_arn, token),
        "Timestamp": timestamp(when),
        "SignatureVersion": signature_version,
    }
    doc["Signature"] = signer.sign(doc, signature_version)
    doc["SigningCertURL"] = urls.cert(signer.cert_name)
    return doc


def notification(
    *,
    message_id: str,
    topic_arn: str,
    subject: str | None,
    message: str,
    when: dt.datetime,
    subscription_arn: str,
    attributes: dict[str, Any],
    urls: Urls,
    signer: Signer,
    signature_version: str,
) -> dict[str, Any]:
    doc: dict[str, Any] = {"Type": "Notification", "MessageId": message_id, "TopicArn": topic_arn}
    if subject is not None:
        doc["Subject"] = subject
    doc["Message"] = message
    doc["Timestamp"] = timestamp(when)
    doc["SignatureVersion"] = signature_version
    doc["Signature"] = signer.sign(doc, signature_version)
    doc["SigningCertURL"] = urls.cert(signer.cert_name)
    doc["UnsubscribeURL"] = urls.unsubscribe(subscription_arn)
    if attributes:
        doc["MessageAttributes"] = attributes
    return doc


def for_protocol(message: str, structure: str | None, protocol: str) -> str:
    """The text a subscriber of ``protocol`` gets: with MessageStructure "json", its protocol's own
    text, else the "default" one (Publish checked that there is one)."""
    if structure != "json":
        return message
    texts = json.loads(message)
    text = texts.get(protocol, texts["default"])
    return text if isinstance(text, str) else json.dumps(text)


def body(doc: dict[str, Any]) -> bytes:
    """A JSON document as SNS writes it: indented, with the non-ASCII characters as they are."""
    return json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8")


def email_confirmation_text(topic_arn: str, display_name: str, link: str) -> str:
    return (
        f"You have chosen to subscribe to the topic:\n{topic_arn}\n\n"
        f"To confirm this subscription, click or visit the link below (if this was in error no action"
        f" is necessary):\n{link}\n\n"
        f"Topic: {display_name or topic_arn.rsplit(':', 1)[-1]}\n"
    )


def email_notification_text(message: str, unsubscribe_url: str) -> str:
    return (
        f"{message}\n\n--\n"
        "If you wish to stop receiving notifications from this topic, please click or visit the link"
        f" below to unsubscribe:\n{unsubscribe_url}\n"
    )
