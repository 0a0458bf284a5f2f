"""Virtual Deliverability Manager end to end: ``sesame serve`` delivers real mail to sinks (and the
mailbox simulator), its events are counted as they are dispatched, and boto3 reads them back through
BatchGetMetricData, GetDomainStatisticsReport and GetMessageInsights; ListRecommendations checks the
test DNS server's records; GetEmailAddressInsights looks addresses up there.

Complaints, opens and clicks are written into the events table as the feedback intake and the tracking
endpoints write them (tests/e2e/test_tracking.py covers those endpoints themselves).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from sesame.events import details
from sesame.storage.models import DeliveryEvent, utcnow
from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess
from sesame.testing.smtp import SinkServer
from tests.conftest import Serve
from tests.e2e.servers import serve_env, serving
from tests.e2e.test_delivery import Sender, events, received_by, write

#: Recipient domains routed to the sink; acme-corp.test is hosted "at Google" by its MX.
ROUTED = ("gmail.com", "yahoo.com", "acme-corp.test")


@pytest.fixture(scope="module")
def sesame(
    module_database: str, sink: SinkServer, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    dns_server.add("acme-corp.test", "MX", "10 aspmx.l.google.com.")
    dns_server.add("dest-v.test", "A", "127.0.0.1")  # implicit MX: the sink
    env = serve_env(
        dns_server,
        DELIVERY__MX_PORT=str(sink.port),
        DELIVERY__ROUTES=",".join(f"{d}=127.0.0.1:{sink.port}" for d in ROUTED),
        DELIVERY__RETRY_BASE="0.5",
        DELIVERY__MAX_AGE_SECONDS="3",
        DELIVERY__CONNECT_TIMEOUT="1",
        EVENTS__POLL_INTERVAL="0.1",
        VDM__PASS_INTERVAL="0.3",
        VDM__RECOMMENDATIONS_INTERVAL="1",
        VDM__RECOMMENDATION_MIN_VOLUME="1",
    )
    with serving(module_database, tmp_path_factory, "vdm", env) as server:
        yield server


_n = iter(range(1000))


def new_sender(sesame: Serve, dns_server: DnsServer) -> Sender:
    return Sender(sesame, dns_server, 700 + next(_n))


def add_event(
    sesame: Serve, sender: Sender, message_id: str, event_type: str, detail: dict[str, Any]
) -> None:
    row = {"message_id": message_id, "account_id": sender.id, "region": "us-east-1", "event_type": event_type,
           "created_at": utcnow(), "detail": detail, "dispatched": False}  # fmt: skip
    write(sesame, sa.insert(DeliveryEvent.__table__), row)  # type: ignore[arg-type]


def until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """``check()``'s value once it is truthy (meanwhile it raises, or returns something falsy)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if got := check():
                return got
        except Exception:  # an assertion not yet true, or a NotFoundException
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last {check()!r}")
        time.sleep(0.2)


@dataclass
class Campaign:
    sender: Sender
    ids: dict[str, str]


@pytest.fixture(scope="module")
def campaign(sesame: Serve, sink: SinkServer, dns_server: DnsServer) -> Campaign:
    """One account's mail of every outcome, each to one recipient unless said otherwise."""
    sender = new_sender(sesame, dns_server)
    v2 = sender.v2
    v2.create_configuration_set(ConfigurationSetName="tracked")
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="tracked",
        EventDestinationName="engagement",
        EventDestination={
            "Enabled": True,
            "MatchingEventTypes": ["OPEN", "CLICK"],
            "CloudWatchDestination": {
                "DimensionConfigurations": [
                    {"DimensionName": "campaign", "DimensionValueSource": "MESSAGE_TAG",
                     "DefaultDimensionValue": "none"}
                ]
            },
        },
    )  # fmt: skip
    sink.reply_for("gone@dest-v.test", 550, "5.1.1 No such user here")
    sink.reply_for("later@dest-v.test", 451, "4.2.0 Try again later")
    ids = {
        "gmail": sender.send("ann@gmail.com", ConfigurationSetName="tracked",
                             EmailTags=[{"Name": "campaign", "Value": "spring"}]),
        "yahoo": sender.send("bea@yahoo.com"),
        "acme": sender.send("cid@acme-corp.test"),
        "gone": sender.send("gone@dest-v.test"),
        "later": sender.send("later@dest-v.test"),
        "two": sender.send("dot@dest-v.test", "eve@dest-v.test"),  # two recipients: never counted
        "simulator": sender.send("success@simulator.amazonses.com"),
        "simulator-bounce": sender.send("bounce@simulator.amazonses.com"),
    }  # fmt: skip
    for rcpt in ("ann@gmail.com", "bea@yahoo.com", "cid@acme-corp.test", "dot@dest-v.test"):
        received_by(sink, rcpt)
    events(sesame, ids["gone"])
    until(lambda: v2.get_suppressed_destination(EmailAddress="gone@dest-v.test"))
    ids["suppressed"] = sender.send("gone@dest-v.test")  # bounced by the account's suppression list
    assert events(sesame, ids["suppressed"])[0]["bounceSubType"] == "OnAccountSuppressionList"
    bounces = until(lambda: [e for e in events(sesame, ids["later"]) if e["type"] == "Bounce"])
    assert bounces[0]["bounceType"] == "Transient"
    now = details.iso(utcnow())
    complaint = details.complaint(
        ["bea@yahoo.com"], timestamp=utcnow(), feedback_id="f1", feedback_type="abuse"
    )
    add_event(sesame, sender, ids["yahoo"], "Complaint", complaint.body)
    listed = details.complaint(["bea@yahoo.com"], timestamp=utcnow(), feedback_id="f2",
                               subtype="OnAccountSuppressionList")  # fmt: skip
    add_event(sesame, sender, ids["yahoo"], "Complaint", listed.body)
    opened = {"ipAddress": "192.0.2.1", "timestamp": now, "userAgent": "Mozilla/5.0"}
    add_event(sesame, sender, ids["gmail"], "Open", opened)
    add_event(sesame, sender, ids["gmail"], "Open", opened)  # the same message again: one unique open
    clicked = {**opened, "link": "https://example.com/", "linkTags": {}}
    add_event(sesame, sender, ids["gmail"], "Click", clicked)
    add_event(sesame, sender, ids["two"], "Open", opened)  # two recipients: not counted
    return Campaign(sender, ids)


def metrics(v2: Any, queries: dict[str, tuple[str, dict[str, str]]]) -> dict[str, int]:
    """Each query's total over yesterday and today (UTC)."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    got = v2.batch_get_metric_data(
        Queries=[
            {"Id": qid, "Namespace": "VDM", "Metric": metric, "Dimensions": dims,
             "StartDate": today - dt.timedelta(days=1), "EndDate": today + dt.timedelta(hours=23)}
            for qid, (metric, dims) in queries.items()
        ]
    )  # fmt: skip
    assert got["Errors"] == []
    for result in got["Results"]:
        assert result["Timestamps"] == [today - dt.timedelta(days=1), today]
    return {r["Id"]: sum(r["Values"]) for r in got["Results"]}


def test_metrics_per_metric_and_dimension(campaign: Campaign, sesame: Serve, dns_server: DnsServer) -> None:
    sender = campaign.sender
    identity = {"EMAIL_IDENTITY": sender.domain}
    per_metric = {
        "SEND": 6,  # gmail, yahoo, acme, gone, later, and the send the suppression list bounced
        "DELIVERY": 3,
        "PERMANENT_BOUNCE": 1,  # not the suppression list's
        "TRANSIENT_BOUNCE": 1,
        "COMPLAINT": 1,  # not the suppression list's
        "OPEN": 1,  # unique per message
        "CLICK": 1,
        "DELIVERY_OPEN": 1,  # the tracked configuration set's delivery
        "DELIVERY_CLICK": 1,
        "DELIVERY_COMPLAINT": 1,  # Yahoo has a feedback loop; Gmail (and acme-corp, hosted there) not
    }
    by_dimension = {
        "gmail-delivery": ("DELIVERY", {"ISP": "Gmail"}),  # gmail.com and acme-corp.test (by its MX)
        "yahoo-delivery": ("DELIVERY", {"ISP": "Yahoo", **identity}),
        "other-send": ("SEND", {"ISP": "Other", **identity}),
        "set-send": ("SEND", {"CONFIGURATION_SET": "tracked"}),
        "set-open": ("OPEN", {"CONFIGURATION_SET": "tracked", "ISP": "Gmail", **identity}),
        "no-such-set": ("SEND", {"CONFIGURATION_SET": "nothing"}),
        "other-identity": ("SEND", {"EMAIL_IDENTITY": "elsewhere.test"}),
    }
    want = {**per_metric, "gmail-delivery": 2, "yahoo-delivery": 1, "other-send": 3, "set-send": 1,
            "set-open": 1, "no-such-set": 0, "other-identity": 0}  # fmt: skip

    v2 = sender.v2
    denied = v2.batch_get_metric_data(
        Queries=[{"Id": "q", "Namespace": "VDM", "Metric": "SEND", "StartDate": dt.datetime.now(dt.UTC),
                  "EndDate": dt.datetime.now(dt.UTC)}]
    )  # fmt: skip
    assert denied["Results"] == [] and denied["Errors"][0]["Code"] == "ACCESS_DENIED"
    v2.put_account_vdm_attributes(VdmAttributes={"VdmEnabled": "ENABLED"})
    first = {m: (m, identity) for m in list(per_metric)[:5]}
    rest = {m: (m, identity) for m in list(per_metric)[5:]}

    def all_metrics() -> dict[str, int]:
        got = {**metrics(v2, first), **metrics(v2, rest), **metrics(v2, by_dimension)}
        assert got == want
        return got

    until(all_metrics)
    # Another account sees none of it.
    other = new_sender(sesame, dns_server)
    other.v2.put_account_vdm_attributes(VdmAttributes={"VdmEnabled": "ENABLED"})
    assert metrics(other.v2, {"s": ("SEND", {"ISP": "Gmail"})}) == {"s": 0}


def test_metric_queries_are_validated(campaign: Campaign) -> None:
    v2 = campaign.sender.v2
    now = dt.datetime.now(dt.UTC)
    query = {"Id": "a", "Namespace": "VDM", "Metric": "SEND", "StartDate": now, "EndDate": now}
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.batch_get_metric_data(Queries=[{**query, "EndDate": now - dt.timedelta(days=2)}])
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.batch_get_metric_data(Queries=[query, query])  # the same Id twice
    with pytest.raises(v2.exceptions.BadRequestException):  # a value for each of 36,500 days: refused
        v2.batch_get_metric_data(Queries=[{**query, "StartDate": now - dt.timedelta(days=36500)}])


def test_domain_statistics_report(campaign: Campaign) -> None:
    sender, v2 = campaign.sender, campaign.sender.v2
    v2.put_account_vdm_attributes(VdmAttributes={"VdmEnabled": "ENABLED"})
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def report() -> dict[str, Any]:
        got = v2.get_domain_statistics_report(Domain=sender.domain, StartDate=today, EndDate=today)
        placements = {p["IspName"]: (p["InboxRawCount"], p["SpamRawCount"])
                      for p in got["OverallVolume"]["DomainIspPlacements"]}  # fmt: skip
        assert placements == {"Gmail": (2, 0), "Yahoo": (0, 1)}, got
        return got

    got = until(report)
    assert got["OverallVolume"]["VolumeStatistics"] == {
        "InboxRawCount": 2, "SpamRawCount": 1, "ProjectedInbox": 2, "ProjectedSpam": 1
    }  # fmt: skip
    assert got["OverallVolume"]["ReadRatePercent"] == 100.0  # one open of one tracked delivery
    (day,) = got["DailyVolumes"]
    assert day["StartDate"] == today and day["VolumeStatistics"]["InboxRawCount"] == 2
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_domain_statistics_report(Domain="not-mine.test", StartDate=today, EndDate=today)
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.get_domain_statistics_report(
            Domain=sender.domain, StartDate=today - dt.timedelta(days=40), EndDate=today
        )


def test_message_insights_of_delivered_and_bounced_mail(campaign: Campaign, sesame: Serve,
                                                        dns_server: DnsServer) -> None:  # fmt: skip
    sender, v2 = campaign.sender, campaign.sender.v2

    def delivered() -> dict[str, Any]:
        got = v2.get_message_insights(MessageId=campaign.ids["gmail"])
        (insight,) = got["Insights"]
        assert [e["Type"] for e in insight["Events"]] == ["SEND", "DELIVERY", "OPEN", "OPEN", "CLICK"]
        return got

    got = until(delivered)
    assert got["FromEmailAddress"] == f"me@{sender.domain}" and got["Subject"] == "hello"
    (insight,) = got["Insights"]
    assert (insight["Destination"], insight["Isp"]) == ("ann@gmail.com", "Gmail")
    tags = {(t["Name"], t["Value"]) for t in got["EmailTags"]}
    assert {("campaign", "spring"), ("ses:configuration-set", "tracked"), ("ses:operation", "SendEmail"),
            ("ses:from-domain", sender.domain)} <= tags  # fmt: skip
    timestamps = [e["Timestamp"] for e in insight["Events"]]
    assert timestamps == sorted(timestamps)

    bounced = v2.get_message_insights(MessageId=campaign.ids["gone"])
    (insight,) = bounced["Insights"]
    assert insight["Isp"] == "Other"
    assert [e["Type"] for e in insight["Events"]] == ["SEND", "BOUNCE"]
    assert insight["Events"][1]["Details"]["Bounce"] == {
        "BounceType": "PERMANENT",
        "BounceSubType": "General",
        "DiagnosticCode": "smtp; 550 5.1.1 No such user here",
    }
    acme = v2.get_message_insights(MessageId=campaign.ids["acme"])
    assert acme["Insights"][0]["Isp"] == "Gmail"  # by its MX
    # Mail to more than one recipient, or to the simulator, shows its SEND only (the model's EventType).
    two = v2.get_message_insights(MessageId=campaign.ids["two"])
    assert sorted(i["Destination"] for i in two["Insights"]) == ["dot@dest-v.test", "eve@dest-v.test"]
    assert all([e["Type"] for e in i["Events"]] == ["SEND"] for i in two["Insights"])
    simulated = v2.get_message_insights(MessageId=campaign.ids["simulator-bounce"])
    assert [e["Type"] for e in simulated["Insights"][0]["Events"]] == ["SEND"]

    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_message_insights(MessageId="0100000000000000-00000000-0000-0000-0000-000000000000-000000")
    other = new_sender(sesame, dns_server)
    with pytest.raises(other.v2.exceptions.NotFoundException):  # another account's message
        other.v2.get_message_insights(MessageId=campaign.ids["gmail"])


def recommendations(v2: Any, **kw: Any) -> dict[tuple[str, str], tuple[str, str]]:
    """(Type, first word of the Description's subject) → (Status, Impact), all pages."""
    out, token = {}, None
    while True:
        page = v2.list_recommendations(**kw, **({"NextToken": token} if token else {}))
        for r in page["Recommendations"]:
            out[(r["Type"], r["Description"])] = (r["Status"], r["Impact"])
        token = page.get("NextToken")
        if not token:
            return out


def test_recommendations_follow_the_dns(sesame: Serve, dns_server: DnsServer) -> None:
    sender = new_sender(sesame, dns_server)
    v2, domain = sender.v2, sender.domain
    arn = f"arn:aws:ses:us-east-1:{sender.id}:identity/{domain}"
    got = v2.list_recommendations()["Recommendations"]
    assert {r["ResourceArn"] for r in got} == {arn}
    assert {(r["Type"], r["Status"], r["Impact"]) for r in got} == {
        ("SPF", "OPEN", "HIGH"), ("DMARC", "OPEN", "HIGH"), ("BIMI", "OPEN", "LOW")
    }  # fmt: skip
    # (no DKIM recommendation: its records are published and verified)
    first = {r["Type"]: r for r in got}

    dns_server.add(domain, "TXT", '"v=spf1 ip4:127.0.0.1 -all"')
    dns_server.add(f"_dmarc.{domain}", "TXT", '"v=DMARC1; p=none; rua=mailto:d@example.com"')

    def fixed() -> list[dict[str, Any]]:
        now = v2.list_recommendations()["Recommendations"]
        states = sorted((r["Type"], r["Status"], r["Impact"]) for r in now)
        assert states == [("BIMI", "OPEN", "LOW"), ("DMARC", "FIXED", "HIGH"), ("DMARC", "OPEN", "LOW"),
                          ("SPF", "FIXED", "HIGH")], states  # fmt: skip
        return now

    now = until(fixed, timeout=20)
    spf = next(r for r in now if r["Type"] == "SPF")
    assert spf["CreatedTimestamp"] == first["SPF"]["CreatedTimestamp"]
    assert spf["LastUpdatedTimestamp"] > first["SPF"]["LastUpdatedTimestamp"]
    weak_dmarc = next(r for r in now if r["Type"] == "DMARC" and r["Status"] == "OPEN")
    assert "p=none" in weak_dmarc["Description"]

    # Filters and pages, as the model allows them.
    opened = v2.list_recommendations(Filter={"STATUS": "OPEN"})["Recommendations"]
    assert sorted(r["Type"] for r in opened) == ["BIMI", "DMARC"]
    assert [r["Type"] for r in v2.list_recommendations(Filter={"STATUS": "OPEN", "TYPE": "DMARC"})[
        "Recommendations"]] == ["DMARC"]  # fmt: skip
    assert v2.list_recommendations(Filter={"IMPACT": "HIGH", "STATUS": "OPEN"})["Recommendations"] == []
    assert len(v2.list_recommendations(Filter={"RESOURCE_ARN": arn})["Recommendations"]) == 4
    page = v2.list_recommendations(PageSize=3)
    assert len(page["Recommendations"]) == 3 and page["NextToken"]
    rest = v2.list_recommendations(PageSize=3, NextToken=page["NextToken"])
    assert len(rest["Recommendations"]) == 1 and "NextToken" not in rest
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.list_recommendations(Filter={"TYPE": "SPF", "IMPACT": "LOW"})
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.list_recommendations(Filter={"STATUS": "CLOSED"})
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.list_recommendations(PageSize=101)


def test_recommendations_from_bounce_and_complaint_rates(campaign: Campaign) -> None:
    """The campaign's identity: 1 hard bounce of 6 sent (the suppression list's not counted), 1
    complaint of 1 delivery to a provider with a feedback loop (Yahoo; Gmail reports none)."""
    sender, v2 = campaign.sender, campaign.sender.v2
    arn = f"arn:aws:ses:us-east-1:{sender.id}:identity/{sender.domain}"

    def found() -> dict[str, dict[str, Any]]:
        got = {r["Type"]: r for r in v2.list_recommendations(Filter={"RESOURCE_ARN": arn})["Recommendations"]}
        assert {"BOUNCE", "COMPLAINT"} <= set(got), got
        return got

    got = until(found)
    assert (got["BOUNCE"]["Status"], got["BOUNCE"]["Impact"]) == ("OPEN", "HIGH")
    assert (
        "16.7%" in got["BOUNCE"]["Description"] and "1 hard bounces of 6 sent" in got["BOUNCE"]["Description"]
    )
    assert (got["COMPLAINT"]["Status"], got["COMPLAINT"]["Impact"]) == ("OPEN", "HIGH")
    assert "1 complaints of 1 delivered" in got["COMPLAINT"]["Description"]


def test_email_address_insights(campaign: Campaign, dns_server: DnsServer) -> None:
    dns_server.add("a-only.test", "A", "127.0.0.1")
    dns_server.add("null-mx.test", "MX", "0 .")
    v2 = campaign.sender.v2

    def insights(address: str) -> dict[str, str]:
        got = v2.get_email_address_insights(EmailAddress=address)["MailboxValidation"]
        return {"IsValid": got["IsValid"]["ConfidenceVerdict"],
                **{k: v["ConfidenceVerdict"] for k, v in got["Evaluations"].items()}}  # fmt: skip

    good = insights("cid@acme-corp.test")
    assert good == {"IsValid": "HIGH", "HasValidSyntax": "HIGH", "HasValidDnsRecords": "HIGH",
                    "MailboxExists": "MEDIUM", "IsRoleAddress": "LOW", "IsDisposable": "LOW",
                    "IsRandomInput": "LOW"}  # fmt: skip
    role = insights("postmaster@acme-corp.test")
    assert (role["IsValid"], role["IsRoleAddress"]) == ("MEDIUM", "HIGH")
    assert insights("info+news@acme-corp.test")["IsRoleAddress"] == "HIGH"
    random = insights("xkqzvbnwtrp@acme-corp.test")
    assert (random["IsValid"], random["IsRandomInput"]) == ("MEDIUM", "HIGH")
    disposable = insights("someone@mailinator.com")
    assert (disposable["IsValid"], disposable["IsDisposable"]) == ("LOW", "HIGH")
    implicit = insights("bob@a-only.test")
    assert (implicit["IsValid"], implicit["HasValidDnsRecords"]) == ("MEDIUM", "MEDIUM")
    assert insights("bob@null-mx.test")["HasValidDnsRecords"] == "LOW"
    assert insights("bob@nowhere-at-all.test")["IsValid"] == "LOW"  # NXDOMAIN
    bad = insights("not an address")
    assert (bad["IsValid"], bad["HasValidSyntax"]) == ("LOW", "LOW")
    assert insights("Bob <bob@acme-corp.test>")["HasValidSyntax"] == "LOW"
    # Sesame saw this one hard-bounce: it is on the account's suppression list.
    gone = insights("gone@dest-v.test")
    assert (gone["IsValid"], gone["MailboxExists"]) == ("LOW", "LOW")


def test_simulator_and_multi_recipient_mail_is_not_counted_in_dev(tmp_path: Any) -> None:
    """In dev mode nothing is delivered; accepted mail still counts as SEND, mail to the simulator not."""
    from tests.conftest import client

    with SesameProcess("dev", data_dir=tmp_path) as proc:
        v2 = client("sesv2", proc.endpoint, "111122223333", "x")
        v2.put_account_vdm_attributes(VdmAttributes={"VdmEnabled": "ENABLED"})
        v2.create_email_identity(EmailIdentity="dev.test")
        content = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}
        for to in (["a@gmail.com"], ["success@simulator.amazonses.com"], ["a@gmail.com", "b@gmail.com"]):
            v2.send_email(FromEmailAddress="me@dev.test", Destination={"ToAddresses": to}, Content=content)

        def sent() -> dict[str, int]:
            got = metrics(
                v2, {"s": ("SEND", {"EMAIL_IDENTITY": "dev.test"}), "g": ("SEND", {"ISP": "gmail"})}
            )
            assert got == {"s": 1, "g": 1}
            return got

        until(sent, timeout=15)
