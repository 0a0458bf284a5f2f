"""Verification emails are mail to strangers sent on an account's behalf: one per second per account and
region, as SES runs the operations that send them, and counted in the account's quota and statistics."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sesame.testing.servers import SesameProcess
from tests.conftest import Serve, query


@pytest.fixture(scope="module")
def sesame(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    data_dir = tmp_path_factory.mktemp("limits")
    # The emails stay in the queue, where the tests read them; DKIM keys are not what they measure.
    env = {"SESAME_DELIVERY__ENABLED": "false", "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024"}
    with SesameProcess("serve", data_dir=data_dir, database=module_database, env=env) as proc:
        yield Serve(proc, data_dir, module_database)


def _clients(sesame: Serve, account: dict[str, str]) -> tuple[Any, Any]:
    """v2 and v1 clients that make one attempt: botocore retries throttling errors by itself."""
    once = Config(retries={"total_max_attempts": 1})
    keys = {"aws_access_key_id": account["AccessKeyId"], "aws_secret_access_key": account["SecretAccessKey"]}
    v2, v1 = (
        boto3.client(service, endpoint_url=sesame.endpoint, region_name="us-east-1", config=once, **keys)
        for service in ("sesv2", "ses")
    )
    return v2, v1


def _error(call: Any, **kw: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as err:
        call(**kw)
    got = err.value.response
    return got["Error"]["Code"], got["Error"]["Message"], got["ResponseMetadata"]["HTTPStatusCode"]


def test_one_verification_email_per_second_each_counted(sesame: Serve) -> None:
    account = sesame.new_account("rate")
    v2, v1 = _clients(sesame, account)
    v2.create_email_identity(EmailIdentity="one@limits.test")
    throttled = ("TooManyRequestsException", "Rate exceeded", 429)
    assert _error(v2.create_email_identity, EmailIdentity="two@limits.test") == throttled
    assert _error(v1.verify_email_identity, EmailAddress="two@limits.test") == (
        "Throttling",
        "Rate exceeded",
        400,
    )
    assert _error(v1.verify_email_address, EmailAddress="two@limits.test")[0] == "Throttling"
    assert v1.list_identities()["Identities"] == ["one@limits.test"]  # a refused call creates nothing
    v2.create_email_identity(EmailIdentity="limits.test")  # a domain gets no email: not limited
    other = sesame.new_account("other")  # the limit is the account's own
    sesame.client("sesv2", other).create_email_identity(EmailIdentity="one@limits.test")

    time.sleep(1.0)
    v1.verify_email_address(EmailAddress="two@limits.test")
    assert v1.get_send_quota()["SentLast24Hours"] == 2.0
    assert v2.get_account()["SendQuota"]["SentLast24Hours"] == 2.0
    points = v1.get_send_statistics()["SendDataPoints"]
    assert sum(p["DeliveryAttempts"] for p in points) == 2


def test_custom_verification_emails_and_a_full_quota(sesame: Serve) -> None:
    account = sesame.new_account("quota")
    sesame.cli("accounts", "update", account["AccountId"], "--production")
    v2, v1 = _clients(sesame, account)
    v2.create_email_identity(EmailIdentity="hello@brand.test")  # the custom template's sender
    (msg,) = query(sesame, "SELECT body FROM messages WHERE account_id = :a", a=account["AccountId"])
    link = re.search(rb"http://\S+/_sesame/verify-email\?token=\w+", bytes(msg["body"]))
    assert link is not None and httpx.get(link.group().decode()).status_code == 200
    v1.create_custom_verification_email_template(
        TemplateName="welcome",
        FromEmailAddress="hello@brand.test",
        TemplateSubject="Please confirm",
        TemplateContent="<p>Welcome</p>",
        SuccessRedirectionURL="https://brand.test/ok",
        FailureRedirectionURL="https://brand.test/failed",
    )
    time.sleep(1.0)
    custom = {"TemplateName": "welcome"}
    v2.send_custom_verification_email(EmailAddress="a@fan.test", **custom)
    rate = ("Throttling", "Rate exceeded", 400)
    assert _error(v1.send_custom_verification_email, EmailAddress="b@fan.test", **custom) == rate
    rate = ("TooManyRequestsException", "Rate exceeded", 429)
    assert _error(v2.send_custom_verification_email, EmailAddress="b@fan.test", **custom) == rate
    assert v1.get_send_quota()["SentLast24Hours"] == 2.0

    sesame.cli("accounts", "update", account["AccountId"], "--max-24-hour-send", "2")  # now full
    full = ("LimitExceededException", "Daily message quota exceeded.", 400)
    assert _error(v2.send_custom_verification_email, EmailAddress="b@fan.test", **custom) == full
    assert _error(v2.create_email_identity, EmailIdentity="b@fan.test") == full
    daily = ("Throttling", "Daily message quota exceeded.", 400)
    assert _error(v1.verify_email_identity, EmailAddress="b@fan.test") == daily
    assert v1.get_send_quota()["SentLast24Hours"] == 2.0
