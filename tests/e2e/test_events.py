"""Event publishing end to end: ``sesame serve`` delivers (to the mailbox simulator, sinks and a dead MX)
and publishes every event type to moto's server as the external AWS: SNS to an SQS queue, EventBridge
to an SQS target, Firehose to an S3 bucket, CloudWatch metrics; identity notifications; feedback
forwarding by email. Record shapes are pinned by golden files (tests/golden/events/).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from sesame.testing.dns import DnsServer
from sesame.testing.http_sink import HttpSink, verify_sns_signature
from sesame.testing.moto import moto_server
from sesame.testing.servers import SesameProcess, sesame_cli
from sesame.testing.smtp import SinkServer
from tests.conftest import Serve, query
from tests.e2e.servers import serve_env, serving
from tests.e2e.test_delivery import Sender, mx, received_by

GOLDEN = Path(__file__).parent.parent / "golden" / "events"
#: Values the golden files keep as they are; every other value is reduced to its JSON type.
LITERALS = {
    "eventType",
    "notificationType",
    "bounceType",
    "bounceSubType",
    "delayType",
    "action",
    "complaintFeedbackType",
    "headersTruncated",
}


def shape(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0], key)] if value else []
    if key in LITERALS:
        return value
    return {str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), None)


def golden(name: str, record: dict[str, Any]) -> None:
    """Compare the record's shape with the golden file; UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / f"{name}.json"
    got = shape(record)
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(path.read_text()), f"{name}: {json.dumps(record, indent=2)}"


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def aws(moto: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=moto, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture(scope="module")
def sesame(
    module_database: str,
    moto: str,
    sink: SinkServer,
    clamd: FakeClamd,
    dns_server: DnsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Serve]:
    env = serve_env(
        dns_server,
        DELIVERY__MX_PORT=str(sink.port),
        DELIVERY__RETRY_BASE="0.5",
        DELIVERY__MAX_AGE_SECONDS="4",
        DELIVERY__CONNECT_TIMEOUT="1",
        DELIVERY__HELO_NAME="sesame.test",
        AWS__ENDPOINT_URL=moto,
        EVENTS__POLL_INTERVAL="0.1",
        RECEIVING__CLAMD=clamd.address,
        DELIVERY__VIRUS_SCAN="true",
    )
    with serving(module_database, tmp_path_factory, "events", env) as server:
        yield server


_n = iter(range(1000))


@pytest.fixture
def sender(sesame: Serve, dns_server: DnsServer) -> Sender:
    return Sender(sesame, dns_server, 500 + next(_n))


def sqs_queue(moto: str, name: str) -> tuple[str, str]:
    sqs = aws(moto, "sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def topic_to_queue(moto: str, name: str) -> tuple[str, str]:
    """An SNS topic in moto with an SQS queue subscribed; (topic ARN, queue URL)."""
    topic = aws(moto, "sns").create_topic(Name=name)["TopicArn"]
    url, arn = sqs_queue(moto, f"{name}-queue")
    aws(moto, "sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return topic, url


def drain_queue(
    moto: str, url: str, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The JSON bodies read from an SQS queue until ``until`` holds for them."""
    sqs, got = aws(moto, "sqs"), []
    deadline = time.monotonic() + timeout
    while not until(got):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; got {json.dumps(got, indent=1)[:3000]}")
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        ):
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        time.sleep(0.2)
    return got


WANTED = {
    "Send",
    "Reject",
    "Delivery",
    "Bounce",
    "Complaint",
    "DeliveryDelay",
    "Rendering Failure",
    "Subscription",
}
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class FakeClamd:
    """ClamAV's clamd as far as zINSTREAM goes, on loopback in a thread of its own: finds the EICAR test
    file (the mailbox simulator has no address for a Reject; SES documents EICAR for it)."""

    def __enter__(self) -> FakeClamd:
        import socketserver
        import struct
        import threading

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                f = self.request.makefile("rb")
                assert f.read(10) == b"zINSTREAM\0"
                data = b""
                while size := struct.unpack(">I", f.read(4))[0]:
                    data += f.read(size)
                found = b"stream: Eicar-Test-Signature FOUND\0" if EICAR in data else b"stream: OK\0"
                self.request.sendall(found)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def clamd() -> Iterator[FakeClamd]:
    with FakeClamd() as server:
        yield server


def types(records: list[dict[str, Any]]) -> set[str]:
    return {r["eventType"] for r in records}


def send_every_kind(sesame: Serve, sender: Sender, config: str) -> dict[str, str]:
    """Mail that makes every event type Sesame emits: message ids by what each is for."""
    v2 = sender.v2
    v2.create_email_template(
        TemplateName=f"hello-{config}", TemplateContent={"Subject": "Hi {{name}}", "Text": "Hello {{name}}"}
    )
    tags = [{"Name": "campaign", "Value": "launch"}]
    virus = {"Simple": {"Subject": {"Data": "invoice"}, "Body": {"Text": {"Data": EICAR.decode()}}}}
    v2.create_contact_list(
        ContactListName="readers",
        Topics=[{"TopicName": "news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_IN"}],
    )
    listed = sender.send(
        "success@simulator.amazonses.com",
        ConfigurationSetName=config,
        ListManagementOptions={"ContactListName": "readers", "TopicName": "news"},
    )
    # The recipient's mail client unsubscribes with RFC 8058's one-click POST.
    [stored] = query(sesame, "SELECT body FROM messages WHERE id = :m", m=listed)
    link = re.search(rb"List-Unsubscribe: <([^>]+)>", bytes(stored["body"]))
    assert link is not None
    httpx.post(link.group(1).decode(), content=b"List-Unsubscribe=One-Click").raise_for_status()
    return {
        "reject": sender.send("success@simulator.amazonses.com", ConfigurationSetName=config, content=virus),
        "subscription": listed,
        "ok": sender.send("success@simulator.amazonses.com", ConfigurationSetName=config, EmailTags=tags),
        "bounce": sender.send("bounce@simulator.amazonses.com", ConfigurationSetName=config),
        "complaint": sender.send("complaint@simulator.amazonses.com", ConfigurationSetName=config),
        "delay": sender.send("someone@nowhere.invalid", ConfigurationSetName=config),
        "render": v2.send_email(
            FromEmailAddress=f"me@{sender.domain}",
            Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
            Content={"Template": {"TemplateName": f"hello-{config}", "TemplateData": "{}"}},
            ConfigurationSetName=config,
        )["MessageId"],
    }


def check_goldens(by_type: dict[str, list[dict[str, Any]]], sent: dict[str, str]) -> None:
    """Each event type's record, from the message made for it, against its golden shape."""
    source = {"Send": "ok", "Delivery": "ok", "Bounce": "bounce", "Complaint": "complaint",
              "DeliveryDelay": "delay", "Rendering Failure": "render", "Reject": "reject",
              "Subscription": "subscription"}  # fmt: skip
    for event_type, message in source.items():
        (record,) = [r for r in by_type[event_type] if r["mail"]["messageId"] == sent[message]][:1]
        golden(f"event-{event_type.replace(' ', '')}", record)


def test_every_event_type_to_every_destination(sesame: Serve, sender: Sender, moto: str) -> None:
    topic, sns_queue = topic_to_queue(moto, f"ses-events-{sender.id}")
    bus_queue, bus_queue_arn = sqs_queue(moto, f"bus-{sender.id}")
    events = aws(moto, "events")
    events.put_rule(Name=f"ses-{sender.id}", EventPattern=json.dumps({"source": ["aws.ses"]}))
    events.put_targets(Rule=f"ses-{sender.id}", Targets=[{"Id": "q", "Arn": bus_queue_arn}])
    s3 = aws(moto, "s3")
    s3.create_bucket(Bucket=f"firehose-{sender.id}")
    stream = f"ses-{sender.id}"
    aws(moto, "firehose").create_delivery_stream(
        DeliveryStreamName=stream,
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::firehose-{sender.id}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        },
    )
    stream_arn = f"arn:aws:firehose:us-east-1:123456789012:deliverystream/{stream}"
    every = ["SEND", "REJECT", "BOUNCE", "COMPLAINT", "DELIVERY", "OPEN", "CLICK", "RENDERING_FAILURE",
             "DELIVERY_DELAY", "SUBSCRIPTION"]  # fmt: skip
    v2 = sender.v2
    v2.create_configuration_set(ConfigurationSetName="all")
    bus = "arn:aws:events:us-east-1:123456789012:event-bus/default"
    role = "arn:aws:iam::123456789012:role/x"
    dimensions = [
        {"DimensionName": name, "DimensionValueSource": "MESSAGE_TAG", "DefaultDimensionValue": "none"}
        for name in ("ses:configuration-set", "campaign")
    ]
    destinations = {
        "sns": {"SnsDestination": {"TopicArn": topic}},
        "bus": {"EventBridgeDestination": {"EventBusArn": bus}},
        "hose": {"KinesisFirehoseDestination": {"IamRoleArn": role, "DeliveryStreamArn": stream_arn}},
        "metrics": {"CloudWatchDestination": {"DimensionConfigurations": dimensions}},
    }
    for name, target in destinations.items():
        v2.create_configuration_set_event_destination(
            ConfigurationSetName="all",
            EventDestinationName=name,
            EventDestination={"Enabled": True, "MatchingEventTypes": every, **target},
        )
    sent = send_every_kind(sesame, sender, "all")

    def records(got: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [json.loads(n["Message"]) for n in got if n["Message"].startswith("{")]

    notifications = drain_queue(moto, sns_queue, lambda got: WANTED <= types(records(got)))
    # The topic first had SES's plain-text word that it is a destination now.
    assert notifications[0]["Message"] == "Successfully validated SNS topic for Amazon SES event publishing."
    notifications = notifications[1:]
    assert {n["Subject"] for n in notifications} == {"Amazon SES Email Event Notification"}
    by_type: dict[str, list[dict[str, Any]]] = {}
    for n in notifications:
        record = json.loads(n["Message"])
        by_type.setdefault(record["eventType"], []).append(record)
    check_goldens(by_type, sent)
    # A few values beyond the shape.
    (delivered,) = [r for r in by_type["Delivery"] if r["mail"]["messageId"] == sent["ok"]]
    assert delivered["mail"]["destination"] == ["success@simulator.amazonses.com"]
    assert delivered["mail"]["tags"]["campaign"] == ["launch"]
    assert delivered["mail"]["tags"]["ses:configuration-set"] == ["all"]
    assert delivered["mail"]["tags"]["ses:from-domain"] == [sender.domain]
    assert delivered["mail"]["tags"]["ses:source-ip"] == ["127.0.0.1"]
    assert delivered["mail"]["tags"]["ses:operation"] == ["SendEmail"]
    assert delivered["mail"]["commonHeaders"]["subject"] == "hello"
    assert delivered["mail"]["sourceArn"] == f"arn:aws:ses:us-east-1:{sender.id}:identity/{sender.domain}"
    (bounced,) = by_type["Bounce"][:1]
    assert bounced["bounce"]["bouncedRecipients"][0]["emailAddress"] in (
        "bounce@simulator.amazonses.com",
        "someone@nowhere.invalid",
    )
    (failed,) = by_type["Rendering Failure"]
    assert failed["failure"]["templateName"] == "hello-all"
    # One message's records reach a destination in the order they happened.
    ok_types = [
        json.loads(n["Message"])["eventType"]
        for n in notifications
        if json.loads(n["Message"])["mail"]["messageId"] == sent["ok"]
    ]
    assert ok_types == ["Send", "Delivery"]

    on_bus = drain_queue(moto, bus_queue, lambda got: len(got) >= len(notifications))
    assert {e["source"] for e in on_bus} == {"aws.ses"}
    detail_types = {e["detail-type"] for e in on_bus}
    assert {"Email Sent", "Email Delivered", "Email Bounced", "Email Complaint Received",
            "Email Delivery Delayed", "Email Rendering Failed", "Email Rejected",
            "Email Subscribed"} <= detail_types  # fmt: skip
    assert {e["detail"]["eventType"] for e in on_bus} == types(on_bus and [e["detail"] for e in on_bus])

    # Firehose: one JSON record per line in the stream's bucket.
    lines: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while len(lines) < len(notifications) and time.monotonic() < deadline:
        lines = []
        for obj in s3.list_objects_v2(Bucket=f"firehose-{sender.id}").get("Contents", []):
            body = s3.get_object(Bucket=f"firehose-{sender.id}", Key=obj["Key"])["Body"].read().decode()
            lines += [json.loads(line) for line in body.splitlines() if line]
        time.sleep(0.3)
    assert WANTED <= types(lines)

    # CloudWatch: counts in AWS/SES, dimensioned by the configuration set and the message tag; no
    # DeliveryDelay (CloudWatch takes none).
    metrics = aws(moto, "cloudwatch").list_metrics(Namespace="AWS/SES")["Metrics"]
    names = {m["MetricName"] for m in metrics}
    assert {"Send", "Reject", "Delivery", "Bounce", "Complaint", "RenderingFailure", "Subscription"} <= names
    assert "DeliveryDelay" not in names
    dims = [
        {d["Name"]: d["Value"] for d in m["Dimensions"]} for m in metrics if m["MetricName"] == "Delivery"
    ]
    assert {"ses:configuration-set": "all", "campaign": "launch"} in dims

    # The server's own figures, at /metrics.
    figures = httpx.get(f"{sesame.endpoint}/metrics").text
    assert 'sesame_api_requests_total{error="",operation="SendEmail",service="sesv2"}' in figures
    assert 'sesame_delivery_outcomes_total{outcome="delivered"}' in figures
    assert 'sesame_delivery_outcomes_total{outcome="deferred"}' in figures
    assert "sesame_delivery_latency_seconds_count" in figures
    assert "sesame_smtp_sessions" in figures


def test_every_event_type_to_a_sesame_sns_http_subscription(sesame: Serve, sender: Sender) -> None:
    """Sesame's own SNS: a topic with an HTTP subscription gets SES's validation message, then every
    event record, each notification signed (verified with the certificate at SigningCertURL)."""
    sns = sesame.client("sns", sender.account)
    topic = sns.create_topic(Name="ses-events")["TopicArn"]
    with HttpSink() as receiver:
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
        (confirmation,) = receiver.wait_for(lambda r: r.json()["Type"] == "SubscriptionConfirmation")
        httpx.get(confirmation.json()["SubscribeURL"]).raise_for_status()
        sender.v2.create_configuration_set(ConfigurationSetName="own")
        sender.v2.create_configuration_set_event_destination(
            ConfigurationSetName="own",
            EventDestinationName="sns",
            EventDestination={
                "Enabled": True,
                "MatchingEventTypes": ["SEND", "REJECT", "DELIVERY", "BOUNCE", "COMPLAINT", "DELIVERY_DELAY",
                                       "RENDERING_FAILURE", "SUBSCRIPTION"],
                "SnsDestination": {"TopicArn": topic},
            },
        )  # fmt: skip
        (validated,) = receiver.wait_for(lambda r: r.json()["Type"] == "Notification")
        assert (
            validated.json()["Message"] == "Successfully validated SNS topic for Amazon SES event publishing."
        )
        sent = send_every_kind(sesame, sender, "own")

        def records() -> list[dict[str, Any]]:
            return [
                json.loads(r.json()["Message"])
                for r in receiver.received
                if r.json()["Type"] == "Notification" and r.json()["Message"].startswith("{")
            ]

        deadline = time.monotonic() + 30
        while not WANTED <= types(records()):
            assert time.monotonic() < deadline, types(records())
            time.sleep(0.2)
        for r in receiver.received:
            verify_sns_signature(r.json())
        assert {r.json().get("Subject") for r in receiver.received[2:]} == {
            "Amazon SES Email Event Notification"
        }
        assert {r.headers["x-amz-sns-topic-arn"] for r in receiver.received} == {topic}
    by_type: dict[str, list[dict[str, Any]]] = {}
    for record in records():
        by_type.setdefault(record["eventType"], []).append(record)
    check_goldens(by_type, sent)


def test_an_sns_destination_needs_a_topic(sesame: Serve, sender: Sender) -> None:
    sender.v2.create_configuration_set(ConfigurationSetName="no-topic")
    for arn in (
        f"arn:aws:sns:us-east-1:{sender.id}:nothing-here",  # neither Sesame's nor moto's
        "arn:aws:sns:us-east-1:999999999999:someone-elses",
    ):
        with pytest.raises(sender.v2.exceptions.BadRequestException, match="not found"):
            sender.v2.create_configuration_set_event_destination(
                ConfigurationSetName="no-topic",
                EventDestinationName="sns",
                EventDestination={"MatchingEventTypes": ["SEND"], "SnsDestination": {"TopicArn": arn}},
            )


def test_identity_notifications_and_feedback_forwarding(
    sesame: Serve, sender: Sender, moto: str, sink: SinkServer, dns_server: DnsServer
) -> None:
    topic, queue = topic_to_queue(moto, f"identity-{sender.id}")
    v1 = sesame.client("ses", sender.account)
    for kind in ("Bounce", "Complaint", "Delivery"):
        v1.set_identity_notification_topic(Identity=sender.domain, NotificationType=kind, SnsTopic=topic)
    v1.set_identity_headers_in_notifications_enabled(
        Identity=sender.domain, NotificationType="Bounce", Enabled=True
    )
    sender.send("bounce@simulator.amazonses.com")
    sender.send("complaint@simulator.amazonses.com")
    got = drain_queue(
        moto,
        queue,
        lambda got: (
            {"Bounce", "Complaint", "Delivery"} <= {json.loads(n["Message"])["notificationType"] for n in got}
        ),
    )
    records = {json.loads(n["Message"])["notificationType"]: json.loads(n["Message"]) for n in got}
    for kind, record in records.items():
        golden(f"notification-{kind}", record)
    assert "headers" in records["Bounce"]["mail"] and "headers" not in records["Delivery"]["mail"]
    assert "tags" not in records["Bounce"]["mail"]
    assert records["Bounce"]["mail"]["sourceIp"] == "127.0.0.1"

    # Forwarding is on by default: the bounce and the complaint also come back by email, to the
    # message's return path (its sender's domain, whose MX is the sink here).
    mx(dns_server, sender.domain, (10, f"mx.{sender.domain}"))
    dns_server.add(f"mx.{sender.domain}", "A", "127.0.0.1")
    forwarded = received_by(sink, f"me@{sender.domain}", timeout=20)
    assert b"Auto-Submitted: auto-replied" in forwarded.data
    assert forwarded.mail_from == "<>"  # a report: its own failure bounces nowhere
    assert b"simulator.amazonses.com" in forwarded.data


def test_published_later_when_the_receiver_comes_back_across_a_restart(
    database: str, moto: str, tmp_path: Path
) -> None:
    """A destination that fails keeps its records; a restart loses none; they go out once it works."""
    env = {"SESAME_AWS__ENDPOINT_URL": moto, "SESAME_EVENTS__POLL_INTERVAL": "0.1"}
    name = f"later-{abs(hash(database)) % 10**6}"
    topic = aws(moto, "sns").create_topic(Name=name)["TopicArn"]  # SES checks it exists
    with SesameProcess("dev", data_dir=tmp_path, database=database, env=env) as proc:
        v2 = boto3.client("sesv2", endpoint_url=proc.endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="x")  # fmt: skip
        v2.create_email_identity(EmailIdentity="example.com")  # verified at once in dev mode
        v2.create_configuration_set(ConfigurationSetName="later")
        v2.create_configuration_set_event_destination(
            ConfigurationSetName="later",
            EventDestinationName="sns",
            EventDestination={
                "Enabled": True,
                "MatchingEventTypes": ["SEND"],
                "SnsDestination": {"TopicArn": topic},
            },
        )
        aws(moto, "sns").delete_topic(TopicArn=topic)  # and now the receiver is gone
        message_id = v2.send_email(
            FromEmailAddress="me@example.com",
            Destination={"ToAddresses": ["you@example.com"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
            ConfigurationSetName="later",
        )["MessageId"]
        url = database or f"sqlite:///{tmp_path / 'sesame.db'}"
        deadline = time.monotonic() + 15
        while True:  # moto says the topic does not exist: the record waits, with the reason
            rows = query_publications(url, message_id)
            if rows and rows[-1]["last_error"]:
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.1)
        assert rows[-1]["state"] == "pending" and "NotFound" in rows[-1]["last_error"]
    created, queue = topic_to_queue(moto, name)
    assert created == topic
    with SesameProcess("dev", data_dir=tmp_path, database=database, env=env):
        got = drain_queue(moto, queue, lambda got: len(got) >= 1, timeout=40)
    record = json.loads(got[0]["Message"])
    assert (record["eventType"], record["mail"]["messageId"]) == ("Send", message_id)


def query_publications(url: str, message_id: str) -> list[dict[str, Any]]:
    from tests.conftest import query_url

    return query_url(
        url, "SELECT state, last_error FROM publications WHERE message_id = :m ORDER BY id", m=message_id
    )


def test_firehose_files_without_an_endpoint(database: str, tmp_path: Path) -> None:
    """With no AWS endpoint, a Firehose destination is a directory of JSON-lines files."""
    with SesameProcess(
        "dev", data_dir=tmp_path, database=database, env={"SESAME_EVENTS__POLL_INTERVAL": "0.1"}
    ) as proc:
        v2 = boto3.client("sesv2", endpoint_url=proc.endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="x")  # fmt: skip
        v2.create_email_identity(EmailIdentity="files.example")
        v2.create_configuration_set(ConfigurationSetName="files")
        v2.create_configuration_set_event_destination(
            ConfigurationSetName="files",
            EventDestinationName="hose",
            EventDestination={
                "Enabled": True,
                "MatchingEventTypes": ["SEND"],
                "KinesisFirehoseDestination": {
                    "IamRoleArn": "arn:aws:iam::000000000000:role/x",
                    "DeliveryStreamArn": "arn:aws:firehose:us-east-1:000000000000:deliverystream/ses-files",
                },
            },
        )
        ids = [
            v2.send_email(
                FromEmailAddress="me@files.example",
                Destination={"ToAddresses": [f"you{i}@example.com"]},
                Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
                ConfigurationSetName="files",
            )["MessageId"]
            for i in range(3)
        ]
        stream = tmp_path / "firehose" / "ses-files"
        deadline = time.monotonic() + 15
        records: list[dict[str, Any]] = []
        while len(records) < 3:
            assert time.monotonic() < deadline, records
            time.sleep(0.1)
            records = [
                json.loads(line)
                for f in sorted(stream.glob("*.jsonl"))
                for line in f.read_text().splitlines()
            ]
    assert sorted(r["mail"]["messageId"] for r in records) == sorted(ids)
    assert {r["eventType"] for r in records} == {"Send"}
    assert all(f.read_bytes().endswith(b"\n") for f in stream.glob("*.jsonl"))
    assert oct(next(stream.glob("*.jsonl")).stat().st_mode & 0o777) == "0o600"


def test_failing_destinations_are_shown_and_retried(database: str, tmp_path: Path) -> None:
    """An EventBridge destination with no endpoint fails with its reason, Pinpoint is never delivered,
    and both are visible to `sesame events`, in dev mode's GET /_sesame/events, and retried on demand."""
    env = {"SESAME_EVENTS__POLL_INTERVAL": "0.1"}
    with SesameProcess("dev", data_dir=tmp_path, database=database, env=env) as proc:
        v2 = boto3.client("sesv2", endpoint_url=proc.endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="x")  # fmt: skip
        v2.create_email_identity(EmailIdentity="shown.example")
        v2.create_configuration_set(ConfigurationSetName="shown")
        bus = "arn:aws:events:us-east-1:000000000000:event-bus/default"
        app = "arn:aws:mobiletargeting:us-east-1:000000000000:apps/x"
        for name, target in {
            "bus": {"EventBridgeDestination": {"EventBusArn": bus}},
            "pin": {"PinpointDestination": {"ApplicationArn": app}},
        }.items():
            v2.create_configuration_set_event_destination(
                ConfigurationSetName="shown",
                EventDestinationName=name,
                EventDestination={"Enabled": True, "MatchingEventTypes": ["SEND"], **target},
            )
        message_id = v2.send_email(
            FromEmailAddress="me@shown.example",
            Destination={"ToAddresses": ["you@example.com"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
            ConfigurationSetName="shown",
        )["MessageId"]

        def cli(*args: str) -> str:
            return sesame_cli("events", *args, "--url", proc.endpoint, data_dir=tmp_path, database=database)

        deadline = time.monotonic() + 15
        while "no endpoint is configured for events" not in (shown := cli("status")):
            assert time.monotonic() < deadline, shown
            time.sleep(0.1)
        assert "failed pinpoint" in shown and "Sesame does not deliver to pinpoint" in shown
        assert "pending eventbridge" in shown and message_id in shown

        listed = httpx.get(f"{proc.endpoint}/_sesame/events").json()["events"]
        (record,) = [e for e in listed if e["MessageId"] == message_id]
        assert record["EventType"] == "Send"
        assert {p["Kind"]: p["State"] for p in record["Publications"]} == {
            "eventbridge": "pending",
            "pinpoint": "failed",
        }

        deadline = time.monotonic() + 10
        while 'sesame_event_publications{kind="pinpoint",state="failed"} 1.0' not in (
            figures := httpx.get(f"{proc.endpoint}/metrics").text
        ):
            assert time.monotonic() < deadline, figures
            time.sleep(0.2)
        assert 'sesame_api_requests_total{error="",operation="SendEmail",service="sesv2"} 1.0' in figures

        assert json.loads(cli("retry", "--all"))["Retried"] == 2
        assert httpx.delete(f"{proc.endpoint}/_sesame/events").status_code == 204
        assert httpx.get(f"{proc.endpoint}/_sesame/events").json()["events"] == []


def test_open_and_click_records(database: str, tmp_path: Path) -> None:
    """A tracked message's pixel and link, fetched as a reader would, become Open and Click records at
    the set's SNS destination (dev mode: the message is captured, its tracked HTML read from storage)."""
    from email import message_from_bytes
    from email.policy import default as default_policy

    from tests.conftest import query_url
    from tests.e2e.test_tracking import BROWSER, Links

    env = {"SESAME_EVENTS__POLL_INTERVAL": "0.1"}
    with SesameProcess("dev", data_dir=tmp_path, database=database, env=env) as proc, HttpSink() as receiver:
        v2 = boto3.client("sesv2", endpoint_url=proc.endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="x")  # fmt: skip
        sns = boto3.client("sns", endpoint_url=proc.endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="x")  # fmt: skip
        v2.create_email_identity(EmailIdentity="engage.example")
        topic = sns.create_topic(Name="engagement")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
        (confirmation,) = receiver.wait_for(lambda r: r.json()["Type"] == "SubscriptionConfirmation")
        httpx.get(confirmation.json()["SubscribeURL"]).raise_for_status()
        v2.create_configuration_set(ConfigurationSetName="engage")
        v2.create_configuration_set_event_destination(
            ConfigurationSetName="engage",
            EventDestinationName="sns",
            EventDestination={"Enabled": True, "MatchingEventTypes": ["OPEN", "CLICK"],
                              "SnsDestination": {"TopicArn": topic}},
        )  # fmt: skip
        html = '<p>Read <a href="https://example.com/book" ses:tags="product:book;">the book</a>.</p>'
        message_id = v2.send_email(
            FromEmailAddress="news@engage.example",
            Destination={"ToAddresses": ["reader@example.net"]},
            Content={"Simple": {"Subject": {"Data": "news"}, "Body": {"Html": {"Data": html}}}},
            ConfigurationSetName="engage",
        )["MessageId"]
        url = database or f"sqlite:///{tmp_path / 'sesame.db'}"
        (row,) = query_url(url, "SELECT body FROM messages WHERE id = :m", m=message_id)
        part = message_from_bytes(bytes(row["body"]), policy=default_policy).get_body(("html",))
        assert part is not None
        links = Links()
        links.feed(part.get_content())
        headers = {"User-Agent": BROWSER}
        assert httpx.get(str(links.images[-1]["src"]), headers=headers).status_code == 200
        clicked = httpx.get(str(links.anchors[0]["href"]), headers=headers)
        assert (clicked.status_code, clicked.headers["location"]) == (302, "https://example.com/book")

        def engagement(r: Any) -> bool:
            return r.json()["Type"] == "Notification" and r.json()["Message"].startswith("{")

        got = receiver.wait_for(engagement, count=2)
        for r in got:
            verify_sns_signature(r.json())
    records = {json.loads(r.json()["Message"])["eventType"]: json.loads(r.json()["Message"]) for r in got}
    golden("event-Open", records["Open"])
    golden("event-Click", records["Click"])
    assert records["Click"]["click"]["link"] == "https://example.com/book"
    assert records["Click"]["click"]["linkTags"] == {"product": ["book"]}
    assert records["Open"]["open"]["userAgent"] == BROWSER
