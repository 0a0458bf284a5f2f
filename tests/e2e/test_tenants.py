"""Tenants end to end: ``sesame serve`` delivers to a sink, and feedback comes back through its MX.

A tenant's complaint rate pauses that tenant alone under its reputation policy while another tenant of
the account still sends; a tenant with its own suppression list (scope TENANT) gets its hard bounces on
it and its suppressed recipients bounce as OnTenantSuppressionList; X-SES-TENANT never reaches the
recipient. Entities judge from 2 recipients (``reputation.entity_min_sends``); the account's own
enforcement keeps its default minimum, so only tenants are paused here. Both databases.
"""

from __future__ import annotations

import email
from collections.abc import Iterator
from typing import Any

import pytest

from sesame.testing.dns import DnsServer
from sesame.testing.smtp import SinkServer
from tests.conftest import Serve
from tests.e2e.servers import serve_env, serving
from tests.e2e.test_delivery import Sender, events, received_by
from tests.e2e.test_feedback import RETURN_PATH_DOMAIN, fixture, through_mx
from tests.e2e.test_reputation import eventually

DOMAINS = ("yahoo.example", "gmail.example")


@pytest.fixture(scope="module")
def sink(module_database: str) -> Iterator[SinkServer]:
    with SinkServer("127.0.0.1") as server:
        server.reply_for("gone@gmail.example", 550, "5.1.1 No such user here")
        yield server


@pytest.fixture(scope="module")
def sesame(
    module_database: str, sink: SinkServer, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    env = serve_env(
        dns_server,
        DELIVERY__ROUTES=",".join(f"{d}=127.0.0.1:{sink.port}" for d in DOMAINS),
        DELIVERY__HELO_NAME="sesame.test",
        DELIVERY__RETURN_PATH_DOMAIN=RETURN_PATH_DOMAIN,
        EVENTS__POLL_INTERVAL="0.1",
        REPUTATION__ENTITY_MIN_SENDS="2",
    )
    with serving(module_database, tmp_path_factory, "tenants", env) as server:
        yield server


_n = iter(range(1000))


@pytest.fixture
def sender(sesame: Serve, dns_server: DnsServer) -> Sender:
    return Sender(sesame, dns_server, 900 + next(_n))


def tenant(sender: Sender, name: str, **kw: Any) -> str:
    """A tenant that may send from the sender's domain; its ARN."""
    arn: str = sender.v2.create_tenant(TenantName=name, **kw)["TenantArn"]
    sender.v2.create_tenant_resource_association(
        TenantName=name, ResourceArn=f"arn:aws:ses:us-east-1:{sender.id}:identity/{sender.domain}"
    )
    return arn


def entity(sender: Sender, arn: str) -> dict[str, Any]:
    found: dict[str, Any] = sender.v2.get_reputation_entity(
        ReputationEntityType="RESOURCE", ReputationEntityReference=arn
    )["ReputationEntity"]
    return found


def test_a_tenants_complaints_pause_that_tenant_alone(
    sesame: Serve, sink: SinkServer, sender: Sender
) -> None:
    loud, quiet = tenant(sender, "loud"), tenant(sender, "quiet")
    standard = "arn:aws:ses:us-east-1:aws:reputation-policy/standard"
    for arn in (loud, quiet):
        sender.v2.update_reputation_entity_policy(
            ReputationEntityType="RESOURCE", ReputationEntityReference=arn, ReputationEntityPolicy=standard
        )
    complained = sender.send("reader@yahoo.example", TenantName="loud")
    sender.send("fan@yahoo.example", TenantName="loud")
    for rcpt in ("q1@yahoo.example", "q2@yahoo.example"):
        sender.send(rcpt, TenantName="quiet")
    for rcpt in ("reader@yahoo.example", "fan@yahoo.example", "q2@yahoo.example"):
        received_by(sink, rcpt)
    # The reader complains (a Yahoo feedback loop report to the message's return path): 1 of loud's 2
    # recipients, far past the 0.5% at which the standard policy pauses.
    through_mx(sesame, f"{complained}@{RETURN_PATH_DOMAIN}", fixture("arf_yahoo_abuse.eml", complained))

    paused = eventually(lambda: (e := entity(sender, loud))["SendingStatusAggregate"] == "DISABLED" and e)
    assert paused["AwsSesManagedStatus"]["Status"] == "DISABLED"
    assert "standard" in paused["AwsSesManagedStatus"]["Cause"]
    assert paused["CustomerManagedStatus"]["Status"] == "ENABLED"
    assert paused["ReputationImpact"] == "HIGH"
    assert sender.v2.get_tenant(TenantName="loud")["Tenant"]["SendingStatus"] == "DISABLED"
    with pytest.raises(sender.v2.exceptions.SendingPausedException):
        sender.send("again@yahoo.example", TenantName="loud")

    # The other tenant, and the account itself, send on.
    calm = entity(sender, quiet)
    assert (calm["SendingStatusAggregate"], calm["ReputationImpact"]) == ("ENABLED", "NONE")
    sender.send("q3@yahoo.example", TenantName="quiet")
    received_by(sink, "q3@yahoo.example")
    account = sender.v2.get_account()
    assert (account["EnforcementStatus"], account["SendingEnabled"]) == ("HEALTHY", True)
    sender.send("plain@yahoo.example")

    # The customer's REINSTATED does not lift Sesame's pause; a policy that tolerates the finding does.
    sender.v2.update_reputation_entity_customer_managed_status(
        ReputationEntityType="RESOURCE", ReputationEntityReference=loud, SendingStatus="REINSTATED"
    )
    assert entity(sender, loud)["SendingStatusAggregate"] == "DISABLED"
    sender.v2.update_reputation_entity_policy(
        ReputationEntityType="RESOURCE",
        ReputationEntityReference=loud,
        ReputationEntityPolicy="arn:aws:ses:us-east-1:aws:reputation-policy/none",
    )
    lifted = entity(sender, loud)
    assert (lifted["AwsSesManagedStatus"]["Status"], lifted["SendingStatusAggregate"]) == (
        "ENABLED",
        "REINSTATED",
    )
    assert lifted["ReputationImpact"] == "HIGH"  # the finding stands; the policy no longer pauses on it
    sender.send("back@yahoo.example", TenantName="loud")
    received_by(sink, "back@yahoo.example")


def test_a_tenants_own_suppression_list_and_header(sesame: Serve, sink: SinkServer, sender: Sender) -> None:
    tenant(sender, "own", SuppressionAttributes={"SuppressionScope": "TENANT"})
    v2 = sender.v2
    v2.put_suppressed_destination(EmailAddress="listed@gmail.example", Reason="BOUNCE", TenantName="own")
    raw = (
        f"From: me@{sender.domain}\r\nTo: ok@gmail.example, listed@gmail.example, gone@gmail.example\r\n"
        "X-SES-TENANT: own\r\nSubject: as a tenant\r\n\r\nhello\r\n"
    ).encode()
    message_id = v2.send_email(Content={"Raw": {"Data": raw}})["MessageId"]

    delivered = received_by(sink, "ok@gmail.example")
    parsed = email.message_from_bytes(delivered.data)
    assert parsed["Subject"] == "as a tenant" and parsed["X-SES-TENANT"] is None
    assert b"X-SES-TENANT" not in delivered.data
    outcomes = events(sesame, message_id, want=3)
    bounces = {b["bouncedRecipients"][0]["emailAddress"]: b for b in outcomes if b["type"] == "Bounce"}
    assert bounces["listed@gmail.example"]["bounceSubType"] == "OnTenantSuppressionList"
    assert bounces["gone@gmail.example"]["bounceType"] == "Permanent"

    # The hard bounce went to the tenant's list, not the account's.
    def on_tenant_list() -> Any:
        try:
            return v2.get_suppressed_destination(EmailAddress="gone@gmail.example", TenantName="own")
        except v2.exceptions.NotFoundException:
            return None

    entry = eventually(on_tenant_list)["SuppressedDestination"]
    assert (entry["Reason"], entry["TenantName"], entry["Attributes"]["MessageId"]) == (
        "BOUNCE",
        "own",
        message_id,
    )
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_suppressed_destination(EmailAddress="gone@gmail.example")
    # Mail not sent as the tenant is checked against the account's list only.
    sender.send("listed@gmail.example")
    received_by(sink, "listed@gmail.example")
