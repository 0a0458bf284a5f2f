"""Late feedback end to end: ``sesame serve`` delivers to a sink that says 250, then a DSN or an ARF
report for that message comes back to its return path (``<message id>@<delivery.return_path_domain>``)
and is handed to ``Feedback.receive``, as the MX does. The Bounce and Complaint records, suppression
entries and queue states are those of synchronous outcomes, and reach an event destination (Firehose
files, with no AWS endpoint) in the same shape as a synchronous bounce's. Both databases.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sesame import config
from sesame.domain.feedback import Feedback
from sesame.storage.db import Database
from sesame.testing.dns import DnsServer
from sesame.testing.http_sink import HttpSink, verify_sns_signature
from sesame.testing.smtp import SinkServer
from tests.conftest import Serve, execute, query
from tests.e2e.servers import serve_env, serving
from tests.e2e.test_delivery import Sender, events, received_by
from tests.e2e.test_events import shape

FIXTURES = Path(__file__).parent.parent / "fixtures" / "feedback"
#: The message id the fixtures are written for; each test puts its own message's id in its place.
FIXTURE_ID = b"0100019a2b3c4d5e-8f2c1a4b-7d3e-4f51-9a62-3b8c7d6e5f40-000000"
RETURN_PATH_DOMAIN = "bounces.sesame.test"
DOMAINS = ("gmail.example", "yahoo.example", "multi.example", "postfix.example", "slow.example")
ROLE = "arn:aws:iam::123456789012:role/x"


@pytest.fixture(scope="module")
def sesame(
    module_database: str, sink: SinkServer, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    env = serve_env(
        dns_server,
        DELIVERY__ROUTES=",".join(f"{d}=127.0.0.1:{sink.port}" for d in DOMAINS),
        DELIVERY__HELO_NAME="sesame.test",
        DELIVERY__RETURN_PATH_DOMAIN=RETURN_PATH_DOMAIN,
        EVENTS__POLL_INTERVAL="0.1",
    )
    with serving(module_database, tmp_path_factory, "feedback", env) as server:
        yield server


_n = iter(range(1000))


@pytest.fixture
def sender(sesame: Serve, dns_server: DnsServer) -> Sender:
    return Sender(sesame, dns_server, 700 + next(_n))


def receive(sesame: Serve, recipient: str, raw: bytes) -> str:
    """What the MX does with mail to a return path: Feedback.receive, on the server's own database."""
    settings = config.load("serve", data_dir=sesame.data_dir, database=sesame.database, env={})

    async def go() -> str:
        db = Database(settings.database_url)
        try:
            return await Feedback(db).receive(recipient, raw)
        finally:
            await db.close()

    return asyncio.run(go())


def through_mx(sesame: Serve, recipient: str, raw: bytes) -> None:
    """A report sent where the world sends it: to the return path, through Sesame's MX, from the null
    reverse-path; the MX commits it before its 250 and works it out in the background."""
    host, port = sesame.proc.listeners["mx"]
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.ehlo("mx.provider.example")
        assert smtp.mail("<>")[0] == 250
        assert smtp.rcpt(recipient)[0] == 250
        code, _ = smtp.data(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        assert code == 250


def fixture(name: str, message_id: str) -> bytes:
    return (FIXTURES / name).read_bytes().replace(FIXTURE_ID, message_id.encode())


def delivered(sesame: Serve, sink: SinkServer, message_id: str, *recipients: str) -> None:
    """The message went out with its VERP return path, and every recipient's 250 is recorded."""
    for rcpt in recipients:
        assert received_by(sink, rcpt).mail_from == f"{message_id}@{RETURN_PATH_DOMAIN}"
    got = events(sesame, message_id, want=len(recipients))
    assert [e["type"] for e in got] == ["Delivery"] * len(recipients)


def hose(sesame: Serve, sender: Sender, name: str = "fb") -> Path:
    """A configuration set publishing bounces and complaints to a Firehose stream (files here)."""
    sender.v2.create_configuration_set(ConfigurationSetName=name)
    stream = f"fb-{sender.id}-{name}"
    sender.v2.create_configuration_set_event_destination(
        ConfigurationSetName=name,
        EventDestinationName="hose",
        EventDestination={
            "Enabled": True,
            "MatchingEventTypes": ["BOUNCE", "COMPLAINT"],
            "KinesisFirehoseDestination": {
                "IamRoleArn": ROLE,
                "DeliveryStreamArn": f"arn:aws:firehose:us-east-1:123456789012:deliverystream/{stream}",
            },
        },
    )
    return sesame.data_dir / "firehose" / stream


def published(stream: Path, want: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        got = [
            json.loads(line) for f in sorted(stream.glob("*.jsonl")) for line in f.read_text().splitlines()
        ]
        if len(got) >= want:
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.1)


def suppressed(sender: Sender, address: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = sender.v2.get_suppressed_destination(EmailAddress=address)[
            "SuppressedDestination"
        ]
    except sender.v2.exceptions.NotFoundException:
        return None
    return found


def test_a_late_bounce_is_published_like_a_synchronous_one(
    sesame: Serve, sink: SinkServer, sender: Sender
) -> None:
    stream = hose(sesame, sender)
    late = sender.send("jdoe@gmail.example", ConfigurationSetName="fb")
    now = sender.send("bounce@simulator.amazonses.com", ConfigurationSetName="fb")
    delivered(sesame, sink, late, "jdoe@gmail.example")

    through_mx(sesame, f"{late}@{RETURN_PATH_DOMAIN}", fixture("gmail_user_unknown.eml", late))

    records = {r["mail"]["messageId"]: r for r in published(stream, 2)}
    assert shape(records[late]) == shape(records[now])  # the same record, field for field
    bounce = records[late]["bounce"]
    assert (bounce["bounceType"], bounce["bounceSubType"]) == ("Permanent", "General")
    assert bounce["reportingMTA"] == "dns; googlemail.example"
    assert bounce["feedbackId"].startswith(late)
    (recipient,) = bounce["bouncedRecipients"]
    assert recipient["emailAddress"] == "jdoe@gmail.example"
    assert (recipient["action"], recipient["status"]) == ("failed", "5.1.1")
    assert recipient["diagnosticCode"].startswith("smtp; 550-5.1.1 The email account")

    entry = suppressed(sender, "jdoe@gmail.example")
    assert entry is not None and entry["Reason"] == "BOUNCE"
    assert entry["Attributes"]["MessageId"] == late
    (row,) = query(sesame, "SELECT state, last_reply FROM queue WHERE message_id = :m", m=late)
    assert row["state"] == "delivered"  # it was delivered; the bounce came after
    assert row["last_reply"].startswith("bounced after acceptance: smtp; 550-5.1.1")


def test_a_feedback_loop_complaint(sesame: Serve, sink: SinkServer, sender: Sender) -> None:
    stream = hose(sesame, sender)
    message_id = sender.send("reader@yahoo.example", ConfigurationSetName="fb")
    delivered(sesame, sink, message_id, "reader@yahoo.example")

    through_mx(sesame, f"{message_id}@{RETURN_PATH_DOMAIN}", fixture("arf_yahoo_abuse.eml", message_id))

    (record,) = published(stream, 1)
    assert record["eventType"] == "Complaint"
    complaint = record["complaint"]
    assert complaint["complainedRecipients"] == [{"emailAddress": "reader@yahoo.example"}]
    assert complaint["complaintFeedbackType"] == "abuse"
    assert complaint["userAgent"] == "Yahoo!-Mail-Feedback/2.0"
    assert complaint["arrivalDate"] == "2025-06-09T18:19:55.000Z"
    assert complaint["complaintSubType"] is None
    entry = suppressed(sender, "reader@yahoo.example")
    assert entry is not None and entry["Reason"] == "COMPLAINT"


def test_several_recipients_and_the_sets_suppression_options(
    sesame: Serve, sink: SinkServer, sender: Sender
) -> None:
    """One DSN, four recipients: a hard bounce, a soft one, a delay and a delivery. The set's
    SuppressedReasons (none) keep the hard-bounced address off the list, as for synchronous bounces."""
    stream = hose(sesame, sender, "nosup")
    sender.v2.put_configuration_set_suppression_options(ConfigurationSetName="nosup", SuppressedReasons=[])
    rcpts = [f"{x}@multi.example" for x in "abcd"]
    message_id = sender.send(*rcpts, ConfigurationSetName="nosup")
    delivered(sesame, sink, message_id, *rcpts)

    assert receive(
        sesame, f"{message_id}@{RETURN_PATH_DOMAIN}", fixture("multi_recipient.eml", message_id)
    ) == ("bounce")
    records = published(stream, 2)
    got = sorted(
        (b["bounceType"], b["bounceSubType"], [x["emailAddress"] for x in b["bouncedRecipients"]])
        for b in (r["bounce"] for r in records)
    )
    assert got == [
        ("Permanent", "General", ["a@multi.example"]),
        ("Transient", "MailboxFull", ["b@multi.example"]),
    ]
    assert suppressed(sender, "a@multi.example") is None


def test_what_is_not_a_bounce(sesame: Serve, sink: SinkServer, sender: Sender) -> None:
    message_id = sender.send("gone@postfix.example")
    delivered(sesame, sink, message_id, "gone@postfix.example")
    verp = f"{message_id}@{RETURN_PATH_DOMAIN}"

    assert receive(sesame, verp, fixture("delayed.eml", message_id)) == "delayed"
    assert receive(sesame, verp, fixture("ooto_auto_submitted.eml", message_id)) == "auto-reply"
    for name in ("malformed_plain.eml", "malformed_truncated.eml", "malformed_binary.eml"):
        assert receive(sesame, verp, fixture(name, message_id)) == "malformed"
    other = "0100019a2b3c4d5e-00000000-0000-4000-8000-000000000000-000000"
    assert receive(sesame, f"{other}@{RETURN_PATH_DOMAIN}", fixture("postfix_user_unknown.eml", other)) == (
        "unmatched"
    )
    assert [e["type"] for e in events(sesame, message_id, want=2, timeout=0.5)] == ["Delivery"]

    # Sent to a return path that names no message, a DSN still finds it by the returned Message-ID.
    assert receive(
        sesame, f"postmaster@{RETURN_PATH_DOMAIN}", fixture("postfix_user_unknown.eml", message_id)
    ) == ("bounce")
    got = events(sesame, message_id, want=2)
    assert (
        got[-1]["type"] == "Bounce"
        and got[-1]["bouncedRecipients"][0]["emailAddress"] == "gone@postfix.example"
    )


def activate(v1: Any, name: str, domain: str, action: dict[str, Any]) -> None:
    v1.create_receipt_rule_set(RuleSetName=name)
    rule = {"Name": "all", "Enabled": True, "Recipients": [domain], "Actions": [action]}
    v1.create_receipt_rule(RuleSetName=name, Rule=rule)
    v1.set_active_receipt_rule_set(RuleSetName=name)


def test_the_mx_refuses_what_no_rule_covers_and_clients_a_filter_blocks(
    sesame: Serve, sender: Sender
) -> None:
    host, port = sesame.proc.listeners["mx"]
    v1 = sesame.client("ses", sender.account)
    activate(v1, "inbox", sender.domain, {"StopAction": {"Scope": "RuleSet"}})
    try:
        with smtplib.SMTP(host, port, timeout=10) as smtp:
            smtp.ehlo("client.example")
            smtp.mail("someone@elsewhere.example")
            assert smtp.rcpt(f"anyone@{sender.domain}")[0] == 250
            code, text = smtp.rcpt("someone@not-received-here.example")
            assert (code, text[:5]) == (550, b"5.1.1")  # the MX never relays
            assert smtp.rcpt(f"nobody@{RETURN_PATH_DOMAIN}")[0] == 550  # not a message id

        block = {"Name": "no-loopback", "IpFilter": {"Policy": "Block", "Cidr": "127.0.0.0/8"}}
        v1.create_receipt_filter(Filter=block)
        with pytest.raises(smtplib.SMTPConnectError) as refused:  # this node's cache sees it at once
            smtplib.SMTP(host, port, timeout=10)
        assert refused.value.smtp_code == 554  # at connect: the client's mail is never read
    finally:
        v1.delete_receipt_filter(FilterName="no-loopback")
        v1.set_active_receipt_rule_set()


def test_send_bounce_returns_a_dsn_about_received_mail(
    sesame: Serve, sender: Sender, sink: SinkServer
) -> None:
    v1 = sesame.client("ses", sender.account)
    activate(v1, "bouncing", sender.domain, {"S3Action": {"BucketName": "kept"}})
    to = f"info@{sender.domain}"
    bounce: dict[str, Any] = {
        "BounceSender": f"mailer@{sender.domain}",
        "BouncedRecipientInfoList": [{"Recipient": to, "BounceType": "DoesNotExist"}],
    }
    try:
        host, port = sesame.proc.listeners["mx"]
        with smtplib.SMTP(host, port, timeout=10) as smtp:
            mail = (
                b"From: writer@gmail.example\r\nSubject: hi\r\nMessage-ID: <w1@gmail.example>\r\n\r\nhi\r\n"
            )
            _, text = smtp.sendmail("writer@gmail.example", [to], mail), b""
            original = smtp.noop() and ""
        rows = []
        deadline = time.monotonic() + 20
        while not rows:
            rows = query(sesame, "SELECT message_id FROM receipts WHERE account_id = :a AND state = 'done' "
                         "AND rule_set = 'bouncing'", a=sender.id)  # fmt: skip
            assert time.monotonic() < deadline
            time.sleep(0.1)
        original = rows[0]["message_id"]
        answer = v1.send_bounce(OriginalMessageId=original, Explanation="No one here by that name.", **bounce)
        assert answer["MessageId"]
        dsn = received_by(sink, "writer@gmail.example")
        assert dsn.mail_from in ("", "<>")  # a DSN goes out with the null reverse-path
        text = dsn.data.decode()
        assert "multipart/report" in text and "Status: 5.1.1" in text and "<w1@gmail.example>" in text
        with pytest.raises(v1.exceptions.MessageRejected):  # only mail the account received
            v1.send_bounce(OriginalMessageId="nosuchmessage", **bounce)
        # A literal both databases read as a time: a day and more after it, SendBounce is refused.
        long_ago = "UPDATE inbound_messages SET received_at = '2000-01-01 00:00:00.000000' WHERE id = :m"
        execute(sesame, long_ago, m=original)
        with pytest.raises(v1.exceptions.MessageRejected, match="24 hours"):
            v1.send_bounce(OriginalMessageId=original, **bounce)
    finally:
        v1.set_active_receipt_rule_set()


def test_a_late_bounce_reaches_the_identitys_notification_topic(
    sesame: Serve, sink: SinkServer, sender: Sender
) -> None:
    """The identity's SNS topic (SetIdentityNotificationTopic), a topic of Sesame's own with an HTTP
    subscriber here, gets the late bounce as SES's ``notificationType: Bounce`` message."""
    sns, v1 = sesame.client("sns", sender.account), sesame.client("ses", sender.account)
    topic = sns.create_topic(Name=f"bounces-{sender.id}")["TopicArn"]
    with HttpSink() as subscriber:
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=subscriber.url)
        (confirmation,) = subscriber.wait_for(lambda r: r.json()["Type"] == "SubscriptionConfirmation")
        httpx.get(confirmation.json()["SubscribeURL"])
        v1.set_identity_notification_topic(Identity=sender.domain, NotificationType="Bounce", SnsTopic=topic)
        # The report names jdoe@; a one-recipient message's one failure is its recipient (forwarding).
        to = f"notified{sender.id}@gmail.example"
        message_id = sender.send(to)
        delivered(sesame, sink, message_id, to)
        through_mx(
            sesame, f"{message_id}@{RETURN_PATH_DOMAIN}", fixture("gmail_user_unknown.eml", message_id)
        )
        (post,) = subscriber.wait_for(lambda r: r.json()["Type"] == "Notification")
    verify_sns_signature(post.json())
    note = json.loads(post.json()["Message"])
    assert note["notificationType"] == "Bounce"
    assert note["mail"]["messageId"] == message_id
    assert note["bounce"]["bounceType"] == "Permanent"
    assert [r["emailAddress"] for r in note["bounce"]["bouncedRecipients"]] == [to]
