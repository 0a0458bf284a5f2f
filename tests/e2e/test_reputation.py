"""Statistics, reputation and auto-pause end to end: ``sesame serve`` delivers to the mailbox simulator and
to a sink that refuses some recipients; GetSendStatistics, the rates at ``/metrics``, EnforcementStatus
and the refusal of sends follow, and the operator lifts a pause.

The thresholds are made small (env settings) so a few messages cross them: under review from 20%
bounces, paused from 50%, with at least 4 recipients in the window.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions
import httpx
import pytest

from sesame.testing.dns import DnsServer
from sesame.testing.smtp import SinkServer
from tests.conftest import Serve
from tests.e2e.servers import serve_env, serving
from tests.e2e.test_delivery import Sender, mx, received_by

DEST = "rep-dest.test"


@pytest.fixture(scope="module")
def sink(module_database: str, dns_server: DnsServer) -> Iterator[SinkServer]:
    mx(dns_server, DEST, (10, f"mx.{DEST}"))
    dns_server.add(f"mx.{DEST}", "A", "127.0.0.1")
    with SinkServer("127.0.0.1") as server:
        for n in range(20):
            server.reply_for(f"gone{n}@{DEST}", 550, "5.1.1 No such user here")
        server.reply_for(f"full@{DEST}", 552, "5.2.2 Mailbox full")
        yield server


@pytest.fixture(scope="module")
def sesame(
    module_database: str, sink: SinkServer, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    env = serve_env(
        dns_server,
        DELIVERY__MX_PORT=str(sink.port),
        DELIVERY__HELO_NAME="sesame.test",
        EVENTS__POLL_INTERVAL="0.1",
        REPUTATION__MIN_SENDS="4",
        REPUTATION__BOUNCE_REVIEW="0.2",
        REPUTATION__BOUNCE_PAUSE="0.5",
    )
    with serving(module_database, tmp_path_factory, "reputation", env) as server:
        yield server


_n = iter(range(1000))


@pytest.fixture
def sender(sesame: Serve, dns_server: DnsServer) -> Sender:
    return Sender(sesame, dns_server, 700 + next(_n))


def eventually(check: Callable[[], Any], show: Callable[[], Any] | None = None, timeout: float = 30.0) -> Any:
    """``check()``'s first truthy result, polled until ``timeout`` (then failing with ``show()``)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            assert got, f"timed out: {show() if show else got}"
            return got
        time.sleep(0.2)


def totals(v1: Any) -> dict[str, int]:
    points = v1.get_send_statistics()["SendDataPoints"]
    keys = ("DeliveryAttempts", "Bounces", "Complaints", "Rejects")
    return {k: sum(p[k] for p in points) for k in keys}


def gauges(sesame: Serve, account: str) -> dict[tuple[str, str], float]:
    """The account's reputation gauges at /metrics: (metric, configuration set) → value."""
    text = httpx.get(f"{sesame.endpoint}/metrics").text
    found = {}
    for m in re.finditer(
        r'^sesame_reputation_(bounce|complaint)_rate\{account="(\d+)",configuration_set="([^"]*)",'
        r'region="[^"]+"\} (\S+)$',
        text,
        re.MULTILINE,
    ):
        if m[2] == account:
            found[(m[1], m[3])] = float(m[4])
    return found


def test_send_statistics_count_what_happened(sesame: Serve, sender: Sender, sink: SinkServer) -> None:
    sent = [
        sender.send("success@simulator.amazonses.com"),
        sender.send("bounce@simulator.amazonses.com"),
        sender.send("complaint@simulator.amazonses.com"),
        sender.send(f"ok@{DEST}", f"gone0@{DEST}", f"full@{DEST}"),
    ]
    assert len(sent) == 4
    received_by(sink, f"ok@{DEST}")
    # Hard bounces: the simulator's bounce@ and the 550 5.1.1; the 552 5.2.2 (mailbox full) is a soft
    # bounce and not counted. The simulator's mail counts here, as it does in DeliveryAttempts.
    want = {"DeliveryAttempts": 6, "Bounces": 2, "Complaints": 1, "Rejects": 0}
    v1 = sesame.client("ses", sender.account)
    eventually(lambda: totals(v1) == want, lambda: totals(v1))
    points = v1.get_send_statistics()["SendDataPoints"]
    assert all(p["Timestamp"].minute % 15 == 0 and p["Timestamp"].second == 0 for p in points)
    # The rates leave the simulator out: 1 hard bounce of the 3 other recipients, no complaint.
    rates = eventually(lambda: (g := gauges(sesame, sender.id)).get(("bounce", "")) and g)
    assert rates[("bounce", "")] == pytest.approx(1 / 3)
    assert rates[("complaint", "")] == 0.0
    # 33% is past the pause threshold, but 3 recipients are under the minimum volume (4): no enforcement.
    account = sender.v2.get_account()
    assert (account["EnforcementStatus"], account["SendingEnabled"]) == ("HEALTHY", True)


def test_auto_pause_and_reinstatement(sesame: Serve, sender: Sender, sink: SinkServer) -> None:
    v1 = sesame.client("ses", sender.account)
    ok = [f"ok{n}@{DEST}" for n in range(4)]
    sender.send(*ok, f"gone1@{DEST}")  # 1 of 5: 20%, under review
    eventually(lambda: sender.v2.get_account()["EnforcementStatus"] == "PROBATION")
    assert sender.v2.get_account()["SendingEnabled"] is True
    sender.send(f"gone2@{DEST}", f"gone3@{DEST}", f"gone4@{DEST}")  # 4 of 8: 50%, paused
    eventually(lambda: sender.v2.get_account()["EnforcementStatus"] == "SHUTDOWN")
    assert sender.v2.get_account()["SendingEnabled"] is False
    assert v1.get_account_sending_enabled()["Enabled"] is False
    assert gauges(sesame, sender.id)[("bounce", "")] == pytest.approx(0.5)
    (shown,) = json.loads(sesame.cli("accounts", "reputation", sender.id))
    assert (shown["EnforcementStatus"], shown["SendingEnabled"]) == ("SHUTDOWN", False)
    assert (shown["Sends"], shown["Bounces"], shown["BounceRate"]) == (8, 4, 0.5)

    with pytest.raises(sender.v2.exceptions.SendingPausedException):
        sender.send(f"ok@{DEST}")
    with pytest.raises(v1.exceptions.AccountSendingPausedException):
        v1.send_email(
            Source=f"me@{sender.domain}",
            Destination={"ToAddresses": [f"ok@{DEST}"]},
            Message={"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "hi"}}},
        )
    # The account cannot lift a pause that enforcement made.
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sender.v2.put_account_sending_attributes(SendingEnabled=True)
    assert refused.value.response["Error"]["Code"] == "BadRequestException"
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        v1.update_account_sending_enabled(Enabled=True)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"

    sesame.cli("accounts", "update", sender.id, "--reinstate")
    account = sender.v2.get_account()
    assert (account["EnforcementStatus"], account["SendingEnabled"]) == ("HEALTHY", True)
    assert gauges(sesame, sender.id)[("bounce", "")] == 0.0  # the rates start afresh
    sender.send(f"after@{DEST}")
    received_by(sink, f"after@{DEST}")
    eventually(lambda: (g := gauges(sesame, sender.id)) and g[("bounce", "")] == 0.0)
    assert sender.v2.get_account()["EnforcementStatus"] == "HEALTHY"


def test_configuration_set_reputation_metrics(sesame: Serve, sender: Sender, sink: SinkServer) -> None:
    v2 = sender.v2
    v2.create_configuration_set(
        ConfigurationSetName="metered", ReputationOptions={"ReputationMetricsEnabled": True}
    )
    v2.create_configuration_set(ConfigurationSetName="plain")
    sender.send(f"ok@{DEST}", f"gone5@{DEST}", ConfigurationSetName="metered")
    sender.send(f"gone6@{DEST}", ConfigurationSetName="plain")
    rates = eventually(lambda: (g := gauges(sesame, sender.id)).get(("bounce", "metered")) and g)
    assert rates[("bounce", "metered")] == pytest.approx(0.5)
    eventually(lambda: gauges(sesame, sender.id).get(("bounce", "")) == pytest.approx(2 / 3))
    assert ("bounce", "plain") not in gauges(sesame, sender.id)  # no reputation metrics for it
    # Pausing and re-enabling a set is its fresh start: its rates begin again, the account's do not.
    v2.put_configuration_set_sending_options(ConfigurationSetName="metered", SendingEnabled=False)
    v2.put_configuration_set_sending_options(ConfigurationSetName="metered", SendingEnabled=True)
    got = v2.get_configuration_set(ConfigurationSetName="metered")["ReputationOptions"]
    assert got["ReputationMetricsEnabled"] is True and "LastFreshStart" in got
    after = gauges(sesame, sender.id)
    assert after[("bounce", "metered")] == 0.0
    assert after[("bounce", "")] == pytest.approx(2 / 3)


def test_rates_leave_out_suppressed_and_verified_recipients(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    v2 = sender.v2
    v2.put_suppressed_destination(EmailAddress=f"listed@{DEST}", Reason="BOUNCE")
    own = f"own{sender.id}.test"  # a domain the account has verified: mail to it is the account's own
    v2.create_email_identity(EmailIdentity=own)
    dns_server.add_zone_lines(sesame.cli("identities", "records", own, "--account", sender.id))
    assert v2.get_email_identity(EmailIdentity=own)["VerificationStatus"] == "SUCCESS"
    mx(dns_server, own, (10, f"mx.{DEST}"))
    sink.reply_for(f"gone@{own}", 550, "5.1.1 No such user here")
    sender.send(f"listed@{DEST}", f"gone@{own}", f"ok@{DEST}", f"gone7@{DEST}")
    # Three hard bounces happened: the suppressed address (OnAccountSuppressionList), gone@ the verified
    # domain, and gone7; GetSendStatistics reports them all.
    v1 = sesame.client("ses", sender.account)
    want = {"DeliveryAttempts": 4, "Bounces": 3, "Complaints": 0, "Rejects": 0}
    eventually(lambda: totals(v1) == want, lambda: totals(v1))
    # The bounce rate counts gone7 only, of the 3 recipients that are not the account's own.
    rates = eventually(
        lambda: (g := gauges(sesame, sender.id)).get(("bounce", "")) and g, lambda: gauges(sesame, sender.id)
    )
    assert rates[("bounce", "")] == pytest.approx(1 / 3)
