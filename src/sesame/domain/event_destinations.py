"""Event destinations: where a configuration set's event records go (SNS, Firehose, CloudWatch,
EventBridge, Pinpoint), and which event types each one takes.

They are kept in the set's options under ``EventDestinations``, as SES v2 spells an EventDestination
(``SnsDestination.TopicArn``, ``MatchingEventTypes: ["SEND", "OPEN", …]``); the v1 provider converts its
own spelling (``SNSDestination.TopicARN``, ``send``, ``open``) both ways.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sesame.domain.configuration_sets import ConfigurationSets
from sesame.errors import AlreadyExists, InvalidRequest, LimitExceeded, NotFound

GROUP = "EventDestinations"
MAX_PER_SET = 10  # SES quota: event destinations per configuration set
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: The v2 MatchingEventTypes value → the ``event_type`` of a row in the events table.
EVENT_TYPES = {
    "SEND": "Send",
    "REJECT": "Reject",
    "BOUNCE": "Bounce",
    "COMPLAINT": "Complaint",
    "DELIVERY": "Delivery",
    "OPEN": "Open",
    "CLICK": "Click",
    "RENDERING_FAILURE": "RenderingFailure",
    "DELIVERY_DELAY": "DeliveryDelay",
    "SUBSCRIPTION": "Subscription",
}
KINDS = (
    "SnsDestination",
    "KinesisFirehoseDestination",
    "CloudWatchDestination",
    "EventBridgeDestination",
    "PinpointDestination",
)

_SNS_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}")
_FIREHOSE_ARN = re.compile(r"arn:aws[a-z-]*:firehose:[a-z0-9-]+:\d{12}:deliverystream/[A-Za-z0-9_.-]{1,64}")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
# The pattern of the CloudFormation/API documentation; SES takes only the default bus.
_EVENT_BUS_ARN = re.compile(r"arn:aws[a-z0-9-]*:events:[a-z0-9-]+:\d{12}:event-bus/[^:]+")
_DIMENSION_NAME = re.compile(r"[A-Za-z0-9_:-]{1,256}")
_DIMENSION_VALUE = re.compile(r"[A-Za-z0-9_\-@.]{1,256}")
#: Headers SES will not take as a CloudWatch dimension's value source.
_NOT_DIMENSIONS = {"received", "to", "from", "dkim-signature", "cc", "message-id", "return-path"}
MAX_DIMENSIONS = 10


class EventDestinationNotFound(NotFound):
    pass


class EventDestinationExists(AlreadyExists):
    pass


class TooManyEventDestinations(LimitExceeded):
    pass


class InvalidEventDestination(InvalidRequest):
    pass


class InvalidSnsDestination(InvalidEventDestination):
    pass


class InvalidFirehoseDestination(InvalidEventDestination):
    pass


class InvalidCloudWatchDestination(InvalidEventDestination):
    pass


class InvalidEventBridgeDestination(InvalidEventDestination):
    pass


@dataclass(frozen=True)
class EventDestination:
    """One destination as publishing reads it."""

    name: str
    kind: str  # one of KINDS
    target: dict[str, Any]  # the kind's own member (TopicArn, DeliveryStreamArn, DimensionConfigurations…)
    event_types: frozenset[str]  # events-table spellings: "Send", "Delivery", …

    @staticmethod
    def of(stored: dict[str, Any]) -> EventDestination:
        kind = next(k for k in KINDS if stored.get(k) is not None)
        return EventDestination(
            stored["Name"],
            kind,
            dict(stored[kind]),
            frozenset(EVENT_TYPES[t] for t in stored.get("MatchingEventTypes") or []),
        )


def enabled(options: dict[str, Any]) -> list[EventDestination]:
    """The enabled destinations of a set's options."""
    return [EventDestination.of(d) for d in options.get(GROUP) or [] if d.get("Enabled")]


def validate(name: str, definition: dict[str, Any]) -> dict[str, Any]:
    """The destination to store, or the error SES answers for it."""
    if not _NAME.fullmatch(name):
        raise InvalidEventDestination(
            f"Invalid event destination name <{name}>: only alphanumeric ASCII characters, '_' and '-' "
            "are allowed, at most 64."
        )
    given = [k for k in KINDS if definition.get(k) is not None]
    if len(given) != 1:
        raise InvalidEventDestination("An event destination must name one, and only one, destination.")
    kind = given[0]
    types = list(dict.fromkeys(definition.get("MatchingEventTypes") or []))
    if not types:
        raise InvalidEventDestination("MatchingEventTypes must name at least one event type.")
    target = dict(definition[kind])
    _CHECKS[kind](target)
    return {"Name": name, "Enabled": bool(definition.get("Enabled", False)), "MatchingEventTypes": types,
            kind: target}  # fmt: skip


def _sns(target: dict[str, Any]) -> None:
    arn = target.get("TopicArn", "")
    if not _SNS_ARN.fullmatch(arn):
        raise InvalidSnsDestination(f"SNS topic <{arn}> not found.")


def _firehose(target: dict[str, Any]) -> None:
    stream, role = target.get("DeliveryStreamArn", ""), target.get("IamRoleArn", "")
    if not _FIREHOSE_ARN.fullmatch(stream):
        raise InvalidFirehoseDestination(f"Invalid delivery stream ARN <{stream}>.")
    if not _ROLE_ARN.fullmatch(role):
        raise InvalidFirehoseDestination(f"Invalid IAM role ARN <{role}>.")


def _cloudwatch(target: dict[str, Any]) -> None:
    dimensions = target.get("DimensionConfigurations") or []
    if not dimensions or len(dimensions) > MAX_DIMENSIONS:
        raise InvalidCloudWatchDestination(
            f"A CloudWatch destination needs between 1 and {MAX_DIMENSIONS} dimension configurations."
        )
    for d in dimensions:
        name, source = d.get("DimensionName", ""), d.get("DimensionValueSource", "")
        if not _DIMENSION_NAME.fullmatch(name):
            raise InvalidCloudWatchDestination(f"Invalid dimension name <{name}>.")
        if not _DIMENSION_VALUE.fullmatch(d.get("DefaultDimensionValue", "")):
            raise InvalidCloudWatchDestination(
                f"Invalid default value <{d.get('DefaultDimensionValue', '')}> for dimension <{name}>."
            )
        if source == "EMAIL_HEADER" and name.lower() in _NOT_DIMENSIONS:
            raise InvalidCloudWatchDestination(f"The header <{name}> cannot be a dimension.")


def _event_bridge(target: dict[str, Any]) -> None:
    arn = target.get("EventBusArn", "")
    if not _EVENT_BUS_ARN.fullmatch(arn) or not arn.endswith(":event-bus/default"):
        raise InvalidEventBridgeDestination(
            f"Invalid event bus ARN <{arn}>: only the default event bus can be a destination."
        )


def _pinpoint(target: dict[str, Any]) -> None:
    pass  # stored, never delivered (Sesame has no Pinpoint); `sesame events` says so


_CHECKS = {
    "SnsDestination": _sns,
    "KinesisFirehoseDestination": _firehose,
    "CloudWatchDestination": _cloudwatch,
    "EventBridgeDestination": _event_bridge,
    "PinpointDestination": _pinpoint,
}


class EventDestinations:
    def __init__(self, configuration_sets: ConfigurationSets) -> None:
        self.configuration_sets = configuration_sets

    async def list(self, account_id: str, region: str, set_name: str) -> list[dict[str, Any]]:
        row = await self.configuration_sets.get(account_id, region, set_name)
        return [dict(d) for d in (row.options or {}).get(GROUP) or []]

    async def create(
        self, account_id: str, region: str, set_name: str, name: str, definition: dict[str, Any]
    ) -> None:
        stored = validate(name, definition)

        def change(options: dict[str, Any]) -> None:
            current = list(options.get(GROUP) or [])
            if any(d["Name"] == name for d in current):
                raise EventDestinationExists(
                    f"Event destination {name} already exists in configuration set {set_name}."
                )
            if len(current) >= MAX_PER_SET:
                raise TooManyEventDestinations(
                    f"A configuration set can have at most {MAX_PER_SET} event destinations."
                )
            options[GROUP] = [*current, stored]

        await self.configuration_sets.update(account_id, region, set_name, change)

    async def update(
        self, account_id: str, region: str, set_name: str, name: str, definition: dict[str, Any]
    ) -> None:
        stored = validate(name, definition)

        def change(options: dict[str, Any]) -> None:
            current = list(options.get(GROUP) or [])
            at = _index(current, set_name, name)
            current[at] = stored
            options[GROUP] = current

        await self.configuration_sets.update(account_id, region, set_name, change)

    async def delete(self, account_id: str, region: str, set_name: str, name: str) -> None:
        def change(options: dict[str, Any]) -> None:
            current = list(options.get(GROUP) or [])
            del current[_index(current, set_name, name)]
            options[GROUP] = current

        await self.configuration_sets.update(account_id, region, set_name, change)


def _index(current: list[dict[str, Any]], set_name: str, name: str) -> int:
    for i, d in enumerate(current):
        if d["Name"] == name:
            return i
    raise EventDestinationNotFound(
        f"Event destination {name} does not exist in configuration set {set_name}."
    )
