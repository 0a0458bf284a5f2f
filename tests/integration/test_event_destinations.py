"""Event destinations of configuration sets, v1 and v2, as boto3 sees them (serve mode, both databases)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Serve

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
STREAM = "arn:aws:firehose:us-east-1:123456789012:deliverystream/ses-events"
ROLE = "arn:aws:iam::123456789012:role/ses-firehose"
BUS = "arn:aws:events:us-east-1:123456789012:event-bus/default"


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_v2_create_get_update_delete(serve: Serve) -> None:
    v2 = serve.client("sesv2", serve.new_account("dest-v2"))
    v2.create_configuration_set(ConfigurationSetName="shop")
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="shop",
        EventDestinationName="to-sns",
        EventDestination={
            "Enabled": True,
            "MatchingEventTypes": ["SEND", "DELIVERY", "BOUNCE", "DELIVERY_DELAY"],
            "SnsDestination": {"TopicArn": TOPIC},
        },
    )
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="shop",
        EventDestinationName="to-bus",
        EventDestination={"MatchingEventTypes": ["OPEN"], "EventBridgeDestination": {"EventBusArn": BUS}},
    )
    got = v2.get_configuration_set_event_destinations(ConfigurationSetName="shop")["EventDestinations"]
    assert got == [
        {
            "Name": "to-sns",
            "Enabled": True,
            "MatchingEventTypes": ["SEND", "DELIVERY", "BOUNCE", "DELIVERY_DELAY"],
            "SnsDestination": {"TopicArn": TOPIC},
        },
        {
            "Name": "to-bus",
            "Enabled": False,
            "MatchingEventTypes": ["OPEN"],
            "EventBridgeDestination": {"EventBusArn": BUS},
        },
    ]

    # An update replaces the whole definition, destination kind included.
    v2.update_configuration_set_event_destination(
        ConfigurationSetName="shop",
        EventDestinationName="to-sns",
        EventDestination={
            "Enabled": False,
            "MatchingEventTypes": ["COMPLAINT"],
            "KinesisFirehoseDestination": {"IamRoleArn": ROLE, "DeliveryStreamArn": STREAM},
        },
    )
    got = v2.get_configuration_set_event_destinations(ConfigurationSetName="shop")["EventDestinations"]
    assert got[0] == {
        "Name": "to-sns",
        "Enabled": False,
        "MatchingEventTypes": ["COMPLAINT"],
        "KinesisFirehoseDestination": {"IamRoleArn": ROLE, "DeliveryStreamArn": STREAM},
    }

    v2.delete_configuration_set_event_destination(ConfigurationSetName="shop", EventDestinationName="to-bus")
    got = v2.get_configuration_set_event_destinations(ConfigurationSetName="shop")["EventDestinations"]
    assert [d["Name"] for d in got] == ["to-sns"]


def test_v2_errors(serve: Serve) -> None:
    v2 = serve.client("sesv2", serve.new_account("dest-v2-errors"))
    v2.create_configuration_set(ConfigurationSetName="shop")
    sns = {"MatchingEventTypes": ["SEND"], "SnsDestination": {"TopicArn": TOPIC}}

    def create(name: str, definition: dict[str, Any], config: str = "shop") -> None:
        v2.create_configuration_set_event_destination(
            ConfigurationSetName=config, EventDestinationName=name, EventDestination=definition
        )

    with pytest.raises(v2.exceptions.NotFoundException):
        create("a", sns, config="nope")
    create("a", sns)
    with pytest.raises(v2.exceptions.AlreadyExistsException):
        create("a", sns)
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.delete_configuration_set_event_destination(ConfigurationSetName="shop", EventDestinationName="b")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.update_configuration_set_event_destination(
            ConfigurationSetName="shop", EventDestinationName="b", EventDestination=sns
        )
    bad = [
        {**sns, "SnsDestination": {"TopicArn": "not-an-arn"}},
        {**sns, "KinesisFirehoseDestination": {"IamRoleArn": ROLE, "DeliveryStreamArn": STREAM}},  # two
        {"MatchingEventTypes": ["SEND"]},  # none
        {"MatchingEventTypes": [], "SnsDestination": {"TopicArn": TOPIC}},
        {
            "MatchingEventTypes": ["SEND"],
            "EventBridgeDestination": {"EventBusArn": BUS.replace("/default", "/custom")},
        },
        {
            "MatchingEventTypes": ["SEND"],
            "CloudWatchDestination": {
                "DimensionConfigurations": [
                    {
                        "DimensionName": "To",
                        "DimensionValueSource": "EMAIL_HEADER",
                        "DefaultDimensionValue": "x",
                    }
                ]
            },
        },
    ]
    for definition in bad:
        with pytest.raises(v2.exceptions.BadRequestException):
            create("b", definition)
    with pytest.raises(v2.exceptions.BadRequestException):
        create("bad name!", sns)
    for i in range(9):
        create(f"more-{i}", sns)
    with pytest.raises(v2.exceptions.LimitExceededException):
        create("eleventh", sns)


def test_v1_spelling_and_errors(serve: Serve) -> None:
    account = serve.new_account("dest-v1")
    v1, v2 = serve.client("ses", account), serve.client("sesv2", account)
    v1.create_configuration_set(ConfigurationSet={"Name": "shop"})
    v1.create_configuration_set_event_destination(
        ConfigurationSetName="shop",
        EventDestination={
            "Name": "metrics",
            "Enabled": True,
            "MatchingEventTypes": ["send", "renderingFailure"],
            "CloudWatchDestination": {
                "DimensionConfigurations": [
                    {
                        "DimensionName": "ses:configuration-set",
                        "DimensionValueSource": "messageTag",
                        "DefaultDimensionValue": "none",
                    }
                ]
            },
        },
    )
    v1.create_configuration_set_event_destination(
        ConfigurationSetName="shop",
        EventDestination={
            "Name": "sns",
            "MatchingEventTypes": ["bounce"],
            "SNSDestination": {"TopicARN": TOPIC},
        },
    )
    # The same destinations, each API in its own spelling.
    assert v2.get_configuration_set_event_destinations(ConfigurationSetName="shop")["EventDestinations"][
        0
    ] == {
        "Name": "metrics",
        "Enabled": True,
        "MatchingEventTypes": ["SEND", "RENDERING_FAILURE"],
        "CloudWatchDestination": {
            "DimensionConfigurations": [
                {
                    "DimensionName": "ses:configuration-set",
                    "DimensionValueSource": "MESSAGE_TAG",
                    "DefaultDimensionValue": "none",
                }
            ]
        },
    }
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="shop",
        EventDestinationName="bus",
        EventDestination={"MatchingEventTypes": ["SEND"], "EventBridgeDestination": {"EventBusArn": BUS}},
    )
    described = v1.describe_configuration_set(
        ConfigurationSetName="shop", ConfigurationSetAttributeNames=["eventDestinations"]
    )
    # v1 has no EventBridge destinations: it does not show them.
    assert described["EventDestinations"] == [
        {
            "Name": "metrics",
            "Enabled": True,
            "MatchingEventTypes": ["send", "renderingFailure"],
            "CloudWatchDestination": {
                "DimensionConfigurations": [
                    {
                        "DimensionName": "ses:configuration-set",
                        "DimensionValueSource": "messageTag",
                        "DefaultDimensionValue": "none",
                    }
                ]
            },
        },
        {
            "Name": "sns",
            "Enabled": False,
            "MatchingEventTypes": ["bounce"],
            "SNSDestination": {"TopicARN": TOPIC},
        },
    ]

    with pytest.raises(ClientError) as exc:
        v1.create_configuration_set_event_destination(
            ConfigurationSetName="shop",
            EventDestination={
                "Name": "sns",
                "MatchingEventTypes": ["send"],
                "SNSDestination": {"TopicARN": TOPIC},
            },
        )
    assert _code(exc) == "EventDestinationAlreadyExists"
    with pytest.raises(ClientError) as exc:
        v1.create_configuration_set_event_destination(
            ConfigurationSetName="shop",
            EventDestination={
                "Name": "x",
                "MatchingEventTypes": ["send"],
                "SNSDestination": {"TopicARN": "x"},
            },
        )
    assert _code(exc) == "InvalidSNSDestination"
    with pytest.raises(ClientError) as exc:
        v1.create_configuration_set_event_destination(
            ConfigurationSetName="shop",
            EventDestination={
                "Name": "x",
                "MatchingEventTypes": ["send"],
                "KinesisFirehoseDestination": {"IAMRoleARN": "role", "DeliveryStreamARN": STREAM},
            },
        )
    assert _code(exc) == "InvalidFirehoseDestination"
    with pytest.raises(ClientError) as exc:
        v1.delete_configuration_set_event_destination(ConfigurationSetName="shop", EventDestinationName="x")
    assert _code(exc) == "EventDestinationDoesNotExist"
    with pytest.raises(ClientError) as exc:
        v1.delete_configuration_set_event_destination(ConfigurationSetName="nope", EventDestinationName="x")
    assert _code(exc) == "ConfigurationSetDoesNotExist"
    v1.update_configuration_set_event_destination(
        ConfigurationSetName="shop",
        EventDestination={"Name": "sns", "Enabled": True, "MatchingEventTypes": ["bounce", "complaint"],
                          "SNSDestination": {"TopicARN": TOPIC}},
    )  # fmt: skip
    v1.delete_configuration_set_event_destination(ConfigurationSetName="shop", EventDestinationName="metrics")
    names = [
        d["Name"]
        for d in v2.get_configuration_set_event_destinations(ConfigurationSetName="shop")["EventDestinations"]
    ]
    assert names == ["sns", "bus"]


def test_concurrent_creates_all_kept(serve: Serve) -> None:
    """Ten destinations created at once, each by its own request: none overwrites another."""
    v2 = serve.client("sesv2", serve.new_account("dest-race"))
    v2.create_configuration_set(ConfigurationSetName="shop")

    def create(i: int) -> None:
        v2.create_configuration_set_event_destination(
            ConfigurationSetName="shop",
            EventDestinationName=f"d{i}",
            EventDestination={"MatchingEventTypes": ["SEND"], "SnsDestination": {"TopicArn": TOPIC}},
        )

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(create, range(10)))
    got = v2.get_configuration_set_event_destinations(ConfigurationSetName="shop")["EventDestinations"]
    assert sorted(d["Name"] for d in got) == sorted(f"d{i}" for i in range(10))
