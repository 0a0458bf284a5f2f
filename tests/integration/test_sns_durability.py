"""A Publish that returned a MessageId reaches every confirmed subscriber at least once: through an
endpoint that is down, a Sesame killed right after answering, and a restart."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from sesame.testing.http_sink import HttpSink, verify_sns_signature
from sesame.testing.servers import SesameProcess
from tests.conftest import client, query_url

# Retries one second apart, so that the test waits seconds, not SNS's default minutes.
FAST_RETRIES = json.dumps(
    {
        "http": {
            "defaultHealthyRetryPolicy": {
                "minDelayTarget": 1,
                "maxDelayTarget": 1,
                "numRetries": 60,
                "backoffFunction": "linear",
            }
        }
    }
)
#: Leases short enough that what the killed process held is claimed again within the test.
SHORT_LEASES = {"SESAME_SNS__LEASE_SECONDS": "3", "SESAME_SNS__HTTP_TIMEOUT": "2"}


def notifications(sink: HttpSink) -> set[str]:
    return {r.json()["MessageId"] for r in sink.received if r.json()["Type"] == "Notification"}


def subscribed_topic(sns: Any, sink: HttpSink, name: str, delivery_policy: str = FAST_RETRIES) -> str:
    topic = sns.create_topic(Name=name, Attributes={"DeliveryPolicy": delivery_policy})["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=sink.url)
    (confirmation,) = sink.wait_for(lambda r: r.json()["Type"] == "SubscriptionConfirmation")
    httpx.get(confirmation.json()["SubscribeURL"]).raise_for_status()
    return topic


def test_a_receiver_down_through_a_sigkill_and_restart_gets_every_message(
    module_database: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with HttpSink() as sink:
        proc = SesameProcess("dev", data_dir=data_dir, database=module_database, env=SHORT_LEASES).start()
        try:
            sns = client("sns", proc.endpoint)
            topic = subscribed_topic(sns, sink, "durable")
            sink.stop()  # the receiver goes down

            def publish(i: int) -> str:
                return str(sns.publish(TopicArn=topic, Message=f"event {i}")["MessageId"])

            with ThreadPoolExecutor(8) as pool:
                published = set(pool.map(publish, range(30)))
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGKILL)  # the moment the last MessageId is in
            proc.proc.wait(10)
        finally:
            proc.stop()

        with SesameProcess("dev", data_dir=data_dir, database=module_database, env=SHORT_LEASES):
            time.sleep(1.5)  # the restarted node tries, and finds the receiver still down
            assert notifications(sink) == set()
            sink.start()  # the receiver comes back, on the same port
            received = sink.wait_for(lambda r: r.json()["Type"] == "Notification", timeout=30, count=30)
            assert {r.json()["MessageId"] for r in received} == published
            # The same key signs after the restart: the data dir keeps it.
            verify_sns_signature(received[0].json())


def test_a_failing_endpoint_gets_the_message_on_a_retry(module_database: str, tmp_path: Path) -> None:
    with HttpSink() as sink, SesameProcess("dev", data_dir=tmp_path, database=module_database) as proc:
        sns = client("sns", proc.endpoint)
        topic = subscribed_topic(sns, sink, "flaky")
        sink.status = 503
        message_id = sns.publish(TopicArn=topic, Message="later")["MessageId"]
        time.sleep(1.5)
        rows = query_url(
            module_database,
            "SELECT state, attempts, last_error FROM sns_deliveries WHERE message_id = :m",
            m=message_id,
        )
        assert rows and rows[0]["state"] in ("pending", "delivering") and rows[0]["attempts"] >= 1
        assert rows[0]["last_error"] in ("HTTP 503", None)
        sink.status = 200
        (note,) = sink.wait_for(lambda r: r.json()["Type"] == "Notification")
        assert note.json()["MessageId"] == message_id


def test_retries_end_as_the_policy_says_and_the_failure_is_kept(module_database: str, tmp_path: Path) -> None:
    policy = json.dumps(
        {"http": {"defaultHealthyRetryPolicy": {"minDelayTarget": 1, "maxDelayTarget": 1, "numRetries": 1}}}
    )
    with HttpSink() as sink, SesameProcess("dev", data_dir=tmp_path, database=module_database) as proc:
        sns = client("sns", proc.endpoint)
        topic = subscribed_topic(sns, sink, "gives-up", policy)
        sink.status = 500
        message_id = sns.publish(TopicArn=topic, Message="never")["MessageId"]
        url = module_database
        deadline = time.monotonic() + 15
        while True:
            (row,) = query_url(
                url,
                "SELECT state, attempts, last_error FROM sns_deliveries WHERE message_id = :m",
                m=message_id,
            )
            if row["state"] == "failed" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (row["state"], row["attempts"], row["last_error"]) == ("failed", 2, "HTTP 500")
        sink.status = 200
        time.sleep(1.5)
        assert notifications(sink) == set()
