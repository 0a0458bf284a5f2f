"""dev mode: any key, no sandbox, LocalStack- and moto-compatible helpers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from sesame.testing.servers import SesameProcess
from tests.conftest import client


def test_any_key_works_and_twelve_digits_pick_the_account(dev: SesameProcess) -> None:
    default = client("sesv2", dev.endpoint, "anything", "whatever")
    got = default.get_account()
    assert got["ProductionAccessEnabled"] is True
    assert got["SendQuota"]["Max24HourSend"] == -1.0
    # SES documents -1 as unlimited for the daily quota only: the rate is always positive.
    assert got["SendQuota"]["MaxSendRate"] == 1_000_000.0
    default.put_account_sending_attributes(SendingEnabled=False)
    other = client("sesv2", dev.endpoint, "111122223333", "x")
    assert other.get_account()["SendingEnabled"] is True
    again = client("sesv2", dev.endpoint, "some-other-key", "y")  # also the default account
    assert again.get_account()["SendingEnabled"] is False
    # The account id shows in ARNs it owns.
    arn = "arn:aws:ses:us-east-1:111122223333:identity/example.com"
    other.create_email_identity(EmailIdentity="example.com")
    other.tag_resource(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}])
    assert other.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]


def test_health_and_localstack_messages(dev: SesameProcess) -> None:
    assert httpx.get(f"{dev.endpoint}/health").json() == {"status": "ok", "mode": "dev"}
    assert httpx.get(f"{dev.endpoint}/_aws/ses").json() == {"messages": []}
    assert httpx.delete(f"{dev.endpoint}/_aws/ses").status_code == 204


def test_reset_endpoints_wipe_state(dev: SesameProcess) -> None:
    for path in ("/_sesame/reset", "/moto-api/reset"):
        ses = client("sesv2", dev.endpoint, "444455556666", "x")
        ses.put_account_sending_attributes(SendingEnabled=False)
        assert ses.get_account()["SendingEnabled"] is False
        assert httpx.post(dev.endpoint + path).status_code == 200
        assert ses.get_account()["SendingEnabled"] is True


def test_v1_works_in_dev_mode(dev: SesameProcess) -> None:
    ses = client("ses", dev.endpoint, "test", "test", region="eu-central-1")
    assert ses.get_send_quota()["MaxSendRate"] == 1_000_000.0
    assert ses.get_account_sending_enabled()["Enabled"] is True


def test_enum_violations_use_aws_wording(dev: SesameProcess) -> None:
    v1, v2 = client("ses", dev.endpoint), client("sesv2", dev.endpoint)
    with pytest.raises(ClientError) as err:
        v1.list_identities(IdentityType="Unknown")
    assert err.value.response["Error"] == {
        "Type": "Sender",
        "Code": "ValidationError",
        "Message": "1 validation error detected: Value 'Unknown' at 'identityType' failed to satisfy "
        "constraint: Member must satisfy enum value set: [Domain, EmailAddress]",
    }
    with pytest.raises(v2.exceptions.BadRequestException) as bad:
        v2.put_account_details(MailType="NEWS", WebsiteURL="https://example.com")
    assert bad.value.response["Error"]["Message"] == (
        "1 validation error detected: Value at 'mailType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [MARKETING, TRANSACTIONAL]"
    )


def test_custom_mail_from_is_verified_at_once_in_dev_mode(dev: SesameProcess) -> None:
    v2 = client("sesv2", dev.endpoint, "210987654321", "x")
    v2.create_email_identity(EmailIdentity="mf-dev.test")
    v2.put_email_identity_mail_from_attributes(
        EmailIdentity="mf-dev.test", MailFromDomain="bounce.mf-dev.test", BehaviorOnMxFailure="REJECT_MESSAGE"
    )
    got = v2.get_email_identity(EmailIdentity="mf-dev.test")["MailFromAttributes"]
    assert got["MailFromDomainStatus"] == "SUCCESS"
    # With RejectMessage, a pending MAIL FROM domain would refuse every send from the identity.
    sent = v2.send_email(
        FromEmailAddress="app@mf-dev.test",
        Destination={"ToAddresses": ["someone@example.com"]},
        Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
    )
    assert sent["MessageId"]


def test_regions_outside_ses_are_refused_in_dev_mode_too(dev: SesameProcess) -> None:
    for service, call in (("sesv2", "get_account"), ("ses", "get_send_quota")):
        with pytest.raises(ClientError) as err:
            getattr(client(service, dev.endpoint, region="xx-nowhere-1"), call)()
        assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
        assert "scoped to a valid region, not 'xx-nowhere-1'." in err.value.response["Error"]["Message"]
    assert client("ses", dev.endpoint, region="sa-east-1").get_send_quota()["Max24HourSend"] == -1.0


def test_regions_setting_limits_the_regions(tmp_path: Path) -> None:
    env = {"SESAME_REGIONS": "eu-west-1,eu-central-1"}
    with SesameProcess("dev", data_dir=tmp_path, env=env) as proc:
        for region in ("eu-west-1", "eu-central-1", "us-east-1"):  # us-east-1: the default region
            assert client("sesv2", proc.endpoint, region=region).get_account()["SendingEnabled"] is True
        with pytest.raises(ClientError) as err:
            client("sesv2", proc.endpoint, region="us-west-2").get_account()
        assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
