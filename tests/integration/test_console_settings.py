"""The console's settings pages against a real dev server, on both databases: configuration sets and
event destinations, the suppression list (with a CSV import job), receiving, contact lists, tenants.

Each page group is checked both ways: made through the console and read back with boto3, made with
boto3 and seen on the page; and a refusal is shown in SES's words. Each test works in an account of its
own (the dev console switches to it; boto3 uses its id as the access key), so tests share one server.
"""

from __future__ import annotations

import html
import re
import secrets
import time
from typing import Any

import httpx
import pytest

from sesame.testing.servers import SesameProcess
from tests.conftest import Serve, client


class Console:
    """A dev-mode console session showing one account, like a browser would use it."""

    def __init__(self, dev: SesameProcess, account: str) -> None:
        self.http = httpx.Client(base_url=dev.endpoint, follow_redirects=True, timeout=30)
        # Any page starts a dev session (the inbox, where /console/ leads, is another group's page).
        first = self.http.get("/console/suppression")
        assert first.status_code == 200
        self.csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', first.text).group(1)  # type: ignore[union-attr]
        self.post("/console/switch", account_id=account)

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(path, params=params) if params else self.http.get(path)

    def post(self, path: str, files: dict[str, Any] | None = None, **data: str) -> httpx.Response:
        return self.http.post(path, data={"csrf_token": self.csrf, **data}, files=files)

    def close(self) -> None:
        self.http.close()


def visible(page: httpx.Response) -> str:
    """The page's text as a reader sees it (tags gone, entities decoded, spaces collapsed)."""
    body = re.sub(r"(?s)<head>.*?</head>", "", page.text)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.fixture
def account() -> str:
    """An account of this test's own (dev mode makes any 12-digit id an account)."""
    return f"7{secrets.randbelow(10**11):011d}"


@pytest.fixture
def console(dev: SesameProcess, account: str) -> Any:
    session = Console(dev, account)
    yield session
    session.close()


def sdk(dev: SesameProcess, account: str, service: str = "sesv2") -> Any:
    return client(service, dev.endpoint, key=account)


# -- configuration sets -----------------------------------------------------------------------------


def test_configuration_sets_both_ways_and_errors(dev: SesameProcess, console: Console, account: str) -> None:
    ses = sdk(dev, account)
    made = console.post("/console/configuration-sets", name="from-console")
    assert made.status_code == 200 and made.url.path == "/console/configuration-sets/from-console"
    assert "Configuration set from-console created." in visible(made)
    assert (
        ses.get_configuration_set(ConfigurationSetName="from-console")["ConfigurationSetName"]
        == "from-console"
    )

    ses.create_configuration_set(ConfigurationSetName="from-api")
    listed = visible(console.get("/console/configuration-sets"))
    assert "from-api" in listed and "from-console" in listed

    again = console.post("/console/configuration-sets", name="from-console")
    assert again.status_code == 400
    assert "Configuration set <from-console> already exists." in visible(again)
    bad = console.post("/console/configuration-sets", name="no spaces")
    assert bad.status_code == 400 and "Invalid configuration set name <no spaces>" in visible(bad)

    # Options, each group saved by its own form.
    base = "/console/configuration-sets/from-console/options"
    console.post(base, group="DeliveryOptions", tls_policy="REQUIRE", sending_pool="pool-a")
    console.post(base, group="SendingOptions")  # the box left unticked: sending paused
    console.post(base, group="ReputationOptions", reputation_metrics="on")
    console.post(base, group="TrackingOptions", custom_redirect_domain="track.example.com")
    console.post(base, group="SuppressionOptions", suppression_mode="own", reason_BOUNCE="on")
    got = ses.get_configuration_set(ConfigurationSetName="from-console")
    assert got["DeliveryOptions"] == {"TlsPolicy": "REQUIRE", "SendingPoolName": "pool-a"}
    assert got["SendingOptions"] == {"SendingEnabled": False}
    assert got["ReputationOptions"]["ReputationMetricsEnabled"] is True
    assert got["TrackingOptions"]["CustomRedirectDomain"] == "track.example.com"
    assert got["SuppressionOptions"]["SuppressedReasons"] == ["BOUNCE"]
    page = visible(console.get("/console/configuration-sets/from-console"))
    assert "Paused" in page

    # Options set with the API show on the page.
    ses.put_configuration_set_sending_options(ConfigurationSetName="from-api", SendingEnabled=False)
    assert "Paused" in visible(console.get("/console/configuration-sets/from-api"))

    gone = console.post("/console/configuration-sets/from-console/delete")
    assert "Configuration set from-console deleted." in visible(gone)
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.get_configuration_set(ConfigurationSetName="from-console")
    missing = console.get("/console/configuration-sets/from-console")
    assert missing.status_code == 404 and "Configuration set <from-console> does not exist." in visible(
        missing
    )


def test_event_destinations_both_ways(dev: SesameProcess, console: Console, account: str) -> None:
    ses = sdk(dev, account)
    topic = sdk(dev, account, "sns").create_topic(Name="ses-events")["TopicArn"]
    ses.create_configuration_set(ConfigurationSetName="events")
    here = "/console/configuration-sets/events"

    added = console.post(
        here + "/destinations",
        destination_name="to-sns",
        kind="SnsDestination",
        topic_arn=topic,
        type_BOUNCE="on",
        type_COMPLAINT="on",
        enabled="on",
    )
    assert "Event destination to-sns added." in visible(added)
    bus = f"arn:aws:events:us-east-1:{account}:event-bus/default"
    console.post(here + "/destinations", destination_name="to-bus", kind="EventBridgeDestination",
                 event_bus_arn=bus, type_SEND="on")  # fmt: skip
    found = {
        d["Name"]: d
        for d in ses.get_configuration_set_event_destinations(ConfigurationSetName="events")[
            "EventDestinations"
        ]
    }
    assert found["to-sns"]["SnsDestination"] == {"TopicArn": topic}
    assert found["to-sns"]["MatchingEventTypes"] == ["BOUNCE", "COMPLAINT"]
    assert found["to-sns"]["Enabled"] is True
    assert found["to-bus"]["EventBridgeDestination"] == {"EventBusArn": bus}
    assert found["to-bus"]["Enabled"] is False  # "Enabled" was not ticked

    # SES's errors, in its words.
    missing_topic = f"arn:aws:sns:us-east-1:{account}:no-such-topic"
    refused = console.post(here + "/destinations", destination_name="x", kind="SnsDestination",
                           topic_arn=missing_topic, type_SEND="on")  # fmt: skip
    assert refused.status_code == 400 and f"SNS topic <{missing_topic}> not found." in visible(refused)
    twice = console.post(here + "/destinations", destination_name="to-sns", kind="SnsDestination",
                         topic_arn=topic, type_SEND="on")  # fmt: skip
    assert "Event destination to-sns already exists in configuration set events." in visible(twice)
    no_types = console.post(
        here + "/destinations", destination_name="y", kind="SnsDestination", topic_arn=topic
    )
    assert "MatchingEventTypes must name at least one event type." in visible(no_types)

    # Enable and disable.
    console.post(here + "/destinations/to-sns/enabled")
    console.post(here + "/destinations/to-bus/enabled", enabled="1")
    found = {
        d["Name"]: d["Enabled"]
        for d in ses.get_configuration_set_event_destinations(ConfigurationSetName="events")[
            "EventDestinations"
        ]
    }
    assert found == {"to-sns": False, "to-bus": True}

    # One made with the API shows on the page.
    ses.create_configuration_set_event_destination(
        ConfigurationSetName="events",
        EventDestinationName="to-metrics",
        EventDestination={
            "Enabled": True,
            "MatchingEventTypes": ["DELIVERY"],
            "CloudWatchDestination": {
                "DimensionConfigurations": [
                    {
                        "DimensionName": "campaign",
                        "DimensionValueSource": "MESSAGE_TAG",
                        "DefaultDimensionValue": "none",
                    }  # fmt: skip
                ]
            },
        },
    )
    page = visible(console.get(here))
    assert "to-metrics Amazon CloudWatch campaign (MESSAGE_TAG, default none) DELIVERY Enabled" in page
    assert f"to-sns Amazon SNS {topic} BOUNCE, COMPLAINT Disabled" in page

    console.post(here + "/destinations/to-metrics/delete")
    left = ses.get_configuration_set_event_destinations(ConfigurationSetName="events")["EventDestinations"]
    assert sorted(d["Name"] for d in left) == ["to-bus", "to-sns"]


# -- the suppression list ---------------------------------------------------------------------------


def test_suppression_list_both_ways(dev: SesameProcess, console: Console, account: str) -> None:
    ses = sdk(dev, account)
    added = console.post("/console/suppression", address="Someone@Example.com", reason="COMPLAINT")
    assert "Someone@Example.com is on the suppression list (COMPLAINT)." in visible(added)
    got = ses.get_suppressed_destination(EmailAddress="someone@example.com")["SuppressedDestination"]
    assert got["Reason"] == "COMPLAINT"

    ses.put_suppressed_destination(EmailAddress="bounced@example.org", Reason="BOUNCE")
    page = visible(console.get("/console/suppression"))
    assert "bounced@example.org BOUNCE" in page and "someone@example.com COMPLAINT" in page

    # Search: part of the address, in any case; the reason.
    found = visible(console.get("/console/suppression", q="EXAMPLE.ORG"))
    assert "bounced@example.org" in found and "someone@example.com" not in found
    found = visible(console.get("/console/suppression", reason="COMPLAINT"))
    assert "someone@example.com" in found and "bounced@example.org" not in found
    assert "No suppressed address matches." in visible(console.get("/console/suppression", q="nobody"))

    bad = console.post("/console/suppression", address="not-an-address", reason="BOUNCE")
    assert bad.status_code == 400 and "Invalid email address <not-an-address>." in visible(bad)

    removed = console.post("/console/suppression/remove", address="bounced@example.org")
    assert "bounced@example.org removed from the suppression list." in visible(removed)
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.get_suppressed_destination(EmailAddress="bounced@example.org")
    again = console.post("/console/suppression/remove", address="bounced@example.org")
    assert again.status_code == 404
    assert "Email address bounced@example.org does not exist on your suppression list." in visible(again)


def test_suppression_list_pages(dev: SesameProcess, console: Console, account: str) -> None:
    ses = sdk(dev, account)
    for i in range(53):  # the console's page_size is 50
        ses.put_suppressed_destination(EmailAddress=f"user{i:03d}@example.com", Reason="BOUNCE")
    first = console.get("/console/suppression")
    assert "user049@example.com" in first.text and "user050@example.com" not in first.text
    link = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', first.text)
    assert link is not None
    second = console.get(html.unescape(link.group(1)))
    assert "user050@example.com" in second.text and "user052@example.com" in second.text
    assert "user049@example.com" not in second.text
    assert 'rel="next"' not in second.text and "First page" in second.text


def test_suppression_import_from_a_csv_upload(dev: SesameProcess, console: Console, account: str) -> None:
    ses = sdk(dev, account)
    csv = (
        b"emailAddress,reason\nimported1@example.com,BOUNCE\nImported2@Example.com,COMPLAINT\nbroken,BOUNCE\n"
    )
    started = console.post(
        "/console/suppression/import",
        files={"file": ("list.csv", csv, "text/csv")},
        format="CSV",
        action="PUT",
    )
    assert started.status_code == 200 and "Import job created." in visible(started)
    job_id = started.url.path.rsplit("/", 1)[1]
    deadline = time.monotonic() + 30
    while "COMPLETED" not in (page := visible(console.get(started.url.path))):
        assert "FAILED" not in page and time.monotonic() < deadline
        time.sleep(0.3)
    assert re.search(r"Processed records (\d+)", page).group(1) == str(  # type: ignore[union-attr]
        ses.get_import_job(JobId=job_id)["ProcessedRecordsCount"]
    )
    assert "Failed records 1" in page  # "broken" is no address
    assert ses.get_import_job(JobId=job_id)["FailedRecordsCount"] == 1
    for address, reason in (("imported1@example.com", "BOUNCE"), ("imported2@example.com", "COMPLAINT")):
        got = ses.get_suppressed_destination(EmailAddress=address)["SuppressedDestination"]
        assert got["Reason"] == reason
    listed = visible(console.get("/console/suppression"))
    assert "imported2@example.com COMPLAINT" in listed and job_id in listed  # the recent imports

    nothing = {"file": ("e.csv", b"", "text/csv")}
    empty = console.post("/console/suppression/import", files=nothing, format="CSV", action="PUT")
    assert empty.status_code == 400 and "The file is empty." in visible(empty)


# -- receiving ------------------------------------------------------------------------------------------


def test_receiving_both_ways(dev: SesameProcess, console: Console, account: str) -> None:
    ses = sdk(dev, account, "ses")
    made = console.post("/console/receiving/rule-sets", name="console-set")
    assert made.url.path == "/console/receiving/rule-sets/console-set"
    here = "/console/receiving/rule-sets/console-set"
    console.post(here + "/rules", rule_name="store", recipients="info@example.com\nexample.org", enabled="on",
                 action="S3Action", bucket="incoming-mail", prefix="in/")  # fmt: skip
    console.post(here + "/rules", rule_name="reject", action="BounceAction", smtp_reply_code="550",
                 status_code="5.1.1", bounce_message="No such user", bounce_sender="postmaster@example.com",
                 tls_policy="Require", scan="on")  # fmt: skip
    rules = ses.describe_receipt_rule_set(RuleSetName="console-set")["Rules"]
    assert [r["Name"] for r in rules] == ["store", "reject"]  # each after the last
    assert rules[0]["Recipients"] == ["info@example.com", "example.org"]
    assert rules[0]["Actions"] == [{"S3Action": {"BucketName": "incoming-mail", "ObjectKeyPrefix": "in/"}}]
    assert rules[0]["Enabled"] is True
    assert rules[1]["Actions"][0]["BounceAction"]["SmtpReplyCode"] == "550"
    assert (rules[1]["TlsPolicy"], rules[1]["ScanEnabled"], rules[1]["Enabled"]) == ("Require", True, False)

    console.post("/console/receiving/active", name="console-set")
    assert ses.describe_active_receipt_rule_set()["Metadata"]["Name"] == "console-set"
    refused = console.post("/console/receiving/rule-sets/console-set/delete")
    assert refused.status_code == 400 and "Cannot delete active rule set: console-set" in visible(refused)
    bad = console.post(here + "/rules", rule_name="bad", action="S3Action", bucket="Not A Bucket")
    assert bad.status_code == 400 and "Not A Bucket" in visible(bad)

    # Made with the API, seen on the pages, in order.
    ses.create_receipt_rule_set(RuleSetName="api-set")
    ses.create_receipt_rule(RuleSetName="api-set", Rule={"Name": "second", "Enabled": True,
                            "Actions": [{"StopAction": {"Scope": "RuleSet"}}]})  # fmt: skip
    ses.create_receipt_rule(RuleSetName="api-set", Rule={"Name": "first", "Recipients": ["a@example.net"]})
    assert "api-set" in visible(console.get("/console/receiving"))
    page = visible(console.get("/console/receiving/rule-sets/api-set"))
    assert "1 first a@example.net none No" in page
    assert "2 second every recipient of your domains Stop the rule set Yes" in page

    console.post("/console/receiving/rule-sets/console-set/rules/store/delete")
    assert [r["Name"] for r in ses.describe_receipt_rule_set(RuleSetName="console-set")["Rules"]] == [
        "reject"
    ]

    # IP address filters.
    console.post("/console/receiving/filters", name="office", policy="Allow", cidr="192.0.2.0/24")
    ses.create_receipt_filter(
        Filter={"Name": "spammers", "IpFilter": {"Policy": "Block", "Cidr": "198.51.100.7"}}
    )
    filters = {f["Name"]: f["IpFilter"] for f in ses.list_receipt_filters()["Filters"]}
    assert filters["office"] == {"Policy": "Allow", "Cidr": "192.0.2.0/24"}
    page = visible(console.get("/console/receiving"))
    assert "office Allow 192.0.2.0/24" in page and "spammers Block 198.51.100.7" in page
    wrong = console.post("/console/receiving/filters", name="wrong", policy="Block", cidr="300.1.1.1")
    assert wrong.status_code == 400 and "Invalid CIDR <300.1.1.1>" in visible(wrong)
    console.post("/console/receiving/filters/office/delete")
    assert [f["Name"] for f in ses.list_receipt_filters()["Filters"]] == ["spammers"]


# -- contact lists ----------------------------------------------------------------------------------


def test_contact_lists_both_ways(dev: SesameProcess, console: Console, account: str) -> None:
    ses = sdk(dev, account)
    made = console.post("/console/contact-lists", name="members", description="Our members",
                        topics="news, News, OPT_IN\noffers, Offers, deals, OPT_OUT")  # fmt: skip
    assert made.url.path == "/console/contact-lists/members"
    got = ses.get_contact_list(ContactListName="members")
    assert got["Topics"] == [
        {"TopicName": "news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_IN"},
        {"TopicName": "offers", "DisplayName": "Offers, deals", "DefaultSubscriptionStatus": "OPT_OUT"},
    ]
    second = console.post("/console/contact-lists", name="another")
    assert second.status_code == 400 and "An account can have only one contact list in a region." in visible(
        second
    )

    here = "/console/contact-lists/members"
    console.post(here + "/contacts", address="Ann@Example.com", topic_offers="OPT_IN")
    contact = ses.get_contact(ContactListName="members", EmailAddress="ann@example.com")
    assert contact["TopicPreferences"] == [{"TopicName": "offers", "SubscriptionStatus": "OPT_IN"}]
    assert contact["UnsubscribeAll"] is False
    twice = console.post(here + "/contacts", address="ann@example.com")
    assert twice.status_code == 400 and "already exists" in visible(twice)

    ses.create_contact(ContactListName="members", EmailAddress="bob@example.net", UnsubscribeAll=True)
    ses.create_contact(ContactListName="members", EmailAddress="cy@example.net",
                       TopicPreferences=[{"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}])  # fmt: skip
    page = visible(console.get(here))
    assert "Ann@Example.com OPT_IN (default) OPT_IN No" in page
    assert "bob@example.net OPT_OUT OPT_OUT Yes" in page
    assert "cy@example.net OPT_OUT OPT_OUT (default) No" in page

    # Search by address (any case) and filter by a topic's status.
    found = visible(console.get(here, q="EXAMPLE.NET"))
    assert "bob@example.net" in found and "cy@example.net" in found and "Ann@Example.com" not in found
    found = visible(console.get(here, topic="news", status="OPT_IN"))
    assert "Ann@Example.com" in found and "bob@example.net" not in found and "cy@example.net" not in found
    found = visible(console.get(here, q="example.net", topic="news", status="OPT_OUT"))
    assert "bob@example.net" in found and "cy@example.net" in found
    found = visible(console.get(here, status="OPT_OUT"))  # no topic: unsubscribed from all
    assert "bob@example.net" in found and "cy@example.net" not in found

    # Edit: a full replacement of the preferences, as UpdateContact.
    edit = console.get(here + "/contacts/ann%40example.com")
    assert edit.status_code == 200 and "Contact Ann@Example.com" in visible(edit)
    console.post(here + "/contacts/ann%40example.com", topic_news="OPT_OUT", topic_offers="DEFAULT",
                 unsubscribe_all="on")  # fmt: skip
    contact = ses.get_contact(ContactListName="members", EmailAddress="ann@example.com")
    assert contact["TopicPreferences"] == [{"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}]
    assert contact["UnsubscribeAll"] is True

    console.post(here + "/contacts/bob%40example.net/delete")
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.get_contact(ContactListName="members", EmailAddress="bob@example.net")

    console.post(here + "/topics", description="Members", topics="news, Newsletter, OPT_IN")
    assert [t["DisplayName"] for t in ses.get_contact_list(ContactListName="members")["Topics"]] == [
        "Newsletter"
    ]
    console.post(here + "/delete")
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.get_contact_list(ContactListName="members")


# -- tenants ------------------------------------------------------------------------------------------


def test_tenants_both_ways(dev: SesameProcess, console: Console, account: str) -> None:
    ses = sdk(dev, account)
    made = console.post("/console/tenants", name="blue")
    assert made.url.path == "/console/tenants/blue" and "Tenant blue created." in visible(made)
    tenant = ses.get_tenant(TenantName="blue")["Tenant"]
    assert f"ARN {tenant['TenantArn']}" in visible(made)
    twice = console.post("/console/tenants", name="blue")
    assert twice.status_code == 400 and "Tenant blue already exists." in visible(twice)

    ses.create_tenant(TenantName="green")
    page = visible(console.get("/console/tenants"))
    assert "blue ENABLED" in page and "green ENABLED" in page
    assert "green" not in visible(console.get("/console/tenants", q="blu")).split("Search", 1)[1]

    ses.create_configuration_set(ConfigurationSetName="blue-set")
    arn = f"arn:aws:ses:us-east-1:{account}:configuration-set/blue-set"
    console.post("/console/tenants/blue/resources", arn=arn)
    resources = ses.list_tenant_resources(TenantName="blue")["TenantResources"]
    assert resources == [{"ResourceType": "CONFIGURATION_SET", "ResourceArn": arn}]
    missing = console.post("/console/tenants/blue/resources", arn=arn.replace("blue-set", "nope"))
    assert (
        missing.status_code == 400
        and f"Resource {arn.replace('blue-set', 'nope')} does not exist." in visible(missing)
    )
    again = console.post("/console/tenants/blue/resources", arn=arn)
    assert f"Resource {arn} is already associated with tenant blue." in visible(again)

    # The reputation entity: the customer-managed status pauses the tenant.
    console.post("/console/tenants/blue/reputation", customer_status="DISABLED")
    entity = ses.get_reputation_entity(
        ReputationEntityType="RESOURCE", ReputationEntityReference=tenant["TenantArn"]
    )["ReputationEntity"]
    assert entity["SendingStatusAggregate"] == "DISABLED"
    assert "Sending status DISABLED" in visible(console.get("/console/tenants/blue"))
    ses.update_reputation_entity_customer_managed_status(
        ReputationEntityType="RESOURCE",
        ReputationEntityReference=tenant["TenantArn"],
        SendingStatus="REINSTATED",
    )
    assert "Sending status REINSTATED" in visible(console.get("/console/tenants/blue"))

    console.post("/console/tenants/blue/resources/remove", arn=arn)
    assert ses.list_tenant_resources(TenantName="blue")["TenantResources"] == []
    console.post("/console/tenants/blue/delete")
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.get_tenant(TenantName="blue")


def test_settings_forms_need_the_csrf_token(dev: SesameProcess, console: Console, account: str) -> None:
    refused = console.http.post("/console/configuration-sets", data={"name": "sneaky"})
    assert refused.status_code == 403
    with pytest.raises(sdk(dev, account).exceptions.NotFoundException):
        sdk(dev, account).get_configuration_set(ConfigurationSetName="sneaky")


def test_an_account_signed_in_with_its_key(serve: Serve) -> None:
    """In serve mode the pages are the signed-in account's, and nobody else's."""
    mine, other = serve.new_account("settings-a"), serve.new_account("settings-b")
    with httpx.Client(base_url=serve.endpoint, follow_redirects=False, timeout=30) as http:
        assert http.get("/console/tenants").status_code == 303  # to the sign-in page
        signed = http.post(
            "/console/sign-in",
            data={"access_key_id": mine["AccessKeyId"], "secret_access_key": mine["SecretAccessKey"]},
        )
        assert signed.status_code == 303
        page = http.get("/console/tenants")
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        made = http.post("/console/tenants", data={"csrf_token": csrf, "name": "signed-in"})
        assert made.status_code == 303
    assert (
        serve.client("sesv2", mine).get_tenant(TenantName="signed-in")["Tenant"]["TenantName"] == "signed-in"
    )
    theirs = serve.client("sesv2", other)
    with pytest.raises(theirs.exceptions.NotFoundException):
        theirs.get_tenant(TenantName="signed-in")
