"""Tenants and reputation entities over boto3 (SES v2) against ``sesame dev``, on both databases: the
operations and their errors, sends made as a tenant (TenantName, X-SES-TENANT) checked against the
tenant's resources and its sending status, and the tenant's own suppression list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sesame.testing.servers import SesameProcess
from tests.conftest import client

REGION = "us-east-1"
SIMPLE = {"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "hello"}}}}
_accounts = iter(range(10_000))


class Account:
    """A fresh dev-mode account (its 12-digit key id), a verified domain, a set and a template."""

    def __init__(self, dev: SesameProcess) -> None:
        self.id = f"4{next(_accounts):011d}"
        self.v2 = client("sesv2", dev.endpoint, key=self.id)
        self.v1 = client("ses", dev.endpoint, key=self.id)
        self.v2.create_email_identity(EmailIdentity="shop.test")
        self.v2.create_configuration_set(ConfigurationSetName="cs")
        self.v2.create_email_template(
            TemplateName="tpl", TemplateContent={"Subject": "Hi {{name}}", "Text": "Hello {{name}}"}
        )

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:ses:{REGION}:{self.id}:{kind}/{name}"

    def send(self, tenant: str | None, *, to: str = "a@dest.test", **kw: Any) -> str:
        extra = {"TenantName": tenant} if tenant else {}
        return str(
            self.v2.send_email(
                FromEmailAddress="me@shop.test",
                Destination={"ToAddresses": [to]},
                Content=kw.pop("Content", SIMPLE),
                **extra,
                **kw,
            )["MessageId"]
        )


@pytest.fixture
def account(dev: SesameProcess) -> Account:
    return Account(dev)


def error(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def test_tenant_lifecycle_and_errors(account: Account) -> None:
    v2 = account.v2
    made = v2.create_tenant(TenantName="acme", Tags=[{"Key": "plan", "Value": "gold"}])
    assert re.fullmatch(r"tn-[0-9a-f]+", made["TenantId"])
    assert made["TenantArn"] == account.arn("tenant", f"acme/{made['TenantId']}")
    assert made["SendingStatus"] == "ENABLED"
    assert made["Tags"] == [{"Key": "plan", "Value": "gold"}]
    got = v2.get_tenant(TenantName="acme")["Tenant"]
    assert {k: got[k] for k in ("TenantName", "TenantId", "TenantArn", "SendingStatus")} == {
        k: made[k] for k in ("TenantName", "TenantId", "TenantArn", "SendingStatus")
    }
    assert "SuppressionAttributes" not in got
    # The tenant's ARN is a resource like any other for tagging.
    v2.tag_resource(ResourceArn=made["TenantArn"], Tags=[{"Key": "team", "Value": "b"}])
    assert len(v2.list_tags_for_resource(ResourceArn=made["TenantArn"])["Tags"]) == 2

    assert error(lambda: v2.create_tenant(TenantName="acme"))[0] == "AlreadyExistsException"
    for bad in ("has space", "x" * 65, "dot.ted"):
        assert error(lambda bad=bad: v2.create_tenant(TenantName=bad))[0] == "BadRequestException"
    assert error(lambda: v2.get_tenant(TenantName="nobody"))[0] == "NotFoundException"

    for name in ("beta", "gamma", "acme-eu"):
        v2.create_tenant(TenantName=name)
    page = v2.list_tenants(PageSize=2)
    assert [t["TenantName"] for t in page["Tenants"]] == ["acme", "acme-eu"]
    rest = v2.list_tenants(PageSize=2, NextToken=page["NextToken"])
    assert [t["TenantName"] for t in rest["Tenants"]] == ["beta", "gamma"] and "NextToken" not in rest
    assert set(page["Tenants"][0]) == {
        "TenantName",
        "TenantId",
        "TenantArn",
        "CreatedTimestamp",
        "SendingStatus",
    }
    found = v2.list_tenants(Filter={"TENANT_NAME_CONTAINS": "acme"})["Tenants"]
    assert [t["TenantName"] for t in found] == ["acme", "acme-eu"]
    assert error(lambda: v2.list_tenants(PageSize=0))[0] == "BadRequestException"
    assert error(lambda: v2.list_tenants(NextToken="!!"))[0] == "BadRequestException"

    v2.delete_tenant(TenantName="acme")
    assert error(lambda: v2.get_tenant(TenantName="acme"))[0] == "NotFoundException"
    assert error(lambda: v2.delete_tenant(TenantName="acme"))[0] == "NotFoundException"
    assert error(lambda: v2.list_tags_for_resource(ResourceArn=made["TenantArn"]))[0] == "NotFoundException"
    again = v2.create_tenant(TenantName="acme")  # a new tenant under the old name: a new id, no tags
    assert again["TenantId"] != made["TenantId"] and again["Tags"] == []


def test_resource_associations(account: Account) -> None:
    v2 = account.v2
    v2.create_tenant(TenantName="t1")
    v2.create_tenant(TenantName="t2")
    identity, cs, tpl = (
        account.arn("identity", "shop.test"),
        account.arn("configuration-set", "cs"),
        account.arn("template", "tpl"),
    )
    for arn in (identity, cs, tpl):
        v2.create_tenant_resource_association(TenantName="t1", ResourceArn=arn)
    v2.create_tenant_resource_association(TenantName="t2", ResourceArn=identity)

    listed = v2.list_tenant_resources(TenantName="t1")["TenantResources"]
    assert sorted((r["ResourceType"], r["ResourceArn"]) for r in listed) == sorted(
        [("EMAIL_IDENTITY", identity), ("CONFIGURATION_SET", cs), ("EMAIL_TEMPLATE", tpl)]
    )
    only = v2.list_tenant_resources(TenantName="t1", Filter={"RESOURCE_TYPE": "EMAIL_TEMPLATE"})
    assert [r["ResourceArn"] for r in only["TenantResources"]] == [tpl]
    first = v2.list_tenant_resources(TenantName="t1", PageSize=2)
    second = v2.list_tenant_resources(TenantName="t1", PageSize=2, NextToken=first["NextToken"])
    assert len(first["TenantResources"]) == 2 and len(second["TenantResources"]) == 1
    tenants = v2.list_resource_tenants(ResourceArn=identity)["ResourceTenants"]
    assert [t["TenantName"] for t in tenants] == ["t1", "t2"]
    assert tenants[0]["TenantId"] == v2.get_tenant(TenantName="t1")["Tenant"]["TenantId"]
    assert tenants[0]["ResourceArn"] == identity and "AssociatedTimestamp" in tenants[0]

    def code(call: Callable[[], Any]) -> str:
        return error(call)[0]

    associate = v2.create_tenant_resource_association
    assert code(lambda: associate(TenantName="t1", ResourceArn=identity)) == "AlreadyExistsException"
    assert code(lambda: associate(TenantName="nobody", ResourceArn=identity)) == "NotFoundException"
    missing = account.arn("configuration-set", "nope")
    assert code(lambda: associate(TenantName="t1", ResourceArn=missing)) == "NotFoundException"
    other = f"arn:aws:ses:{REGION}:999999999999:identity/shop.test"
    assert code(lambda: associate(TenantName="t1", ResourceArn=other)) == "NotFoundException"
    pool = account.arn("dedicated-ip-pool", "p")
    assert code(lambda: associate(TenantName="t1", ResourceArn=pool)) == "BadRequestException"
    assert code(lambda: associate(TenantName="t1", ResourceArn="not-an-arn")) == "BadRequestException"
    assert code(lambda: v2.list_tenant_resources(TenantName="nobody")) == "NotFoundException"
    assert (
        code(lambda: v2.list_tenant_resources(TenantName="t1", Filter={"RESOURCE_TYPE": "DOMAIN"}))
        == "BadRequestException"
    )
    assert code(lambda: v2.list_resource_tenants(ResourceArn=missing)) == "NotFoundException"

    v2.delete_tenant_resource_association(TenantName="t1", ResourceArn=cs)
    assert code(lambda: v2.delete_tenant_resource_association(TenantName="t1", ResourceArn=cs)) == (
        "NotFoundException"
    )
    assert code(lambda: v2.delete_tenant_resource_association(TenantName="zz", ResourceArn=cs)) == (
        "NotFoundException"
    )
    assert len(v2.list_tenant_resources(TenantName="t1")["TenantResources"]) == 2
    # Deleting a tenant removes its associations, never the resources.
    v2.delete_tenant(TenantName="t1")
    assert [t["TenantName"] for t in v2.list_resource_tenants(ResourceArn=identity)["ResourceTenants"]] == [
        "t2"
    ]
    assert v2.get_configuration_set(ConfigurationSetName="cs")["ConfigurationSetName"] == "cs"


def test_reputation_entity_of_a_tenant(account: Account) -> None:
    v2 = account.v2
    arn = v2.create_tenant(TenantName="rep")["TenantArn"]
    entity = v2.get_reputation_entity(ReputationEntityType="RESOURCE", ReputationEntityReference=arn)[
        "ReputationEntity"
    ]
    assert entity["ReputationEntityReference"] == arn
    assert entity["ReputationManagementPolicy"] == f"arn:aws:ses:{REGION}:aws:reputation-policy/none"
    assert entity["CustomerManagedStatus"]["Status"] == entity["AwsSesManagedStatus"]["Status"] == "ENABLED"
    assert (entity["SendingStatusAggregate"], entity["ReputationImpact"]) == ("ENABLED", "NONE")

    def entity_now() -> dict[str, Any]:
        got: dict[str, Any] = v2.get_reputation_entity(
            ReputationEntityType="RESOURCE", ReputationEntityReference=arn
        )["ReputationEntity"]
        return got

    strict = f"arn:aws:ses:{REGION}:aws:reputation-policy/strict"
    v2.update_reputation_entity_policy(
        ReputationEntityType="RESOURCE", ReputationEntityReference=arn, ReputationEntityPolicy=strict
    )
    assert entity_now()["ReputationManagementPolicy"] == strict
    for bad in (
        "arn:aws:ses:us-east-1:aws:reputation-policy/lenient",
        "strict",
        strict.replace(REGION, "eu-west-1"),
    ):
        assert (
            error(
                lambda bad=bad: v2.update_reputation_entity_policy(
                    ReputationEntityType="RESOURCE", ReputationEntityReference=arn, ReputationEntityPolicy=bad
                )
            )[0]
            == "BadRequestException"
        )
    ghost = account.arn("tenant", "ghost/tn-0")
    assert error(
        lambda: v2.get_reputation_entity(ReputationEntityType="RESOURCE", ReputationEntityReference=ghost)
    )[0] == ("NotFoundException")
    assert (
        error(
            lambda: v2.update_reputation_entity_customer_managed_status(
                ReputationEntityType="RESOURCE", ReputationEntityReference=ghost, SendingStatus="DISABLED"
            )
        )[0]
        == "BadRequestException"
    )

    # The customer pauses the tenant: its sends are refused, the account's others are not.
    account.v2.create_tenant_resource_association(
        TenantName="rep", ResourceArn=account.arn("identity", "shop.test")
    )
    account.send("rep")
    v2.update_reputation_entity_customer_managed_status(
        ReputationEntityType="RESOURCE", ReputationEntityReference=arn, SendingStatus="DISABLED"
    )
    now = entity_now()
    assert now["CustomerManagedStatus"]["Status"] == "DISABLED"
    assert now["CustomerManagedStatus"]["Cause"] == "Status manually updated."
    assert now["SendingStatusAggregate"] == "DISABLED"
    assert v2.get_tenant(TenantName="rep")["Tenant"]["SendingStatus"] == "DISABLED"
    assert error(lambda: account.send("rep"))[0] == "SendingPausedException"
    account.send(None)
    v2.create_tenant(TenantName="other")
    listed = v2.list_reputation_entities(Filter={"SENDING_STATUS": "DISABLED"})["ReputationEntities"]
    assert [e["ReputationEntityReference"] for e in listed] == [arn]
    assert [t["TenantName"] for t in v2.list_tenants(Filter={"SENDING_STATUS": "DISABLED"})["Tenants"]] == [
        "rep"
    ]
    prefix = account.arn("tenant", "oth")
    listed = v2.list_reputation_entities(Filter={"ENTITY_REFERENCE_PREFIX": prefix})["ReputationEntities"]
    assert [e["ReputationEntityReference"].split("/")[1] for e in listed] == ["other"]
    assert len(v2.list_reputation_entities(Filter={"REPUTATION_IMPACT": "NONE"})["ReputationEntities"]) == 2

    v2.update_reputation_entity_customer_managed_status(
        ReputationEntityType="RESOURCE", ReputationEntityReference=arn, SendingStatus="REINSTATED"
    )
    assert entity_now()["SendingStatusAggregate"] == "REINSTATED"
    account.send("rep")
    v2.delete_tenant(TenantName="rep")
    assert len(v2.list_reputation_entities()["ReputationEntities"]) == 1


def test_sending_as_a_tenant_needs_its_resources(account: Account) -> None:
    v2 = account.v2
    v2.create_tenant(TenantName="shop")
    assert error(lambda: account.send("nobody"))[0] == "NotFoundException"
    code, message = error(lambda: account.send("shop"))
    assert code == "MessageRejected" and "identity shop.test" in message
    v2.create_tenant_resource_association(TenantName="shop", ResourceArn=account.arn("identity", "shop.test"))
    assert account.send("shop")
    code, message = error(lambda: account.send("shop", ConfigurationSetName="cs"))
    assert code == "MessageRejected" and "configuration set cs" in message
    v2.create_tenant_resource_association(
        TenantName="shop", ResourceArn=account.arn("configuration-set", "cs")
    )
    assert account.send("shop", ConfigurationSetName="cs")

    templated = {"Template": {"TemplateName": "tpl", "TemplateData": '{"name": "Ann"}'}}
    code, message = error(lambda: account.send("shop", Content=templated))
    assert code == "MessageRejected" and "template tpl" in message
    bulk = v2.send_bulk_email(
        FromEmailAddress="me@shop.test",
        DefaultContent={"Template": {"TemplateName": "tpl", "TemplateData": "{}"}},
        BulkEmailEntries=[{"Destination": {"ToAddresses": ["b@dest.test"]}}],
        TenantName="shop",
    )["BulkEmailEntryResults"]
    assert bulk[0]["Status"] == "MESSAGE_REJECTED"
    v2.create_tenant_resource_association(TenantName="shop", ResourceArn=account.arn("template", "tpl"))
    assert account.send("shop", Content=templated)
    bulk = v2.send_bulk_email(
        FromEmailAddress="me@shop.test",
        DefaultContent={"Template": {"TemplateName": "tpl", "TemplateData": "{}"}},
        BulkEmailEntries=[{"Destination": {"ToAddresses": ["b@dest.test"]}}],
        TenantName="shop",
    )["BulkEmailEntryResults"]
    assert bulk[0]["Status"] == "SUCCESS"

    # Raw mail names its tenant in X-SES-TENANT (v2 Raw and v1 SendRawEmail alike).
    def raw(tenant: str) -> bytes:
        return (
            f"From: me@shop.test\r\nTo: a@dest.test\r\nX-SES-TENANT: {tenant}\r\nSubject: hi\r\n\r\nhello\r\n"
        ).encode()

    assert v2.send_email(Content={"Raw": {"Data": raw("shop")}})["MessageId"]
    assert error(lambda: v2.send_email(Content={"Raw": {"Data": raw("nobody")}}))[0] == "NotFoundException"
    v2.create_tenant(TenantName="bare")
    assert error(lambda: v2.send_email(Content={"Raw": {"Data": raw("bare")}}))[0] == "MessageRejected"
    assert error(lambda: account.v1.send_raw_email(RawMessage={"Data": raw("bare")}))[0] == "MessageRejected"
    assert account.v1.send_raw_email(RawMessage={"Data": raw("shop")})["MessageId"]


def test_a_tenants_own_suppression_list(account: Account) -> None:
    v2 = account.v2
    made = v2.create_tenant(
        TenantName="own",
        SuppressionAttributes={"SuppressedReasons": ["BOUNCE"], "SuppressionScope": "TENANT"},
    )
    assert made["SuppressionAttributes"] == {"SuppressedReasons": ["BOUNCE"], "SuppressionScope": "TENANT"}
    v2.put_suppressed_destination(EmailAddress="Gone@Dest.test", Reason="BOUNCE", TenantName="own")
    got = v2.get_suppressed_destination(EmailAddress="gone@dest.test", TenantName="own")[
        "SuppressedDestination"
    ]
    assert (got["EmailAddress"], got["Reason"], got["TenantName"]) == ("gone@dest.test", "BOUNCE", "own")
    # The account's list is another list.
    assert (
        error(lambda: v2.get_suppressed_destination(EmailAddress="gone@dest.test"))[0] == "NotFoundException"
    )
    assert v2.list_suppressed_destinations()["SuppressedDestinationSummaries"] == []
    listed = v2.list_suppressed_destinations(TenantName="own")["SuppressedDestinationSummaries"]
    assert [x["EmailAddress"] for x in listed] == ["gone@dest.test"]
    assert error(lambda: v2.list_suppressed_destinations(TenantName="nobody"))[0] == "NotFoundException"
    assert (
        error(
            lambda: v2.put_suppressed_destination(
                EmailAddress="x@d.test", Reason="BOUNCE", TenantName="nobody"
            )
        )[0]
        == "NotFoundException"
    )

    v2.put_tenant_suppression_attributes(TenantName="own", SuppressionScope="ACCOUNT", SuppressedReasons=[])
    assert v2.get_tenant(TenantName="own")["Tenant"]["SuppressionAttributes"] == {
        "SuppressedReasons": [],
        "SuppressionScope": "ACCOUNT",
    }
    assert error(lambda: v2.put_tenant_suppression_attributes(TenantName="nobody"))[0] == "NotFoundException"
    v2.delete_suppressed_destination(EmailAddress="gone@dest.test", TenantName="own")
    assert v2.list_suppressed_destinations(TenantName="own")["SuppressedDestinationSummaries"] == []
