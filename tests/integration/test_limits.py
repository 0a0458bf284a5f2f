"""Limits of docs/limits.md that no other test reaches, each hit once over the API with the error SES
(or SNS) gives for it."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Serve

SIMPLE = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_a_bulk_call_takes_at_most_50_destinations(serve: Serve) -> None:
    account = serve.new_account("bulk-limit")
    v1, v2 = serve.client("ses", account), serve.client("sesv2", account)
    v2.create_email_template(TemplateName="t", TemplateContent={"Subject": "s", "Text": "b"})
    entries = [{"Destination": {"ToAddresses": [f"r{i}@example.org"]}} for i in range(51)]
    with pytest.raises(ClientError) as v2_refused:
        v2.send_bulk_email(
            FromEmailAddress="me@example.org",
            DefaultContent={"Template": {"TemplateName": "t", "TemplateData": "{}"}},
            BulkEmailEntries=entries,
        )
    assert error(v2_refused)[0] == "BadRequestException" and "Too many entries" in error(v2_refused)[1]
    with pytest.raises(ClientError) as v1_refused:
        v1.send_bulk_templated_email(
            Source="me@example.org", Template="t", DefaultTemplateData="{}", Destinations=entries
        )
    assert error(v1_refused)[0] == "InvalidParameterValue" and "Too many destinations" in error(v1_refused)[1]


def test_a_stored_template_over_500_kb_is_refused(serve: Serve) -> None:
    account = serve.new_account("template-limit")
    v1, v2 = serve.client("ses", account), serve.client("sesv2", account)
    big = "x" * (500 * 1024 + 1)
    with pytest.raises(ClientError) as v2_refused:
        v2.create_email_template(TemplateName="big", TemplateContent={"Subject": "s", "Text": big})
    assert error(v2_refused) == ("BadRequestException", "Template is larger than 500 KB.")
    with pytest.raises(ClientError) as v1_refused:
        v1.create_template(Template={"TemplateName": "big", "SubjectPart": "s", "TextPart": big})
    assert error(v1_refused) == ("InvalidParameterValue", "Template is larger than 500 KB.")
    v2.create_email_template(TemplateName="fits", TemplateContent={"Subject": "s", "Text": big[:-2]})


def test_an_identity_takes_at_most_20_policies(serve: Serve) -> None:
    account = serve.new_account("policy-limit")
    v2 = serve.client("sesv2", account)
    v2.create_email_identity(EmailIdentity="policies.test")
    arn = f"arn:aws:ses:us-east-1:{account['AccountId']}:identity/policies.test"
    statement = {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "ses:SendEmail"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{**statement, "Resource": arn}]})
    for i in range(20):
        v2.create_email_identity_policy(EmailIdentity="policies.test", PolicyName=f"p{i}", Policy=policy)
    with pytest.raises(v2.exceptions.LimitExceededException):
        v2.create_email_identity_policy(EmailIdentity="policies.test", PolicyName="p20", Policy=policy)
    v2.update_email_identity_policy(EmailIdentity="policies.test", PolicyName="p0", Policy=policy)  # a change


def test_sns_publish_size_and_attribute_count(serve: Serve) -> None:
    account = serve.new_account("sns-limit")
    sns = serve.client("sns", account)
    topic = sns.create_topic(Name="limits")["TopicArn"]
    with pytest.raises(ClientError) as too_long:
        sns.publish(TopicArn=topic, Message="x" * (256 * 1024 + 1))
    assert error(too_long) == ("InvalidParameter", "Invalid parameter: Message too long")
    attributes = {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}
    with pytest.raises(ClientError) as too_many:
        sns.publish(TopicArn=topic, Message="m", MessageAttributes=attributes)
    assert (
        error(too_many)[0] == "InvalidParameter" and "exceeds the allowed maximum [10]" in error(too_many)[1]
    )
    del attributes["a10"]
    assert sns.publish(TopicArn=topic, Message="x" * (256 * 1024), MessageAttributes=attributes)["MessageId"]
