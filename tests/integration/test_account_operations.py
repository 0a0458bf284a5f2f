"""Account-level operations, v1 and v2, as boto3 sees them (serve mode, SigV4)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Serve

DETAILS = {
    "MailType": "TRANSACTIONAL",
    "WebsiteURL": "https://example.com",
    "ContactLanguage": "EN",
    "UseCaseDescription": "Receipts for our shop",
    "AdditionalContactEmailAddresses": ["ops@example.com"],
}


def test_production_access_review_then_operator_grants(serve: Serve) -> None:
    account = serve.new_account("review")
    v2 = serve.client("sesv2", account)
    v2.put_account_details(**DETAILS, ProductionAccessEnabled=True)
    got = v2.get_account()
    assert got["ProductionAccessEnabled"] is False
    assert got["Details"]["ReviewDetails"]["Status"] == "PENDING"
    assert got["Details"]["MailType"] == "TRANSACTIONAL"
    assert got["Details"]["AdditionalContactEmailAddresses"] == ["ops@example.com"]

    with pytest.raises(v2.exceptions.ConflictException):
        v2.put_account_details(**DETAILS, ProductionAccessEnabled=True)

    updated = json.loads(serve.cli("accounts", "update", account["AccountId"], "--production"))
    assert updated["Sandbox"] is False
    got = v2.get_account()
    assert got["ProductionAccessEnabled"] is True
    assert got["Details"]["ReviewDetails"]["Status"] == "GRANTED"


def test_operator_sets_quotas(serve: Serve) -> None:
    account = serve.new_account("quotas")
    v1 = serve.client("ses", account)
    assert v1.get_send_quota()["Max24HourSend"] == 200.0
    serve.cli(
        "accounts", "update", account["AccountId"], "--max-send-rate", "14", "--max-24-hour-send", "50000"
    )
    quota = v1.get_send_quota()
    assert (quota["MaxSendRate"], quota["Max24HourSend"]) == (14.0, 50000.0)
    # A region first used after the change starts from the new defaults too.
    assert serve.client("ses", account, region="ap-south-1").get_send_quota()["MaxSendRate"] == 14.0


def test_sending_switch_v1_and_v2_are_one_switch(serve: Serve) -> None:
    account = serve.new_account("switch")
    v1, v2 = serve.client("ses", account), serve.client("sesv2", account)
    assert v1.get_account_sending_enabled()["Enabled"] is True
    v1.update_account_sending_enabled(Enabled=False)
    assert v2.get_account()["SendingEnabled"] is False
    v2.put_account_sending_attributes(SendingEnabled=True)
    assert v1.get_account_sending_enabled()["Enabled"] is True


def test_suppression_warmup_and_vdm_attributes(serve: Serve) -> None:
    v2 = serve.client("sesv2", serve.new_account("suppression"))
    assert v2.get_account()["SuppressionAttributes"]["SuppressedReasons"] == ["BOUNCE", "COMPLAINT"]
    v2.put_account_suppression_attributes(SuppressedReasons=["COMPLAINT"])
    assert v2.get_account()["SuppressionAttributes"]["SuppressedReasons"] == ["COMPLAINT"]
    v2.put_account_suppression_attributes(SuppressedReasons=[])
    assert v2.get_account()["SuppressionAttributes"]["SuppressedReasons"] == []
    v2.put_account_dedicated_ip_warmup_attributes(AutoWarmupEnabled=True)
    assert v2.get_account()["DedicatedIpAutoWarmupEnabled"] is True
    v2.put_account_vdm_attributes(VdmAttributes={"VdmEnabled": "ENABLED"})
    assert v2.get_account()["VdmAttributes"]["VdmEnabled"] == "ENABLED"


def test_tags_round_trip_and_stay_in_their_account(serve: Serve) -> None:
    account, other = serve.new_account("tags"), serve.new_account("other")
    v2 = serve.client("sesv2", account)
    arn = f"arn:aws:ses:us-east-1:{account['AccountId']}:configuration-set/my-set"
    v2.create_configuration_set(ConfigurationSetName="my-set")
    v2.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "mail"}, {"Key": "env", "Value": "prod"}])
    v2.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "staging"}])
    assert v2.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "env", "Value": "staging"},
        {"Key": "team", "Value": "mail"},
    ]
    v2.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert v2.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "staging"}]
    with pytest.raises(v2.exceptions.NotFoundException):
        serve.client("sesv2", other).list_tags_for_resource(ResourceArn=arn)
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.tag_resource(ResourceArn="not-an-arn", Tags=[{"Key": "a", "Value": "b"}])
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    with pytest.raises(ClientError):
        v2.tag_resource(ResourceArn=arn, Tags=too_many)


def test_model_validation_errors_reach_boto3(serve: Serve) -> None:
    account = serve.new_account("validation")
    v2 = serve.client("sesv2", account, validate=False)
    with pytest.raises(v2.exceptions.BadRequestException) as err:
        v2.put_account_details(MailType="TRANSACTIONAL")  # WebsiteURL missing
    assert "websiteURL" in err.value.response["Error"]["Message"]
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.put_account_details(MailType="CHATTY", WebsiteURL="https://example.com")
    # v1 validates before anything else, as SES does: even an operation Sesame lacks.
    v1 = serve.client("ses", account, validate=False)
    with pytest.raises(ClientError) as err:
        v1.verify_email_identity()
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unimplemented_operations_answer_a_typed_error(serve: Serve) -> None:
    account = serve.new_account("unimplemented")
    v2 = serve.client("sesv2", account)
    with pytest.raises(ClientError) as err:
        v2.list_multi_region_endpoints()
    assert err.value.response["Error"]["Code"] == "NotImplemented"
    assert "ListMultiRegionEndpoints" in err.value.response["Error"]["Message"]
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    v1 = serve.client("ses", account)
    with pytest.raises(v1.exceptions.MessageRejected):  # every v1 operation is implemented now
        v1.send_bounce(
            OriginalMessageId="m",
            BounceSender="a@example.com",
            BouncedRecipientInfoList=[{"Recipient": "b@example.com"}],
        )
