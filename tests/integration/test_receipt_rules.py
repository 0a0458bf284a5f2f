"""SES v1 receiving configuration as boto3 sees it: receipt rule sets, rules and IP filters, their errors
and limits (``sesame dev`` on both databases); and the MX's questions (rules_for, connection_allowed)
answered from the same storage."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sesame import config
from sesame.receiving.rules import MatchedRuleSet
from sesame.runtime import Sesame
from sesame.testing.servers import SesameProcess
from tests.conftest import client

_accounts = itertools.count(100000000001)


@pytest.fixture
def ses(dev: SesameProcess) -> Any:
    """An ses client of an account of its own (dev mode: a 12-digit key id is that account)."""
    return client("ses", dev.endpoint, key=str(next(_accounts)))


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def names(rules: list[dict[str, Any]]) -> list[str]:
    return [r["Name"] for r in rules]


def test_rule_sets_create_describe_list_delete(ses: Any) -> None:
    ses.create_receipt_rule_set(RuleSetName="inbound")
    ses.create_receipt_rule_set(RuleSetName="spare-1")
    got = ses.describe_receipt_rule_set(RuleSetName="inbound")
    assert got["Metadata"]["Name"] == "inbound"
    assert got["Metadata"]["CreatedTimestamp"].tzinfo is not None
    assert got.get("Rules", []) == []
    listed = ses.list_receipt_rule_sets()["RuleSets"]
    assert [r["Name"] for r in listed] == ["inbound", "spare-1"]

    with pytest.raises(ClientError) as exc:
        ses.create_receipt_rule_set(RuleSetName="inbound")
    assert code(exc) == "AlreadyExists"
    with pytest.raises(ses.exceptions.RuleSetDoesNotExistException) as exc:
        ses.describe_receipt_rule_set(RuleSetName="nope")
    assert exc.value.response["Error"]["Message"] == "Rule set does not exist: nope"
    for bad in ("-lead", "trail_", "has.dot", "x" * 65, "sp ace"):
        with pytest.raises(ClientError) as exc:
            ses.create_receipt_rule_set(RuleSetName=bad)
        assert code(exc) == "InvalidParameterValue", bad

    ses.delete_receipt_rule_set(RuleSetName="spare-1")
    ses.delete_receipt_rule_set(RuleSetName="never-was")  # SES lists no error for it
    assert [r["Name"] for r in ses.list_receipt_rule_sets()["RuleSets"]] == ["inbound"]


def test_active_rule_set(ses: Any) -> None:
    assert "Metadata" not in ses.describe_active_receipt_rule_set()
    ses.create_receipt_rule_set(RuleSetName="a")
    ses.create_receipt_rule_set(RuleSetName="b")
    ses.set_active_receipt_rule_set(RuleSetName="a")
    assert ses.describe_active_receipt_rule_set()["Metadata"]["Name"] == "a"
    ses.set_active_receipt_rule_set(RuleSetName="b")  # exactly one is active
    assert ses.describe_active_receipt_rule_set()["Metadata"]["Name"] == "b"

    with pytest.raises(ses.exceptions.CannotDeleteException):
        ses.delete_receipt_rule_set(RuleSetName="b")
    ses.delete_receipt_rule_set(RuleSetName="a")
    with pytest.raises(ses.exceptions.RuleSetDoesNotExistException):
        ses.set_active_receipt_rule_set(RuleSetName="a")
    assert ses.describe_active_receipt_rule_set()["Metadata"]["Name"] == "b"

    ses.set_active_receipt_rule_set()  # no name: receiving off
    assert "Metadata" not in ses.describe_active_receipt_rule_set()
    ses.delete_receipt_rule_set(RuleSetName="b")


def test_rules_defaults_positions_update_delete(ses: Any) -> None:
    ses.create_receipt_rule_set(RuleSetName="rs")
    ses.create_receipt_rule(RuleSetName="rs", Rule={"Name": "first"})
    assert ses.describe_receipt_rule(RuleSetName="rs", RuleName="first")["Rule"] == {
        "Name": "first",
        "Enabled": False,
        "TlsPolicy": "Optional",
        "ScanEnabled": False,
    }
    ses.create_receipt_rule(RuleSetName="rs", Rule={"Name": "second"}, After="first")
    ses.create_receipt_rule(RuleSetName="rs", Rule={"Name": "zeroth"})  # no After: at the beginning
    ses.create_receipt_rule(RuleSetName="rs", Rule={"Name": "one.five"}, After="first")
    assert names(ses.describe_receipt_rule_set(RuleSetName="rs")["Rules"]) == [
        "zeroth", "first", "one.five", "second"
    ]  # fmt: skip

    ses.set_receipt_rule_position(RuleSetName="rs", RuleName="zeroth", After="second")
    ses.set_receipt_rule_position(RuleSetName="rs", RuleName="second")  # no After: first
    assert names(ses.describe_receipt_rule_set(RuleSetName="rs")["Rules"]) == [
        "second", "first", "one.five", "zeroth"
    ]  # fmt: skip

    rule = {
        "Name": "first",
        "Enabled": True,
        "TlsPolicy": "Require",
        "ScanEnabled": True,
        "Recipients": ["info@example.com", ".example.org"],
        "Actions": [
            {"AddHeaderAction": {"HeaderName": "X-Route", "HeaderValue": "inbound"}},
            {"S3Action": {"BucketName": "mail-in", "ObjectKeyPrefix": "raw/"}},
            {
                "BounceAction": {
                    "SmtpReplyCode": "550",
                    "StatusCode": "5.1.1",
                    "Message": "gone",
                    "Sender": "postmaster@example.com",
                }
            },  # fmt: skip
            {"StopAction": {"Scope": "RuleSet"}},
        ],
    }
    ses.update_receipt_rule(RuleSetName="rs", Rule=rule)
    assert ses.describe_receipt_rule(RuleSetName="rs", RuleName="first")["Rule"] == rule
    assert names(ses.describe_receipt_rule_set(RuleSetName="rs")["Rules"])[1] == "first"  # in place

    with pytest.raises(ClientError) as exc:
        ses.create_receipt_rule(RuleSetName="rs", Rule={"Name": "first"})
    assert code(exc) == "AlreadyExists"
    with pytest.raises(ses.exceptions.RuleDoesNotExistException):
        ses.create_receipt_rule(RuleSetName="rs", Rule={"Name": "new"}, After="missing")
    with pytest.raises(ses.exceptions.RuleDoesNotExistException):
        ses.update_receipt_rule(RuleSetName="rs", Rule={"Name": "missing"})
    with pytest.raises(ses.exceptions.RuleDoesNotExistException):
        ses.describe_receipt_rule(RuleSetName="rs", RuleName="missing")
    with pytest.raises(ses.exceptions.RuleDoesNotExistException):
        ses.set_receipt_rule_position(RuleSetName="rs", RuleName="first", After="missing")
    with pytest.raises(ses.exceptions.RuleSetDoesNotExistException):
        ses.create_receipt_rule(RuleSetName="nope", Rule={"Name": "x"})
    with pytest.raises(ses.exceptions.RuleSetDoesNotExistException):
        ses.delete_receipt_rule(RuleSetName="nope", RuleName="x")

    ses.delete_receipt_rule(RuleSetName="rs", RuleName="zeroth")
    ses.delete_receipt_rule(RuleSetName="rs", RuleName="zeroth")  # gone already: no error
    assert names(ses.describe_receipt_rule_set(RuleSetName="rs")["Rules"]) == ["second", "first", "one.five"]


def test_reorder_and_clone(ses: Any) -> None:
    ses.create_receipt_rule_set(RuleSetName="orig")
    for name in ("c", "b", "a"):
        ses.create_receipt_rule(RuleSetName="orig", Rule={"Name": name, "Recipients": ["example.com"]})
    assert names(ses.describe_receipt_rule_set(RuleSetName="orig")["Rules"]) == ["a", "b", "c"]
    ses.reorder_receipt_rule_set(RuleSetName="orig", RuleNames=["c", "a", "b"])
    assert names(ses.describe_receipt_rule_set(RuleSetName="orig")["Rules"]) == ["c", "a", "b"]
    with pytest.raises(ClientError) as exc:
        ses.reorder_receipt_rule_set(RuleSetName="orig", RuleNames=["c", "a"])  # must name them all
    assert code(exc) == "InvalidParameterValue"
    with pytest.raises(ses.exceptions.RuleDoesNotExistException):
        ses.reorder_receipt_rule_set(RuleSetName="orig", RuleNames=["c", "a", "zz"])
    with pytest.raises(ses.exceptions.RuleSetDoesNotExistException):
        ses.reorder_receipt_rule_set(RuleSetName="nope", RuleNames=["a"])

    ses.set_active_receipt_rule_set(RuleSetName="orig")
    ses.clone_receipt_rule_set(RuleSetName="copy", OriginalRuleSetName="orig")
    assert names(ses.describe_receipt_rule_set(RuleSetName="copy")["Rules"]) == ["c", "a", "b"]
    assert ses.describe_active_receipt_rule_set()["Metadata"]["Name"] == "orig"  # a clone is inactive
    # An independent copy: changing one leaves the other as it was.
    ses.update_receipt_rule(RuleSetName="copy", Rule={"Name": "a", "Recipients": ["example.net"]})
    ses.delete_receipt_rule(RuleSetName="copy", RuleName="b")
    orig = ses.describe_receipt_rule_set(RuleSetName="orig")["Rules"]
    assert names(orig) == ["c", "a", "b"] and orig[1]["Recipients"] == ["example.com"]

    with pytest.raises(ClientError) as exc:
        ses.clone_receipt_rule_set(RuleSetName="copy", OriginalRuleSetName="orig")
    assert code(exc) == "AlreadyExists"
    with pytest.raises(ses.exceptions.RuleSetDoesNotExistException):
        ses.clone_receipt_rule_set(RuleSetName="copy2", OriginalRuleSetName="nope")


def test_rule_validation(dev: SesameProcess, ses: Any) -> None:
    region = "us-east-1"
    # A topic of the client's own account, in Sesame's own SNS.
    sns = client("sns", dev.endpoint, key=ses._request_signer._credentials.access_key)
    topic = sns.create_topic(Name="inbound")["TopicArn"]
    assert f":{region}:" in topic
    ses.create_receipt_rule_set(RuleSetName="v")
    ses.create_receipt_rule(
        RuleSetName="v",
        Rule={"Name": "ok", "Actions": [{"SNSAction": {"TopicArn": topic, "Encoding": "Base64"}}]},
    )
    account_id = topic.split(":")[4]

    def refused(rule: dict[str, Any]) -> str:
        with pytest.raises(ClientError) as exc:
            ses.create_receipt_rule(RuleSetName="v", Rule={"Name": "r", **rule})
        return code(exc)

    missing = f"arn:aws:sns:{region}:{account_id}:no-such-topic"
    elsewhere = f"arn:aws:sns:eu-west-1:{account_id}:inbound"
    assert refused({"Actions": [{"SNSAction": {"TopicArn": missing}}]}) == "InvalidSnsTopic"
    assert refused({"Actions": [{"SNSAction": {"TopicArn": elsewhere}}]}) == "InvalidSnsTopic"
    assert refused({"Actions": [{"S3Action": {"BucketName": "mail-in", "TopicArn": missing}}]}) == (
        "InvalidSnsTopic"
    )
    assert refused({"Actions": [{"S3Action": {"BucketName": "Not_A_Bucket"}}]}) == "InvalidS3Configuration"
    kms_elsewhere = f"arn:aws:kms:eu-west-1:{account_id}:alias/aws/ses"
    assert (
        refused({"Actions": [{"S3Action": {"BucketName": "mail-in", "KmsKeyArn": kms_elsewhere}}]})
        == "InvalidS3Configuration"
    )
    fn = f"arn:aws:lambda:eu-west-1:{account_id}:function:handler"
    assert refused({"Actions": [{"LambdaAction": {"FunctionArn": fn}}]}) == "InvalidLambdaFunction"
    assert refused({"Actions": [{"LambdaAction": {"FunctionArn": "handler"}}]}) == "InvalidLambdaFunction"
    for header in ({"HeaderName": "Bad Name", "HeaderValue": "v"},
                   {"HeaderName": "X" * 51, "HeaderValue": "v"},
                   {"HeaderName": "X-Ok", "HeaderValue": "a\r\nBcc: someone@example.com"},
                   {"HeaderName": "X-Ok", "HeaderValue": "v" * 2049}):  # fmt: skip
        assert refused({"Actions": [{"AddHeaderAction": header}]}) == "InvalidParameterValue"
    assert refused({"Recipients": ["not a domain"]}) == "InvalidParameterValue"
    assert refused({"Name": ".dot-first"}) == "InvalidParameterValue"
    assert refused({"TlsPolicy": "Sometimes"}) == "ValidationError"  # the model's enum
    assert (
        refused(
            {
                "Actions": [
                    {"BounceAction": {"SmtpReplyCode": "250", "Message": "m", "Sender": "a@example.com"}}
                ]
            }
        )
        == "InvalidParameterValue"
    )
    with pytest.raises(ClientError) as exc:
        ses.update_receipt_rule(
            RuleSetName="v", Rule={"Name": "ok", "Actions": [{"SNSAction": {"TopicArn": missing}}]}
        )
    assert code(exc) == "InvalidSnsTopic"
    assert exc.value.response["Error"]["Topic"] == missing  # the error shape's own member


def test_limits(ses: Any) -> None:
    ses.create_receipt_rule_set(RuleSetName="big")
    with pytest.raises(ClientError) as exc:
        ses.create_receipt_rule(
            RuleSetName="big",
            Rule={"Name": "many", "Recipients": [f"u{i}@example.com" for i in range(101)]},
        )
    assert code(exc) == "LimitExceeded"
    with pytest.raises(ClientError) as exc:
        ses.create_receipt_rule(
            RuleSetName="big", Rule={"Name": "many", "Actions": [{"StopAction": {"Scope": "RuleSet"}}] * 11}
        )
    assert code(exc) == "LimitExceeded"
    ses.create_receipt_rule(
        RuleSetName="big",
        Rule={
            "Name": "most",
            "Recipients": [f"u{i}@example.com" for i in range(100)],
            "Actions": [{"StopAction": {"Scope": "RuleSet"}}] * 10,
        },  # fmt: skip
    )
    for i in range(199):
        ses.create_receipt_rule(
            RuleSetName="big", Rule={"Name": f"r{i}"}, After="most" if i == 0 else f"r{i - 1}"
        )
    with pytest.raises(ClientError) as exc:
        ses.create_receipt_rule(RuleSetName="big", Rule={"Name": "r200"})
    assert code(exc) == "LimitExceeded"

    for i in range(39):
        ses.create_receipt_rule_set(RuleSetName=f"s{i}")
    with pytest.raises(ClientError) as exc:
        ses.create_receipt_rule_set(RuleSetName="s40")
    assert code(exc) == "LimitExceeded"
    with pytest.raises(ClientError) as exc:
        ses.clone_receipt_rule_set(RuleSetName="s40", OriginalRuleSetName="big")
    assert code(exc) == "LimitExceeded"
    listed = ses.list_receipt_rule_sets()
    assert len(listed["RuleSets"]) == 40 and "NextToken" not in listed  # one page holds them all

    for i in range(100):
        ses.create_receipt_filter(
            Filter={"Name": f"f{i:03}", "IpFilter": {"Policy": "Block", "Cidr": f"10.0.{i}.0/24"}}
        )
    with pytest.raises(ClientError) as exc:
        ses.create_receipt_filter(
            Filter={"Name": "f100", "IpFilter": {"Policy": "Block", "Cidr": "10.1.0.0/16"}}
        )
    assert code(exc) == "LimitExceeded"


def test_filters(ses: Any) -> None:
    assert ses.list_receipt_filters()["Filters"] == []
    ses.create_receipt_filter(
        Filter={"Name": "block-all", "IpFilter": {"Policy": "Block", "Cidr": "0.0.0.0/0"}}
    )
    ses.create_receipt_filter(
        Filter={"Name": "partner", "IpFilter": {"Policy": "Allow", "Cidr": "10.0.0.1/24"}}
    )
    ses.create_receipt_filter(Filter={"Name": "v6", "IpFilter": {"Policy": "Allow", "Cidr": "2001:db8::/32"}})
    assert ses.list_receipt_filters()["Filters"] == [
        {"Name": "block-all", "IpFilter": {"Policy": "Block", "Cidr": "0.0.0.0/0"}},
        {"Name": "partner", "IpFilter": {"Policy": "Allow", "Cidr": "10.0.0.1/24"}},
        {"Name": "v6", "IpFilter": {"Policy": "Allow", "Cidr": "2001:db8::/32"}},
    ]
    with pytest.raises(ClientError) as exc:
        ses.create_receipt_filter(
            Filter={"Name": "partner", "IpFilter": {"Policy": "Block", "Cidr": "10.9.9.9"}}
        )
    assert code(exc) == "AlreadyExists"
    for bad in ({"Name": "x", "IpFilter": {"Policy": "Block", "Cidr": "10.0.0.300"}},
                {"Name": "x", "IpFilter": {"Policy": "Block", "Cidr": "10.0.0.0/33"}},
                {"Name": "bad name", "IpFilter": {"Policy": "Block", "Cidr": "10.0.0.1"}}):  # fmt: skip
        with pytest.raises(ClientError) as exc:
            ses.create_receipt_filter(Filter=bad)
        assert code(exc) == "InvalidParameterValue", bad
    ses.delete_receipt_filter(FilterName="partner")
    ses.delete_receipt_filter(FilterName="partner")  # gone already: no error
    assert [f["Name"] for f in ses.list_receipt_filters()["Filters"]] == ["block-all", "v6"]


def test_regions_are_separate(dev: SesameProcess) -> None:
    key = str(next(_accounts))
    east, west = (
        client("ses", dev.endpoint, key=key),
        client("ses", dev.endpoint, key=key, region="us-west-2"),
    )
    east.create_receipt_rule_set(RuleSetName="rs")
    assert west.list_receipt_rule_sets()["RuleSets"] == []
    west.create_receipt_rule_set(RuleSetName="rs")
    west.set_active_receipt_rule_set(RuleSetName="rs")
    assert "Metadata" not in east.describe_active_receipt_rule_set()


# -- what the MX asks, in process, on both databases -------------------------------------------------


@pytest.fixture
def sesame(database: str, tmp_path: Path) -> Sesame:
    """An in-process Sesame (dev mode: identities are verified at once); the test opens and closes it
    on its own event loop, as PostgreSQL's pooled connections belong to one loop."""
    return Sesame(config.load("dev", data_dir=tmp_path, database=database, env={}))


def test_rules_for_and_connection_allowed(sesame: Sesame) -> None:
    rr = sesame.receipt_rules

    async def go() -> None:
        await sesame.open()
        try:
            await scenario()
        finally:
            await sesame.close()

    async def scenario() -> None:
        a, b, c = "111111111111", "222222222222", "333333333333"
        for account in (a, b, c):
            await sesame.accounts.ensure(account)
        await sesame.identities.create(a, "us-east-1", "example.com")  # dev mode: verified at once
        await sesame.identities.create(b, "us-east-1", "example.com")
        await sesame.identities.create(c, "us-east-1", "owner@example.net")

        await rr.create_set(a, "us-east-1", "main")
        await rr.create_rule(a, "us-east-1", "main", {"Name": "catch-all", "Enabled": True})
        await rr.create_rule(a, "us-east-1", "main", {"Name": "sales", "Enabled": True,
                                                      "Recipients": ["sales@example.com"]})  # fmt: skip
        await rr.create_rule(a, "us-east-1", "main", {"Name": "off", "Recipients": ["example.com"]})
        subs = {"Name": "subs", "Enabled": True, "Recipients": [".example.com"]}
        await rr.create_rule(a, "us-east-1", "main", subs, after="catch-all")
        assert await rr.rules_for("sales@example.com") == []  # nothing active yet
        await rr.set_active(a, "us-east-1", "main")

        found = await rr.rules_for("Sales+news@Example.COM")
        assert [(m.account_id, m.rule_set_name) for m in found] == [(a, "main")]
        assert [r["Name"] for r in found[0].rules] == ["sales", "catch-all"]
        found = await rr.rules_for("x@mail.example.com")  # a subdomain of a verified domain
        assert [r["Name"] for r in found[0].rules] == ["catch-all", "subs"]
        assert await rr.rules_for("x@example.org") == []  # nobody's domain

        # A second account receiving for the same domain: both get the mail.
        await rr.create_set(b, "us-east-1", "b-set")
        await rr.create_rule(b, "us-east-1", "b-set", {"Name": "only-info", "Enabled": True,
                                                       "Recipients": ["info@example.com"]})  # fmt: skip
        await rr.set_active(b, "us-east-1", "b-set")
        found = await rr.rules_for("info@example.com")
        assert sorted(m.account_id for m in found) == [a, b]
        sales = {"Name": "sales", "Enabled": True, "TlsPolicy": "Optional", "ScanEnabled": False,
                 "Recipients": ["sales@example.com"]}  # fmt: skip
        catch_all = {"Name": "catch-all", "Enabled": True, "TlsPolicy": "Optional", "ScanEnabled": False}
        assert await rr.rules_for("sales@example.com") == [
            MatchedRuleSet(a, "us-east-1", "main", (sales, catch_all), positions=(0, 1))
        ]

        # A verified address identity receives its own mail, not its domain's.
        await rr.create_set(c, "us-east-1", "c-set")
        await rr.create_rule(c, "us-east-1", "c-set", {"Name": "all", "Enabled": True})
        await rr.set_active(c, "us-east-1", "c-set")
        assert [m.account_id for m in await rr.rules_for("owner@example.net")] == [c]
        assert await rr.rules_for("other@example.net") == []

        # IP filters: each account's own, applied to its own recipients.
        await rr.create_filter(
            b, "us-east-1", {"Name": "no-10", "IpFilter": {"Policy": "Block", "Cidr": "10.0.0.0/8"}}
        )
        assert [m.account_id for m in await rr.rules_for("info@example.com", "10.1.2.3")] == [a]
        assert await rr.connection_allowed("10.1.2.3")  # a and c still take its mail
        for account in (a, c):
            await rr.create_filter(
                account, "us-east-1", {"Name": "no-10", "IpFilter": {"Policy": "Block", "Cidr": "10.0.0.0/8"}}
            )
        assert not await rr.connection_allowed("10.1.2.3")  # everyone receiving refuses it
        assert not await rr.connection_allowed("::ffff:10.1.2.3")  # the same client over IPv6
        assert await rr.connection_allowed("192.0.2.1")
        await rr.create_filter(
            c, "us-east-1", {"Name": "friend", "IpFilter": {"Policy": "Allow", "Cidr": "10.1.2.3"}}
        )
        assert await rr.connection_allowed("10.1.2.3")  # allow overrides block
        assert [m.account_id for m in await rr.rules_for("owner@example.net", "10.1.2.3")] == [c]
        assert await rr.rules_for("info@example.com", "10.1.2.3") == []

        # Deactivating stops receiving.
        await rr.set_active(c, "us-east-1", None)
        assert await rr.rules_for("owner@example.net") == []

    asyncio.run(go())


def test_another_nodes_change_is_seen_within_the_cache_time(sesame: Sesame) -> None:
    """Nodes sharing PostgreSQL each keep a snapshot: a change made through one node is seen by it at
    once, and by the others once their snapshot is older than ``cache_seconds``."""
    from sesame.receiving.rules import ReceiptRules

    async def go() -> None:
        await sesame.open()
        try:
            this, other = sesame.receipt_rules, ReceiptRules(sesame.db, cache_seconds=0.3)
            account = "444444444444"
            await sesame.accounts.ensure(account)
            await sesame.identities.create(account, "us-east-1", "example.com")
            await this.create_set(account, "us-east-1", "rs")
            await this.set_active(account, "us-east-1", "rs")
            assert await other.rules_for("a@example.com") == []  # its snapshot: no enabled rule yet
            await this.create_rule(account, "us-east-1", "rs", {"Name": "all", "Enabled": True})
            assert len(await this.rules_for("a@example.com")) == 1  # its own write: at once
            assert await other.rules_for("a@example.com") == []  # not yet
            await asyncio.sleep(0.35)
            assert len(await other.rules_for("a@example.com")) == 1
        finally:
            await sesame.close()

    asyncio.run(go())
