"""Identities over boto3 against ``sesame serve``, verified through a real DNS server on loopback."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess, sesame_cli
from tests.conftest import Serve, client, query


@pytest.fixture(scope="module")
def sesame(
    module_database: str, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    data_dir = tmp_path_factory.mktemp("identities")
    env = {
        "SESAME_DNS__NAMESERVERS": dns_server.address,
        "SESAME_DNS__TIMEOUT": "2",
        "SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0",
        "SESAME_DELIVERY__ENABLED": "false",  # these tests look at the queue; delivery has its own
        "SESAME_IDENTITIES__RECHECK_INTERVAL": "1",
        "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024",  # key generation is not what these tests measure
        "SESAME_IDENTITIES__VERIFICATION_EMAIL_INTERVAL": "0",  # test_verification_limits measures it
    }
    with SesameProcess("serve", data_dir=data_dir, database=module_database, env=env) as proc:
        yield Serve(proc, data_dir, module_database)


@pytest.fixture
def account(sesame: Serve) -> dict[str, str]:
    return sesame.new_account("identities")


def records(sesame: Serve, account: dict[str, str], domain: str) -> str:
    return sesame.cli("identities", "records", domain, "--account", account["AccountId"])


def test_domain_is_verified_once_its_dkim_records_are_published(
    sesame: Serve, account: dict[str, str], dns_server: DnsServer
) -> None:
    v2 = sesame.client("sesv2", account)
    created = v2.create_email_identity(EmailIdentity="Example-One.test")
    assert created["IdentityType"] == "DOMAIN"
    assert created["VerifiedForSendingStatus"] is False
    dkim = created["DkimAttributes"]
    assert (dkim["Status"], dkim["SigningAttributesOrigin"], dkim["CurrentSigningKeyLength"]) == (
        "PENDING",
        "AWS_SES",
        "RSA_1024_BIT",
    )
    assert len(dkim["Tokens"]) == 3 and all(len(t) == 32 for t in dkim["Tokens"])

    got = v2.get_email_identity(EmailIdentity="example-one.test")
    assert got["VerificationStatus"] == "PENDING"
    assert got["VerificationInfo"]["ErrorType"] == "TYPE_NOT_FOUND"
    assert "LastCheckedTimestamp" in got["VerificationInfo"]

    zone = records(sesame, account, "example-one.test")
    lines = zone.splitlines()
    assert len(lines) == 3
    for token, line in zip(dkim["Tokens"], lines, strict=True):
        name, ttl, cls, rtype, value = line.split(None, 4)
        assert (name, cls, rtype) == (f"{token}._domainkey.example-one.test.", "IN", "TXT")
        assert value.startswith('"v=DKIM1; k=rsa; p=')
    dns_server.add_zone_lines(zone)

    got = v2.get_email_identity(EmailIdentity="example-one.test")
    assert got["VerificationStatus"] == "SUCCESS"
    assert got["VerifiedForSendingStatus"] is True
    assert got["DkimAttributes"]["Status"] == "SUCCESS"
    assert "LastSuccessTimestamp" in got["VerificationInfo"]
    listed = v2.list_email_identities()["EmailIdentities"]
    assert {"IdentityType": "DOMAIN", "IdentityName": "example-one.test", "SendingEnabled": True,
            "VerificationStatus": "SUCCESS"} in listed  # fmt: skip


def test_background_loop_verifies_without_anyone_asking(
    sesame: Serve, account: dict[str, str], dns_server: DnsServer
) -> None:
    v2 = sesame.client("sesv2", account)
    v2.create_email_identity(EmailIdentity="quiet.test")
    dns_server.add_zone_lines(records(sesame, account, "quiet.test"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # ListEmailIdentities reads state; it never looks anything up
        listed = {i["IdentityName"]: i for i in v2.list_email_identities()["EmailIdentities"]}
        if listed["quiet.test"]["VerificationStatus"] == "SUCCESS":
            break
        time.sleep(0.3)
    assert listed["quiet.test"]["VerificationStatus"] == "SUCCESS"


def test_v1_txt_token_verification(sesame: Serve, account: dict[str, str], dns_server: DnsServer) -> None:
    v1 = sesame.client("ses", account)
    token = v1.verify_domain_identity(Domain="legacy.test")["VerificationToken"]
    assert len(token) == 44
    assert v1.verify_domain_identity(Domain="LEGACY.test")["VerificationToken"] == token  # idempotent
    attrs = v1.get_identity_verification_attributes(Identities=["legacy.test", "unknown.test"])
    assert attrs["VerificationAttributes"] == {
        "legacy.test": {"VerificationStatus": "Pending", "VerificationToken": token}
    }
    assert f'_amazonses.legacy.test.\t1800\tIN\tTXT\t"{token}"' in records(sesame, account, "legacy.test")
    dns_server.add("_amazonses.legacy.test", "TXT", f'"{token}"')
    attrs = v1.get_identity_verification_attributes(Identities=["legacy.test"])
    assert attrs["VerificationAttributes"]["legacy.test"]["VerificationStatus"] == "Success"
    assert v1.list_identities(IdentityType="Domain")["Identities"] == ["legacy.test"]

    tokens = v1.verify_domain_dkim(Domain="legacy.test")["DkimTokens"]
    dkim = v1.get_identity_dkim_attributes(Identities=["legacy.test"])["DkimAttributes"]["legacy.test"]
    assert dkim == {"DkimEnabled": True, "DkimVerificationStatus": "Pending", "DkimTokens": tokens}
    v1.set_identity_dkim_enabled(Identity="legacy.test", DkimEnabled=False)
    dkim = v1.get_identity_dkim_attributes(Identities=["legacy.test"])["DkimAttributes"]["legacy.test"]
    assert dkim["DkimEnabled"] is False


def test_dns_failure_is_reported_and_status_kept(
    sesame: Serve, account: dict[str, str], dns_server: DnsServer
) -> None:
    v2 = sesame.client("sesv2", account)
    tokens = v2.create_email_identity(EmailIdentity="flaky.test")["DkimAttributes"]["Tokens"]
    dns_server.fail(f"{tokens[0]}._domainkey.flaky.test")
    got = v2.get_email_identity(EmailIdentity="flaky.test")
    assert got["VerificationStatus"] == "PENDING"
    assert got["VerificationInfo"]["ErrorType"] == "DNS_SERVER_ERROR"


def test_byodkim(sesame: Serve, account: dict[str, str], dns_server: DnsServer) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    v2 = sesame.client("sesv2", account)
    created = v2.create_email_identity(
        EmailIdentity="byo.test",
        DkimSigningAttributes={
            "DomainSigningSelector": "sel1",
            "DomainSigningPrivateKey": base64.b64encode(der).decode(),
        },
    )
    assert created["DkimAttributes"]["SigningAttributesOrigin"] == "EXTERNAL"
    assert created["DkimAttributes"]["Tokens"] == ["sel1"]
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    zone = records(sesame, account, "byo.test")
    p = base64.b64encode(public).decode()
    assert zone == f'sel1._domainkey.byo.test.\t1800\tIN\tTXT\t"v=DKIM1; k=rsa; p={p}"\n'
    dns_server.add_zone_lines(zone)
    assert v2.get_email_identity(EmailIdentity="byo.test")["DkimAttributes"]["Status"] == "SUCCESS"
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.create_email_identity(
            EmailIdentity="bad-key.test",
            DkimSigningAttributes={"DomainSigningSelector": "s", "DomainSigningPrivateKey": "bm90IGEga2V5"},
        )
    # Back to Easy DKIM: three new selectors, pending until published.
    out = v2.put_email_identity_dkim_signing_attributes(
        EmailIdentity="byo.test",
        SigningAttributesOrigin="AWS_SES",
        SigningAttributes={"NextSigningKeyLength": "RSA_1024_BIT"},
    )
    assert out["DkimStatus"] == "PENDING" and len(out["DkimTokens"]) == 3


def test_custom_mail_from(sesame: Serve, account: dict[str, str], dns_server: DnsServer) -> None:
    v2, v1 = sesame.client("sesv2", account), sesame.client("ses", account)
    v2.create_email_identity(EmailIdentity="mailfrom.test")
    with pytest.raises(v2.exceptions.BadRequestException) as bad:
        v2.put_email_identity_mail_from_attributes(EmailIdentity="mailfrom.test", MailFromDomain="other.test")
    assert bad.value.response["Error"]["Message"] == (
        "Provided MAIL-FROM domain <other.test> is not subdomain of the domain of the identity "
        "<mailfrom.test>."
    )
    with pytest.raises(ClientError) as missing:
        v1.set_identity_mail_from_domain(Identity="absent.test", MailFromDomain="m.absent.test")
    assert missing.value.response["Error"]["Message"] == "Identity <absent.test> does not exist."
    v2.put_email_identity_mail_from_attributes(
        EmailIdentity="mailfrom.test",
        MailFromDomain="bounce.mailfrom.test",
        BehaviorOnMxFailure="REJECT_MESSAGE",
    )
    zone = records(sesame, account, "mailfrom.test")
    assert re.search(r"^bounce\.mailfrom\.test\.\t1800\tIN\tMX\t10 \S+\.$", zone, re.MULTILINE)
    assert 'bounce.mailfrom.test.\t1800\tIN\tTXT\t"v=spf1 mx ~all"' in zone
    got = v2.get_email_identity(EmailIdentity="mailfrom.test")["MailFromAttributes"]
    assert got == {"MailFromDomain": "bounce.mailfrom.test", "MailFromDomainStatus": "FAILED",
                   "BehaviorOnMxFailure": "REJECT_MESSAGE"}  # fmt: skip
    dns_server.add("bounce.mailfrom.test", "MX", "10 bounces.mailfrom.test.")
    attrs = v1.get_identity_mail_from_domain_attributes(Identities=["mailfrom.test"])[
        "MailFromDomainAttributes"
    ]
    assert attrs["mailfrom.test"] == {
        "MailFromDomain": "bounce.mailfrom.test",
        "MailFromDomainStatus": "Success",
        "BehaviorOnMXFailure": "RejectMessage",
    }
    v1.set_identity_mail_from_domain(Identity="mailfrom.test")  # no domain: custom MAIL FROM off
    assert "MailFromAttributes" not in v2.get_email_identity(EmailIdentity="mailfrom.test")


def test_email_identities_and_errors(sesame: Serve, account: dict[str, str]) -> None:
    v2, v1 = sesame.client("sesv2", account), sesame.client("ses", account)
    created = v2.create_email_identity(
        EmailIdentity="Alice@Example-Two.TEST", Tags=[{"Key": "team", "Value": "a"}]
    )
    assert created["IdentityType"] == "EMAIL_ADDRESS"
    assert created["VerifiedForSendingStatus"] is False
    assert "DkimAttributes" not in created  # SES gives DKIM attributes to domains only here
    # The local part keeps its case; the domain is lower-cased.
    got = v2.get_email_identity(EmailIdentity="Alice@example-two.test")
    assert got["VerificationStatus"] == "PENDING"
    assert got["Tags"] == [{"Key": "team", "Value": "a"}]
    assert got["DkimAttributes"]["Status"] == "NOT_STARTED"
    with pytest.raises(v2.exceptions.AlreadyExistsException):
        v2.create_email_identity(EmailIdentity="Alice@example-two.test")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_email_identity(EmailIdentity="alice@example-two.test")
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.create_email_identity(EmailIdentity="no-dot")
    v1.verify_email_identity(EmailAddress="bob@example-two.test")
    v1.verify_email_address(EmailAddress="carol@example-two.test")
    assert v1.list_identities(IdentityType="EmailAddress")["Identities"] == [
        "Alice@example-two.test",
        "bob@example-two.test",
        "carol@example-two.test",
    ]
    assert v1.list_verified_email_addresses()["VerifiedEmailAddresses"] == []  # none clicked its link yet
    with pytest.raises(ClientError) as err:
        v1.verify_email_identity(EmailAddress="not-an-address.test")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    v1.delete_verified_email_address(EmailAddress="carol@example-two.test")
    v1.delete_identity(Identity="never-existed.test")  # v1: deleting nothing is fine
    v2.delete_email_identity(EmailIdentity="Alice@example-two.test")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.delete_email_identity(EmailIdentity="Alice@example-two.test")
    assert [i["IdentityName"] for i in v2.list_email_identities()["EmailIdentities"]] == [
        "bob@example-two.test"
    ]


@pytest.mark.parametrize(
    "name",
    ["bob\x00@example-two.test", 'bob+"\nRCPT TO:<evil@evil.test>"@example-two.test',
     "Bob <bob@example-two.test>", "bob@exa\nmple.test", "bad_label.example.test", "x" * 64 + ".test"],
)  # fmt: skip
def test_identity_names_that_are_no_mailbox_or_domain_are_refused(
    sesame: Serve, account: dict[str, str], name: str
) -> None:
    """An identity's name goes into its verification email's envelope and into DNS queries: the same
    RFC 5321 rules as a send's addresses apply, with SES's error instead of a 500."""
    v2, v1 = sesame.client("sesv2", account), sesame.client("ses", account)
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.create_email_identity(EmailIdentity=name)
    with pytest.raises(ClientError) as err:
        if "@" in name:
            v1.verify_email_identity(EmailAddress=name)
        else:
            v1.verify_domain_identity(Domain=name)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert v2.list_email_identities()["EmailIdentities"] == []


def test_paging(sesame: Serve, account: dict[str, str]) -> None:
    v2, v1 = sesame.client("sesv2", account), sesame.client("ses", account)
    names = [f"user{i}@paging.test" for i in range(5)]
    for name in names:
        v2.create_email_identity(EmailIdentity=name)
    seen: list[str] = []
    kwargs: dict[str, Any] = {"PageSize": 2}
    while True:
        page = v2.list_email_identities(**kwargs)
        assert len(page["EmailIdentities"]) <= 2
        seen += [i["IdentityName"] for i in page["EmailIdentities"]]
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert seen == names
    first = v1.list_identities(MaxItems=3)
    rest = v1.list_identities(MaxItems=3, NextToken=first["NextToken"])
    assert first["Identities"] + rest["Identities"] == names and "NextToken" not in rest
    pages = v1.get_paginator("list_identities").paginate(PaginationConfig={"PageSize": 2})
    assert [i for page in pages for i in page["Identities"]] == names
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.list_email_identities(NextToken="%%%")


def test_policies_v1_and_v2(sesame: Serve, account: dict[str, str]) -> None:
    v2, v1 = sesame.client("sesv2", account), sesame.client("ses", account)
    v2.create_email_identity(EmailIdentity="policy.test")
    statement = {"Effect": "Allow", "Action": ["ses:SendEmail"], "Principal": {"AWS": ["123456789012"]}}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{**statement, "Resource": "*"}]})
    v2.create_email_identity_policy(EmailIdentity="policy.test", PolicyName="p1", Policy=policy)
    with pytest.raises(v2.exceptions.AlreadyExistsException):
        v2.create_email_identity_policy(EmailIdentity="policy.test", PolicyName="p1", Policy=policy)
    # SES's API reference: Update "returns successfully even if a policy with the specified name does
    # not exist" (it creates it), and so does Delete.
    v2.update_email_identity_policy(EmailIdentity="policy.test", PolicyName="p9", Policy=policy)
    assert "p9" in v2.get_email_identity_policies(EmailIdentity="policy.test")["Policies"]
    v2.delete_email_identity_policy(EmailIdentity="policy.test", PolicyName="p9")
    v2.delete_email_identity_policy(EmailIdentity="policy.test", PolicyName="p9")
    with pytest.raises(v2.exceptions.NotFoundException):  # the identity itself must exist
        v2.delete_email_identity_policy(EmailIdentity="nowhere.test", PolicyName="p9")
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.create_email_identity_policy(EmailIdentity="policy.test", PolicyName="p2", Policy="{}")
    v1.put_identity_policy(Identity="policy.test", PolicyName="p2", Policy=policy)
    assert v2.get_email_identity_policies(EmailIdentity="policy.test")["Policies"] == {
        "p1": policy,
        "p2": policy,
    }
    assert v1.list_identity_policies(Identity="policy.test")["PolicyNames"] == ["p1", "p2"]
    assert v1.get_identity_policies(Identity="policy.test", PolicyNames=["p2", "nope"])["Policies"] == {
        "p2": policy
    }
    with pytest.raises(v1.exceptions.InvalidPolicyException):
        v1.put_identity_policy(Identity="policy.test", PolicyName="p3", Policy="not json")
    v1.delete_identity_policy(Identity="policy.test", PolicyName="absent")
    v2.delete_email_identity_policy(EmailIdentity="policy.test", PolicyName="p1")
    assert v2.get_email_identity(EmailIdentity="policy.test")["Policies"] == {"p2": policy}


def test_feedback_and_notification_settings(sesame: Serve, account: dict[str, str]) -> None:
    v2, v1 = sesame.client("sesv2", account), sesame.client("ses", account)
    with pytest.raises(v2.exceptions.NotFoundException):  # a default set must exist
        v2.create_email_identity(EmailIdentity="notify.test", ConfigurationSetName="my-set")
    v2.create_configuration_set(ConfigurationSetName="my-set")
    v2.create_email_identity(EmailIdentity="notify.test", ConfigurationSetName="my-set")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.put_email_identity_configuration_set_attributes(
            EmailIdentity="notify.test", ConfigurationSetName="no-such-set"
        )
    assert v2.get_email_identity(EmailIdentity="notify.test")["ConfigurationSetName"] == "my-set"
    v2.put_email_identity_configuration_set_attributes(EmailIdentity="notify.test")
    assert "ConfigurationSetName" not in v2.get_email_identity(EmailIdentity="notify.test")
    with pytest.raises(ClientError) as err:  # SES: forwarding stays on until SNS topics take over
        v1.set_identity_feedback_forwarding_enabled(Identity="notify.test", ForwardingEnabled=False)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    topic = f"arn:aws:sns:us-east-1:{account['AccountId']}:feedback"
    for kind in ("Bounce", "Complaint"):
        v1.set_identity_notification_topic(Identity="notify.test", NotificationType=kind, SnsTopic=topic)
    v1.set_identity_feedback_forwarding_enabled(Identity="notify.test", ForwardingEnabled=False)
    v1.set_identity_headers_in_notifications_enabled(
        Identity="notify.test", NotificationType="Bounce", Enabled=True
    )
    attrs = v1.get_identity_notification_attributes(Identities=["notify.test"])["NotificationAttributes"]
    assert attrs["notify.test"] == {
        "BounceTopic": topic,
        "ComplaintTopic": topic,
        "ForwardingEnabled": False,
        "HeadersInBounceNotificationsEnabled": True,
        "HeadersInComplaintNotificationsEnabled": False,
        "HeadersInDeliveryNotificationsEnabled": False,
    }
    assert v2.get_email_identity(EmailIdentity="notify.test")["FeedbackForwardingStatus"] is False
    v2.put_email_identity_feedback_attributes(EmailIdentity="notify.test", EmailForwardingEnabled=True)
    assert v2.get_email_identity(EmailIdentity="notify.test")["FeedbackForwardingStatus"] is True
    with pytest.raises(v1.exceptions.MessageRejected):
        v1.set_identity_headers_in_notifications_enabled(
            Identity="nope.test", NotificationType="Bounce", Enabled=True
        )


def test_identities_are_per_account_and_region(sesame: Serve, account: dict[str, str]) -> None:
    other = sesame.new_account("other")
    sesame.client("sesv2", account).create_email_identity(EmailIdentity="mine.test")
    assert sesame.client("sesv2", other).list_email_identities()["EmailIdentities"] == []
    west = sesame.client("sesv2", account, region="eu-west-1")
    assert west.list_email_identities()["EmailIdentities"] == []
    with pytest.raises(west.exceptions.NotFoundException):  # tags need the identity in that region
        west.tag_resource(
            ResourceArn=f"arn:aws:ses:eu-west-1:{account['AccountId']}:identity/mine.test",
            Tags=[{"Key": "k", "Value": "v"}],
        )


def test_dev_mode_verifies_at_once(dev: SesameProcess) -> None:
    v2 = client("sesv2", dev.endpoint, "222211113333", "x")
    created = v2.create_email_identity(EmailIdentity="instant.test")
    assert created["VerifiedForSendingStatus"] is True
    assert created["DkimAttributes"]["Status"] == "SUCCESS"
    assert v2.create_email_identity(EmailIdentity="me@instant.test")["VerifiedForSendingStatus"] is True
    v1 = client("ses", dev.endpoint, "222211113333", "x")
    assert v1.list_verified_email_addresses()["VerifiedEmailAddresses"] == ["me@instant.test"]
    records = sesame_cli("identities", "records", "instant.test", "--account", "222211113333",
                         data_dir=dev.data_dir, database=dev.database)  # fmt: skip
    assert records.count("._domainkey.instant.test.") == 3


def test_email_address_is_verified_by_the_link_in_its_email(sesame: Serve, account: dict[str, str]) -> None:
    v2, v1 = sesame.client("sesv2", account), sesame.client("ses", account)
    v2.create_email_identity(EmailIdentity="newcomer@example-three.test")
    (msg,) = query(sesame, "SELECT * FROM messages WHERE operation = 'VerificationEmail' AND account_id = :a",
                   a=account["AccountId"])  # fmt: skip
    parsed = email.message_from_bytes(bytes(msg["body"]), policy=email.policy.default)
    assert parsed["To"] == "newcomer@example-three.test"
    body = parsed.get_body(("plain",))
    assert body is not None
    link = re.search(r"http://\S+/_sesame/verify-email\?token=\w+", body.get_content())
    assert link is not None
    assert sesame.endpoint.split("//")[1] in link.group()  # the link points at this server
    assert v1.get_send_quota()["SentLast24Hours"] == 1.0  # counted as the account's mail
    assert httpx.get(link.group()).status_code == 200
    assert (
        v2.get_email_identity(EmailIdentity="newcomer@example-three.test")["VerificationStatus"] == "SUCCESS"
    )
    assert v1.list_verified_email_addresses()["VerifiedEmailAddresses"] == ["newcomer@example-three.test"]
    assert httpx.get(link.group()).status_code == 404  # a link works once


def test_custom_verification_email(sesame: Serve, account: dict[str, str], dns_server: DnsServer) -> None:
    v2, v1 = sesame.client("sesv2", account), sesame.client("ses", account)
    v2.create_email_identity(EmailIdentity="brand.test")
    dns_server.add_zone_lines(records(sesame, account, "brand.test"))
    assert v2.get_email_identity(EmailIdentity="brand.test")["VerificationStatus"] == "SUCCESS"
    fields = {"FromEmailAddress": "hello@brand.test", "TemplateSubject": "Please confirm",
              "TemplateContent": "<h1>Welcome to Brand</h1>", "SuccessRedirectionURL": "https://brand.test/ok",
              "FailureRedirectionURL": "https://brand.test/failed"}  # fmt: skip
    v1.create_custom_verification_email_template(TemplateName="welcome", **fields)
    with pytest.raises(v1.exceptions.CustomVerificationEmailTemplateAlreadyExistsException):
        v1.create_custom_verification_email_template(TemplateName="welcome", **fields)
    got = v2.get_custom_verification_email_template(TemplateName="welcome")
    assert got["TemplateContent"] == "<h1>Welcome to Brand</h1>"
    listed = v1.list_custom_verification_email_templates()["CustomVerificationEmailTemplates"]
    assert [t["TemplateName"] for t in listed] == ["welcome"] and "TemplateContent" not in listed[0]
    with pytest.raises(v1.exceptions.ProductionAccessNotGrantedException):  # not in the sandbox
        v1.send_custom_verification_email(EmailAddress="fan@example.org", TemplateName="welcome")
    sesame.cli("accounts", "update", account["AccountId"], "--production")
    sent = v2.send_custom_verification_email(EmailAddress="fan@example.org", TemplateName="welcome")
    (msg,) = query(sesame, "SELECT body FROM messages WHERE id = :id", id=sent["MessageId"])
    parsed = email.message_from_bytes(bytes(msg["body"]), policy=email.policy.default)
    assert (parsed["From"], parsed["Subject"]) == ("hello@brand.test", "Please confirm")
    html = parsed.get_body(("html",))
    assert html is not None and "<h1>Welcome to Brand</h1>" in html.get_content()
    link = re.search(r'href="([^"]+)"', html.get_content())
    assert link is not None
    answer = httpx.get(link.group(1).replace("&amp;", "&"))
    assert (answer.status_code, answer.headers["location"]) == (302, "https://brand.test/ok")
    assert v2.get_email_identity(EmailIdentity="fan@example.org")["VerificationStatus"] == "SUCCESS"
    v2.update_custom_verification_email_template(
        TemplateName="welcome", **{**fields, "TemplateSubject": "New"}
    )
    assert v1.get_custom_verification_email_template(TemplateName="welcome")["TemplateSubject"] == "New"
    v1.delete_custom_verification_email_template(TemplateName="welcome")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_custom_verification_email_template(TemplateName="welcome")
