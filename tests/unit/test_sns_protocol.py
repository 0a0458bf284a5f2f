"""Sesame's SNS on the query codec, against botocore over every operation of the sns model; and the
delivery policies' retry schedules."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from sesame.awsapi import errors
from sesame.awsapi.protocols import query
from sesame.awsapi.spec import service_model
from sesame.integrations.sns import InvalidParameter, policy
from sesame.testing.examples import example
from tests.unit.test_query_protocol import botocore_parse, botocore_request, expected_params, normalize

SNS = service_model("sns")
SNS_XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"


@pytest.mark.parametrize("name", SNS.operation_names)
def test_request_round_trip(name: str) -> None:
    op = SNS.operation_model(name)
    params = example(op.input_shape)
    form = query.read_form(botocore_request(name, params, SNS))
    assert form["Version"] == "2010-03-31"
    assert query.operation_name(form, "sns") == name
    assert normalize(query.parse(op, form)) == expected_params(params)


@pytest.mark.parametrize("name", SNS.operation_names)
def test_response_round_trip(name: str) -> None:
    op = SNS.operation_model(name)
    result = example(op.output_shape)
    resp = query.serialize(op, result, "req-1")
    assert ET.fromstring(resp.body).tag == f"{{{SNS_XMLNS}}}{name}Response"
    parsed = botocore_parse(resp, op.output_shape)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "req-1"
    assert normalize(parsed) == normalize(result)


def test_an_ses_action_is_no_sns_operation() -> None:
    with pytest.raises(errors.InvalidAction):
        query.operation_name({"Action": "SendEmail", "Version": "2010-03-31"}, "sns")
    with pytest.raises(errors.InvalidAction):
        query.operation_name({"Action": "Publish", "Version": "2010-12-01"}, "sns")


def test_sns_errors_carry_sns_codes_and_namespace() -> None:
    err = errors.service_errors("sns").NotFoundException("Topic does not exist")
    resp = query.serialize_error(err, "r", query.xmlns("sns"))
    root = ET.fromstring(resp.body)
    assert resp.status == 404 and root.tag == f"{{{SNS_XMLNS}}}ErrorResponse"
    assert root.findtext(f"{{{SNS_XMLNS}}}Error/{{{SNS_XMLNS}}}Code") == "NotFound"


def test_default_policy_is_three_retries_twenty_seconds_apart() -> None:
    retry, content_type = policy.effective(None, None)
    assert [retry.delay(n) for n in range(1, 5)] == [20.0, 20.0, 20.0, None]
    assert content_type == "text/plain; charset=UTF-8"


def test_policy_phases_and_backoff() -> None:
    retry = policy.parse_retry(
        {
            "minDelayTarget": 1,
            "maxDelayTarget": 16,
            "numRetries": 9,
            "numNoDelayRetries": 2,
            "numMinDelayRetries": 1,
            "numMaxDelayRetries": 1,
            "backoffFunction": "exponential",
        }
    )
    delays = [retry.delay(n) for n in range(1, 11)]
    assert delays[:3] == [0.0, 0.0, 1.0]  # immediate, then pre-backoff
    assert delays[3] == 1.0 and delays[7] == 16.0  # the backoff phase goes from min to max…
    assert delays[3:8] == sorted(delays[3:8])  # …rising
    assert delays[8:] == [16.0, None]  # post-backoff, then none left


def test_subscription_policy_overrides_unless_the_topic_forbids_it() -> None:
    topic = json.dumps(
        {"http": {"defaultHealthyRetryPolicy": {"minDelayTarget": 5, "maxDelayTarget": 5, "numRetries": 1}}}
    )
    sub = json.dumps(
        {
            "healthyRetryPolicy": {"minDelayTarget": 2, "maxDelayTarget": 2, "numRetries": 2},
            "requestPolicy": {"headerContentType": "application/json"},
        }
    )
    retry, content_type = policy.effective(topic, sub)
    assert (retry.num_retries, retry.min_delay, content_type) == (2, 2, "application/json")
    locked = topic.replace('"http": {', '"http": {"disableSubscriptionOverrides": true, ')
    retry, _ = policy.effective(locked, sub)
    assert (retry.num_retries, retry.min_delay) == (1, 5)


@pytest.mark.parametrize(
    "doc",
    [
        {"minDelayTarget": 0},
        {"minDelayTarget": 30, "maxDelayTarget": 20},
        {"numRetries": 101},
        {"backoffFunction": "cubic"},
        {"minDelayTarget": 3600, "maxDelayTarget": 3600, "numRetries": 2},  # over an hour in all
        {"numRetries": 1, "numNoDelayRetries": 2},
    ],
)
def test_policies_sns_refuses(doc: dict[str, object]) -> None:
    with pytest.raises(InvalidParameter):
        policy.parse_retry(doc)
