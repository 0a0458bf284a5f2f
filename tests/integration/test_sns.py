"""Sesame's own SNS through boto3, against a real server on both databases: topics, the confirmation
flow, signed notifications to an HTTP receiver, email subscriptions, and SNS's errors."""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature

from sesame.testing.http_sink import HttpSink, Received, verify_sns_signature
from sesame.testing.servers import SesameProcess
from tests.conftest import Serve, client

SNS_XMLNS = "{http://sns.amazonaws.com/doc/2010-03-31/}"


def of_type(kind: str) -> Any:
    return lambda r: r.headers.get("x-amz-sns-message-type") == kind


@pytest.fixture
def sink() -> Any:
    with HttpSink() as s:
        yield s


def confirmed_subscription(sns: Any, sink: HttpSink, topic: str) -> tuple[str, Received]:
    """Subscribe the sink and confirm it by following SubscribeURL, as a subscriber does."""
    assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=sink.url)["SubscriptionArn"] == (
        "pending confirmation"
    )
    (confirmation,) = sink.wait_for(of_type("SubscriptionConfirmation"))
    answer = httpx.get(confirmation.json()["SubscribeURL"])
    assert answer.status_code == 200
    arn = ET.fromstring(answer.text).findtext(f".//{SNS_XMLNS}SubscriptionArn")
    assert arn is not None and arn.startswith(f"{topic}:")
    return arn, confirmation


@pytest.mark.parametrize("version", ["1", "2"])
def test_http_subscription_from_confirmation_to_signed_notification(
    dev: SesameProcess, sink: HttpSink, version: str
) -> None:
    sns = client("sns", dev.endpoint)
    topic = sns.create_topic(Name=f"orders-v{version}")["TopicArn"]
    assert topic == f"arn:aws:sns:us-east-1:000000000000:orders-v{version}"
    sns.set_topic_attributes(TopicArn=topic, AttributeName="SignatureVersion", AttributeValue=version)

    arn, confirmation = confirmed_subscription(sns, sink, topic)
    doc = confirmation.json()
    assert confirmation.headers["content-type"].startswith("text/plain")
    assert confirmation.headers["x-amz-sns-topic-arn"] == topic
    assert confirmation.headers["x-amz-sns-message-id"] == doc["MessageId"]
    assert "x-amz-sns-subscription-arn" not in confirmation.headers  # not confirmed when it was sent
    assert list(doc) == [
        "Type", "MessageId", "Token", "TopicArn", "Message", "SubscribeURL", "Timestamp",
        "SignatureVersion", "Signature", "SigningCertURL",
    ]  # fmt: skip
    assert doc["SignatureVersion"] == version
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["Timestamp"])
    verify_sns_signature(doc)
    forged = {**doc, "TopicArn": topic + "x"}
    with pytest.raises(InvalidSignature):
        verify_sns_signature(forged)
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["SubscriptionArn"], s["Protocol"], s["Endpoint"]) for s in listed] == [(arn, "http", sink.url)]

    message_id = sns.publish(
        TopicArn=topic,
        Message='{"eventType": "Delivery"}\nsecond line',
        Subject="Amazon SES Email Event Notification",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "delivery"}},
    )["MessageId"]
    (note,) = sink.wait_for(of_type("Notification"))
    body = note.json()
    assert note.headers["x-amz-sns-message-id"] == message_id == body["MessageId"]
    assert note.headers["x-amz-sns-subscription-arn"] == arn
    assert body["Message"] == '{"eventType": "Delivery"}\nsecond line'
    assert body["Subject"] == "Amazon SES Email Event Notification"
    assert body["TopicArn"] == topic
    assert body["MessageAttributes"] == {"kind": {"Type": "String", "Value": "delivery"}}
    assert body["SignatureVersion"] == version
    verify_sns_signature(body)
    with pytest.raises(InvalidSignature):
        verify_sns_signature({**body, "Message": "tampered"})

    # The UnsubscribeURL ends the subscription: nothing more is delivered.
    assert httpx.get(body["UnsubscribeURL"]).status_code == 200
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attrs["SubscriptionsConfirmed"] == "0" and attrs["SignatureVersion"] == version


def test_confirm_subscription_api_and_pending_listing(dev: SesameProcess, sink: HttpSink) -> None:
    sns = client("sns", dev.endpoint)
    topic = sns.create_topic(Name="pending")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=sink.url)
    (confirmation,) = sink.wait_for(of_type("SubscriptionConfirmation"))
    (listed,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert listed["SubscriptionArn"] == "PendingConfirmation"
    # Not confirmed: a Publish reaches nobody.
    sns.publish(TopicArn=topic, Message="too early")
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.confirm_subscription(TopicArn=topic, Token="0" * 128)

    arn = sns.confirm_subscription(TopicArn=topic, Token=confirmation.json()["Token"])["SubscriptionArn"]
    assert sns.list_subscriptions()["Subscriptions"][-1:] != []
    assert arn in [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]]
    sns.publish(TopicArn=topic, Message="in time")
    (note,) = sink.wait_for(of_type("Notification"))
    assert note.json()["Message"] == "in time"
    assert "Subject" not in note.json()
    # Subscribing a confirmed endpoint again answers the same subscription, sends nothing new.
    assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=sink.url)["SubscriptionArn"] == arn
    sns.unsubscribe(SubscriptionArn=arn)
    assert [r.json()["Message"] for r in sink.received if of_type("Notification")(r)] == ["in time"]


def test_raw_message_delivery(dev: SesameProcess, sink: HttpSink) -> None:
    sns = client("sns", dev.endpoint)
    topic = sns.create_topic(Name="raw")["TopicArn"]
    sns.subscribe(
        TopicArn=topic, Protocol="http", Endpoint=sink.url, Attributes={"RawMessageDelivery": "true"}
    )
    (confirmation,) = sink.wait_for(of_type("SubscriptionConfirmation"))
    httpx.get(confirmation.json()["SubscribeURL"]).raise_for_status()
    sns.publish(TopicArn=topic, Message="just this")
    (note,) = sink.wait_for(of_type("Notification"))
    assert note.body == b"just this"
    assert note.headers["x-amz-sns-rawdelivery"] == "true"


def captured(dev: SesameProcess, to: str) -> list[dict[str, Any]]:
    messages = httpx.get(f"{dev.endpoint}/_aws/ses").json()["messages"]
    return [m for m in messages if to in m["Destination"].get("ToAddresses", [])]


def wait_for_mail(dev: SesameProcess, to: str, count: int) -> list[dict[str, Any]]:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = captured(dev, to)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no mail to {to}: {captured(dev, to)}")


def test_email_subscription_gets_a_confirmation_email_then_notifications(dev: SesameProcess) -> None:
    sns = client("sns", dev.endpoint)
    topic = sns.create_topic(Name="mail", Attributes={"DisplayName": "Ops"})["TopicArn"]
    to = f"ops-{uuid.uuid4().hex[:8]}@example.org"
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=to)
    (mail,) = wait_for_mail(dev, to, 1)
    assert mail["Subject"] == "AWS Notification - Subscription Confirmation"
    text = mail["Body"]["text_part"]
    assert topic in text
    link = re.search(r"http://\S+/_sesame/sns/confirm\?\S+", text)
    assert link is not None
    assert httpx.get(link[0]).status_code == 200
    (listed,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert listed["Protocol"] == "email" and listed["SubscriptionArn"].startswith(topic + ":")

    sns.publish(TopicArn=topic, Message="The disk is full.", Subject="Alarm")
    mails = wait_for_mail(dev, to, 2)
    note = next(m for m in mails if m["Subject"] == "Alarm")
    assert note["Body"]["text_part"].startswith("The disk is full.")
    assert "/_sesame/sns/unsubscribe?" in note["Body"]["text_part"]


def test_email_json_subscription_gets_the_signed_document(dev: SesameProcess) -> None:
    sns = client("sns", dev.endpoint)
    topic = sns.create_topic(Name="mail-json")["TopicArn"]
    to = f"json-{uuid.uuid4().hex[:8]}@example.org"
    sns.subscribe(TopicArn=topic, Protocol="email-json", Endpoint=to)
    (mail,) = wait_for_mail(dev, to, 1)
    doc = json.loads(mail["Body"]["text_part"])
    assert doc["Type"] == "SubscriptionConfirmation"
    verify_sns_signature(doc)
    sns.confirm_subscription(TopicArn=topic, Token=doc["Token"])
    sns.publish(TopicArn=topic, Message="as JSON")
    mails = wait_for_mail(dev, to, 2)
    (note,) = [d for d in (json.loads(m["Body"]["text_part"]) for m in mails) if d["Type"] == "Notification"]
    assert note["Message"] == "as JSON"
    verify_sns_signature(note)


def test_errors_as_sns_spells_them(dev: SesameProcess) -> None:
    sns = client("sns", dev.endpoint)
    missing = "arn:aws:sns:us-east-1:000000000000:no-such-topic"
    for call in (
        lambda: sns.get_topic_attributes(TopicArn=missing),
        lambda: sns.publish(TopicArn=missing, Message="x"),
        lambda: sns.subscribe(TopicArn=missing, Protocol="http", Endpoint="http://127.0.0.1:9/x"),
        lambda: sns.list_subscriptions_by_topic(TopicArn=missing),
        lambda: sns.set_topic_attributes(TopicArn=missing, AttributeName="DisplayName", AttributeValue="x"),
    ):
        with pytest.raises(sns.exceptions.NotFoundException) as info:
            call()
        assert info.value.response["Error"]["Message"] == "Topic does not exist"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.unsubscribe(SubscriptionArn=f"{missing}:{uuid.uuid4()}")
    other = "arn:aws:sns:us-east-1:111122223333:theirs"
    with pytest.raises(sns.exceptions.AuthorizationErrorException):
        sns.publish(TopicArn=other, Message="x")
    topic = sns.create_topic(Name="errors")["TopicArn"]
    bad = [
        lambda: sns.create_topic(Name="no spaces"),
        lambda: sns.publish(TopicArn="not-an-arn", Message="x"),
        lambda: sns.publish(TopicArn=topic, Message="x", Subject="two\nlines"),
        lambda: sns.publish(TopicArn=topic, Message="{}", MessageStructure="json"),
        lambda: sns.subscribe(TopicArn=topic, Protocol="http", Endpoint="ftp://example.org"),
        lambda: sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:0:q"),
        lambda: sns.set_topic_attributes(
            TopicArn=topic, AttributeName="SignatureVersion", AttributeValue="3"
        ),
        lambda: sns.set_topic_attributes(TopicArn=topic, AttributeName="DeliveryPolicy", AttributeValue="{"),
    ]
    for call in bad:
        with pytest.raises(sns.exceptions.InvalidParameterException):
            call()
    # Operations Sesame's SNS does not implement answer the typed NotImplemented error.
    with pytest.raises(sns.exceptions.ClientError) as info:
        sns.list_platform_applications()
    assert info.value.response["Error"]["Code"] == "NotImplemented"
    # Deleting is idempotent, and takes the topic out of ListTopics.
    sns.delete_topic(TopicArn=topic)
    sns.delete_topic(TopicArn=topic)
    assert topic not in [t["TopicArn"] for t in sns.list_topics()["Topics"]]


def test_create_topic_is_idempotent_and_lists_page(dev: SesameProcess) -> None:
    sns = client("sns", dev.endpoint, key="222233334444")  # an account of its own
    first = sns.create_topic(Name="same")["TopicArn"]
    assert sns.create_topic(Name="same")["TopicArn"] == first
    for i in range(101):
        sns.create_topic(Name=f"t{i:03d}")
    page = sns.list_topics()
    assert len(page["Topics"]) == 100 and "NextToken" in page
    rest = sns.list_topics(NextToken=page["NextToken"])
    assert "NextToken" not in rest
    assert len(page["Topics"]) + len(rest["Topics"]) == 102


def test_query_requests_are_told_apart(dev: SesameProcess) -> None:
    """Unsigned dev-mode query requests: SNS's Version makes it SNS; SES v1 (with or without its own
    Version) stays SES v1."""
    sns = httpx.post(dev.endpoint, data={"Action": "ListTopics", "Version": "2010-03-31"})
    assert sns.status_code == 200
    assert ET.fromstring(sns.text).tag == f"{SNS_XMLNS}ListTopicsResponse"
    for form in ({"Action": "ListIdentities"}, {"Action": "ListIdentities", "Version": "2010-12-01"}):
        ses = httpx.post(dev.endpoint, data=form)
        assert ses.status_code == 200
        assert (
            ET.fromstring(ses.text).tag == "{http://ses.amazonaws.com/doc/2010-12-01/}ListIdentitiesResponse"
        )
    # An SNS action under SES's version is no SES operation.
    wrong = httpx.post(dev.endpoint, data={"Action": "ListTopics", "Version": "2010-12-01"})
    assert wrong.status_code == 400 and "InvalidAction" in wrong.text


def test_serve_mode_signs_sns_like_ses_and_keeps_accounts_apart(serve: Serve) -> None:
    alice, bob = serve.new_account("alice"), serve.new_account("bob")
    sns_a, sns_b = serve.client("sns", alice), serve.client("sns", bob)
    topic = sns_a.create_topic(Name="alerts")["TopicArn"]
    assert topic.split(":")[4] == alice["AccountId"]
    assert [t["TopicArn"] for t in sns_b.list_topics()["Topics"]] == []
    with pytest.raises(sns_b.exceptions.AuthorizationErrorException):
        sns_b.publish(TopicArn=topic, Message="not yours")
    with pytest.raises(sns_b.exceptions.AuthorizationErrorException):
        sns_b.get_topic_attributes(TopicArn=topic)
    assert sns_a.publish(TopicArn=topic, Message="mine")["MessageId"]
    # SES v1 on the same endpoint and keys still answers as SES.
    assert serve.client("ses", alice).list_identities()["Identities"] == []
    bad_key = client("sns", serve.endpoint, key="AKIANOSUCHKEY0000000", secret="x")
    with pytest.raises(bad_key.exceptions.ClientError) as info:
        bad_key.list_topics()
    assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_links_refuse_what_they_should(dev: SesameProcess, sink: HttpSink) -> None:
    sns = client("sns", dev.endpoint)
    topic = sns.create_topic(Name="links")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=sink.url)
    (confirmation,) = sink.wait_for(of_type("SubscriptionConfirmation"))
    doc = confirmation.json()
    forged = httpx.get(doc["SubscribeURL"].replace(doc["Token"], "f" * 128))
    assert forged.status_code == 400 and "<Code>InvalidParameter</Code>" in forged.text
    assert httpx.get(doc["SigningCertURL"].replace("SimpleNotificationService-", "Other-")).status_code == 404
    # Confirmed with AuthenticateOnUnsubscribe, the subscription ignores its unsigned UnsubscribeURL.
    arn = sns.confirm_subscription(TopicArn=topic, Token=doc["Token"], AuthenticateOnUnsubscribe="true")[
        "SubscriptionArn"
    ]
    sns.publish(TopicArn=topic, Message="x")
    (note,) = sink.wait_for(of_type("Notification"))
    refused = httpx.get(note.json()["UnsubscribeURL"])
    assert refused.status_code == 403 and "<Code>AuthorizationError</Code>" in refused.text
    assert [
        s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    ] == [arn]
    sns.unsubscribe(SubscriptionArn=arn)  # a signed Unsubscribe still works
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_unsubscribing_sends_an_unsubscribe_confirmation_that_can_restore_it(
    dev: SesameProcess, sink: HttpSink
) -> None:
    sns = client("sns", dev.endpoint)
    topic = sns.create_topic(Name="farewell")["TopicArn"]
    arn, _ = confirmed_subscription(sns, sink, topic)
    sns.unsubscribe(SubscriptionArn=arn)
    (bye,) = sink.wait_for(of_type("UnsubscribeConfirmation"))
    doc = bye.json()
    assert bye.headers["x-amz-sns-subscription-arn"] == arn
    assert doc["Type"] == "UnsubscribeConfirmation" and arn in doc["Message"]
    verify_sns_signature(doc)
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsDeleted"] == "1"
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.unsubscribe(SubscriptionArn=arn)
    sns.publish(TopicArn=topic, Message="nobody hears this")
    # The SubscribeURL of the farewell restores the subscription, under its old ARN.
    restored = httpx.get(doc["SubscribeURL"])
    assert restored.status_code == 200 and arn in restored.text
    sns.publish(TopicArn=topic, Message="welcome back")
    (note,) = sink.wait_for(of_type("Notification"))
    assert note.json()["Message"] == "welcome back"
