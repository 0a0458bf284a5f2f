"""Receiving notifications and Lambda events: field names, order and types as SES writes them. Shapes
are pinned by golden files (tests/golden/receiving/): keys in order, values reduced to their JSON types
except the few that are always the same."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from sesame.receiving.notifications import (
    SNS_CONTENT_LIMIT,
    NotificationTooLarge,
    action_object,
    lambda_event,
    mail_object,
    receipt_object,
    received_notification,
    s3_object_key,
)

GOLDEN = Path(__file__).parent.parent / "golden" / "receiving"
LITERALS = {"notificationType", "type", "eventSource", "eventVersion", "encoding", "invocationType"}
WHEN = dt.datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=dt.UTC)
RAW = (
    b"Return-Path: <bounces@sender.example>\r\n"
    b"Received: from mx.sender.example by inbound-smtp.us-east-1.example with SMTP id m1\r\n"
    b"X-SES-Spam-Verdict: PASS\r\n"
    b"X-SES-Virus-Verdict: PASS\r\n"
    b'From: "Doe, John" <john@sender.example>\r\n'
    b"Reply-To: replies@sender.example\r\n"
    b'To: "rcpt@example.com" <rcpt@example.com>, other@example.com\r\n'
    b"Cc: Copy Person <copy@example.com>\r\n"
    b"Bcc: hidden@example.com\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    b"Date: Sun, 1 Mar 2026 12:30:00 +0000\r\n"
    b"Message-ID: <abc@sender.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=UTF-8\r\n"
    b"\r\n"
    b"Hello\r\n"
)
VERDICTS = {
    "dmarcVerdict": {"status": "FAIL"},
    "spamVerdict": {"status": "PASS"},
    "dkimVerdict": {"status": "GRAY"},
    "virusVerdict": {"status": "PASS"},
    "spfVerdict": {"status": "PASS"},
    "dmarcPolicy": "reject",
}


def shape(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}  # order kept: the golden pins it
    if isinstance(value, list):
        return [shape(value[0], key)] if value else []
    if key in LITERALS:
        return value
    return {str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), None)


def golden(name: str, record: dict[str, Any]) -> None:
    """Compare the record's shape, key order included, with the golden file; UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / f"{name}.json"
    got = json.dumps(shape(record), indent=2) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
    assert got == path.read_text(), f"{name}: {json.dumps(record, indent=2)}"


def mail() -> dict[str, Any]:
    return mail_object(timestamp=WHEN, source="bounces@sender.example", message_id="m1", raw=RAW)


def receipt(action: dict[str, Any], verdicts: dict[str, Any] = VERDICTS) -> dict[str, Any]:
    return receipt_object(
        timestamp=WHEN, processing_ms=222, recipients=["rcpt@example.com"], verdicts=verdicts, action=action
    )


def test_mail_object() -> None:
    got = mail()
    assert list(got) == [
        "timestamp",
        "source",
        "messageId",
        "destination",
        "headersTruncated",
        "headers",
        "commonHeaders",
    ]
    assert got["timestamp"] == "2026-03-01T12:30:05.123Z"
    assert got["messageId"] == "m1"
    # To and CC of the header, never Bcc or the envelope.
    assert got["destination"] == ["rcpt@example.com", "other@example.com", "copy@example.com"]
    assert got["headersTruncated"] is False
    assert got["headers"][0] == {"name": "Return-Path", "value": "<bounces@sender.example>"}
    assert [h["name"] for h in got["headers"]][-1] == "Content-Type"
    assert got["commonHeaders"] == {
        "returnPath": "bounces@sender.example",
        "from": ['"Doe, John" <john@sender.example>'],
        "replyTo": ["replies@sender.example"],
        "date": "Sun, 1 Mar 2026 12:30:00 +0000",
        "to": ['"rcpt@example.com" <rcpt@example.com>', "other@example.com"],
        "cc": ["Copy Person <copy@example.com>"],
        "bcc": ["hidden@example.com"],
        "messageId": "<abc@sender.example>",
        "subject": "Grüße",
    }
    assert list(got["commonHeaders"]) == [
        "returnPath", "from", "replyTo", "date", "to", "cc", "bcc", "messageId", "subject",
    ]  # fmt: skip


def test_headers_past_10_kb_are_truncated() -> None:
    many = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"x" * 500) for i in range(40))
    got = mail_object(timestamp=WHEN, source="s@example.com", message_id="m2", raw=many + RAW)
    assert got["headersTruncated"] is True
    assert sum(len(h["name"]) + len(h["value"]) for h in got["headers"]) <= 10 * 1024
    assert got["headers"][0]["name"] == "X-Filler-0"
    assert got["commonHeaders"]["messageId"] == "<abc@sender.example>"  # parsed from every field


def test_receipt_orders_the_verdicts_and_keeps_dmarc_policy_only_when_given() -> None:
    got = receipt(action_object("StopAction", {"Scope": "RuleSet"}))
    assert list(got) == [
        "timestamp", "processingTimeMillis", "recipients", "spamVerdict", "virusVerdict", "spfVerdict",
        "dkimVerdict", "dmarcVerdict", "dmarcPolicy", "action",
    ]  # fmt: skip
    assert got["dmarcPolicy"] == "reject"
    assert got["action"] == {"type": "Stop"}
    unscanned = {k: v for k, v in VERDICTS.items() if k not in ("spamVerdict", "virusVerdict", "dmarcPolicy")}
    assert "spamVerdict" not in receipt({"type": "Stop"}, unscanned)


@pytest.mark.parametrize(
    ("member", "params", "expected"),
    [
        (
            "S3Action",
            {"BucketName": "b", "ObjectKeyPrefix": "inbox", "TopicArn": "arn:t", "KmsKeyArn": "arn:k"},
            {
                "type": "S3",
                "topicArn": "arn:t",
                "bucketName": "b",
                "objectKeyPrefix": "inbox",
                "objectKey": "inbox/m1",
            },
        ),
        ("S3Action", {"BucketName": "b"}, {"type": "S3", "bucketName": "b", "objectKey": "m1"}),
        ("SNSAction", {"TopicArn": "arn:t"}, {"type": "SNS", "topicArn": "arn:t", "encoding": "UTF8"}),
        (
            "SNSAction",
            {"TopicArn": "arn:t", "Encoding": "Base64"},
            {"type": "SNS", "topicArn": "arn:t", "encoding": "BASE64"},
        ),
        (
            "LambdaAction",
            {"FunctionArn": "arn:f"},
            {"type": "Lambda", "functionArn": "arn:f", "invocationType": "Event"},
        ),
        (
            "BounceAction",
            {
                "SmtpReplyCode": "550",
                "StatusCode": "5.1.1",
                "Message": "no",
                "Sender": "a@example.com",
                "TopicArn": "arn:t",
            },
            {
                "type": "Bounce",
                "topicArn": "arn:t",
                "smtpReplyCode": "550",
                "statusCode": "5.1.1",
                "message": "no",
                "sender": "a@example.com",
            },
        ),
        ("StopAction", {"Scope": "RuleSet", "TopicArn": "arn:t"}, {"type": "Stop", "topicArn": "arn:t"}),
        ("WorkMail", {"OrganizationArn": "arn:o"}, {"type": "WorkMail", "organizationArn": "arn:o"}),
    ],
)
def test_action_objects(member: str, params: dict[str, Any], expected: dict[str, Any]) -> None:
    got = action_object(member, params, message_id="m1")
    assert got == expected
    assert list(got) == list(expected)


def test_add_header_actions_have_no_action_object() -> None:
    with pytest.raises(ValueError):
        action_object("AddHeaderAction", {"HeaderName": "X", "HeaderValue": "y"})


def test_s3_object_keys() -> None:
    assert s3_object_key(None, "m1") == "m1"
    assert s3_object_key("", "m1") == "m1"
    assert s3_object_key("mail/", "m1") == "mail/m1"
    assert s3_object_key("mail", "m1") == "mail/m1"


def test_sns_notification_carries_the_message() -> None:
    text = received_notification(receipt(action_object("SNSAction", {"TopicArn": "arn:t"})), mail(), RAW)
    record = json.loads(text)
    assert list(record) == ["notificationType", "mail", "receipt", "content"]
    assert record["notificationType"] == "Received"
    assert record["content"] == RAW.decode()
    golden("notification-SNS", record)


def test_sns_notification_in_base64_keeps_every_byte() -> None:
    raw = RAW.replace(b"Hello", b"caf\xe9 in latin-1")
    action = action_object("SNSAction", {"TopicArn": "arn:t", "Encoding": "Base64"})
    record = json.loads(received_notification(receipt(action), mail(), raw, "Base64"))
    assert base64.b64decode(record["content"]) == raw


def test_sns_notification_over_150_kb_is_refused() -> None:
    big = RAW + b"x" * (SNS_CONTENT_LIMIT - len(RAW) + 1)
    action = action_object("SNSAction", {"TopicArn": "arn:t"})
    with pytest.raises(NotificationTooLarge):
        received_notification(receipt(action), mail(), big)
    received_notification(receipt(action), mail(), big[:-1])  # exactly 150 KB passes


def test_alert_notification_has_no_content() -> None:
    action = action_object("S3Action", {"BucketName": "b", "TopicArn": "arn:t"}, message_id="m1")
    record = json.loads(received_notification(receipt(action), mail()))
    assert "content" not in record
    golden("notification-S3", record)


def test_lambda_event() -> None:
    action = action_object("LambdaAction", {"FunctionArn": "arn:f", "InvocationType": "RequestResponse"})
    event = lambda_event(receipt(action), mail())
    assert event["Records"][0]["eventSource"] == "aws:ses"
    assert list(event["Records"][0]["ses"]) == ["mail", "receipt"]
    assert "content" not in json.dumps(event)
    golden("lambda-event", event)
