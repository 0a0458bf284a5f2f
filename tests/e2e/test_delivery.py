"""The mail really arrives: ``sesame serve`` delivers to sink SMTP servers found through a test DNS server.

Every test domain's MX points at 127.0.0.1, where sinks listen on the port ``delivery.mx_port`` names;
127.0.0.2 listens on nothing (a dead MX). Outcomes are read from the ``events`` table, which event
publishing will later turn into SES's notifications.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import dkim
import pytest

from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess
from sesame.testing.smtp import SinkServer
from tests.conftest import Serve, query
from tests.e2e.servers import serve_env, serving

SIMPLE = {
    "Simple": {"Subject": {"Data": "hello"}, "Body": {"Text": {"Data": "Hello there.\nSecond line.\n"}}}
}


@pytest.fixture(scope="module")
def sink(module_database: str) -> Iterator[SinkServer]:
    with SinkServer("127.0.0.1", tls=True, hostname="mx.sink.test") as server:
        yield server


@pytest.fixture(scope="module")
def plain_sink(module_database: str) -> Iterator[SinkServer]:
    """A sink without STARTTLS, reached through the transport map."""
    with SinkServer("127.0.0.1") as server:
        yield server


@pytest.fixture(scope="module")
def throttling_sink(module_database: str) -> Iterator[SinkServer]:
    """A sink on an address of its own (127.0.0.3), so that slowing down for it slows nothing else."""
    with SinkServer("127.0.0.3") as server:
        yield server


@pytest.fixture(scope="module")
def sesame(
    module_database: str,
    sink: SinkServer,
    plain_sink: SinkServer,
    throttling_sink: SinkServer,
    dns_server: DnsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Serve]:
    env = serve_env(
        dns_server,
        DELIVERY__MX_PORT=str(sink.port),
        DELIVERY__ROUTES=f"plain.test=127.0.0.1:{plain_sink.port},"
        f"throttle.test=127.0.0.3:{throttling_sink.port}",
        DELIVERY__THROTTLE_BACKOFF="2",
        DELIVERY__DEDICATED_IPS="127.0.0.4,127.0.0.5",
        DELIVERY__SITES="slow.test=connections=1;rate=4",
        DELIVERY__RETRY_BASE="0.5",
        DELIVERY__MAX_AGE_SECONDS="8",
        DELIVERY__CONNECT_TIMEOUT="3",
        DELIVERY__HELO_NAME="sesame.test",
    )
    with serving(module_database, tmp_path_factory, "delivery", env) as server:
        yield server


def mx(dns_server: DnsServer, domain: str, *hosts: tuple[int, str]) -> None:
    for preference, host in hosts:
        dns_server.add(domain, "MX", f"{preference} {host}.")


class Sender:
    def __init__(self, sesame: Serve, dns_server: DnsServer, n: int) -> None:
        self.account = sesame.new_account(f"sender{n}")
        self.id = self.account["AccountId"]
        sesame.cli(
            "accounts", "update", self.id, "--production", "--max-send-rate=-1", "--max-24-hour-send=-1"
        )
        self.v2 = sesame.client("sesv2", self.account)
        self.domain = f"from{n}.test"
        self.v2.create_email_identity(EmailIdentity=self.domain)
        self.zone = sesame.cli("identities", "records", self.domain, "--account", self.id)
        dns_server.add_zone_lines(self.zone)
        assert self.v2.get_email_identity(EmailIdentity=self.domain)["VerificationStatus"] == "SUCCESS"

    def send(self, *to: str, content: dict[str, Any] = SIMPLE, **kw: Any) -> str:
        return self.v2.send_email(
            FromEmailAddress=f"me@{self.domain}", Destination={"ToAddresses": list(to)}, Content=content, **kw
        )["MessageId"]


_n = iter(range(1000))


@pytest.fixture
def sender(sesame: Serve, dns_server: DnsServer) -> Sender:
    return Sender(sesame, dns_server, next(_n))


def events(sesame: Serve, message_id: str, want: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The message's delivery outcome records (all but its Send record), once there are ``want``."""
    deadline = time.monotonic() + timeout
    while True:
        rows = query(
            sesame,
            "SELECT event_type, detail FROM events"
            " WHERE message_id = :m AND event_type != 'Send' ORDER BY id",
            m=message_id,
        )
        if len(rows) >= want or time.monotonic() > deadline:
            return [{"type": r["event_type"], **_json(r["detail"])} for r in rows]
        time.sleep(0.1)


def _json(value: Any) -> dict[str, Any]:
    import json

    return json.loads(value) if isinstance(value, str) else value


def write(sesame: Serve, statement: Any, params: dict[str, Any]) -> None:
    """A committed write to the server's own database: for queue states no API makes."""
    import asyncio

    from sesame.storage.db import null_pool_engine

    url = sesame.database or f"sqlite:///{sesame.data_dir / 'sesame.db'}"
    url = url.replace("postgresql://", "postgresql+asyncpg://").replace("sqlite://", "sqlite+aiosqlite://")

    async def go() -> None:
        engine = null_pool_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(statement, params)
        finally:
            await engine.dispose()

    asyncio.run(go())


def enqueue(sesame: Serve, message_id: str, recipient: str) -> None:
    """One more recipient for an accepted message, due now: for addresses intake refuses today but the
    queue may still hold (accepted by an older version)."""
    import sqlalchemy as sa

    from sesame.storage.models import QueueEntry, utcnow

    now = utcnow()
    entry = {"message_id": message_id, "recipient": recipient, "domain": recipient.rpartition("@")[2]}
    write(
        sesame,
        sa.insert(QueueEntry.__table__),  # type: ignore[arg-type]
        {**entry, "state": "queued", "next_attempt_at": now, "attempts": 0, "created_at": now},
    )


def received_by(sink: SinkServer, rcpt: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in sink.messages:
            if rcpt in m.rcpt_tos:
                return m
        time.sleep(0.05)
    raise AssertionError(f"nothing reached {rcpt}")


def test_delivered_byte_exact_and_dkim_signed(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    mx(dns_server, "dest-a.test", (10, "mx.dest-a.test"))
    dns_server.add("mx.dest-a.test", "A", "127.0.0.1")
    message_id = sender.send("alice@dest-a.test", "bob@dest-a.test")
    got = received_by(sink, "alice@dest-a.test")
    assert sorted(got.rcpt_tos) == ["alice@dest-a.test", "bob@dest-a.test"]  # one transaction per domain
    assert got.tls  # opportunistic STARTTLS was used
    assert got.helo == "sesame.test"
    (stored,) = query(sesame, "SELECT body FROM messages WHERE id = :m", m=message_id)
    assert got.data.endswith(bytes(stored["body"]))  # the accepted message, with only headers added in front
    assert got.data.startswith(b"DKIM-Signature:")
    records = {
        line.split()[0].rstrip("."): line.split("\t", 4)[4].strip('"') for line in sender.zone.splitlines()
    }
    assert dkim.verify(got.data, dnsfunc=lambda name, timeout=5: records[name.decode().rstrip(".")].encode())
    sent = query(
        sesame, "SELECT detail FROM events WHERE message_id = :m AND event_type = 'Send'", m=message_id
    )
    assert len(sent) == 1  # written with the message, in the same transaction
    delivered = events(sesame, message_id, want=2)
    assert [e["type"] for e in delivered] == ["Delivery", "Delivery"]
    assert delivered[0]["smtpResponse"].startswith("250")
    assert delivered[0]["remoteMtaIp"] == "127.0.0.1" and delivered[0]["processingTimeMillis"] >= 0


def test_mx_fallback_to_the_next_preference(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    mx(dns_server, "dest-b.test", (10, "dead.dest-b.test"), (20, "live.dest-b.test"))
    dns_server.add("dead.dest-b.test", "A", "127.0.0.2")  # nothing listens there
    dns_server.add("live.dest-b.test", "A", "127.0.0.1")
    message_id = sender.send("carol@dest-b.test")
    received_by(sink, "carol@dest-b.test")
    assert [e["type"] for e in events(sesame, message_id)] == ["Delivery"]


def test_implicit_mx_and_null_mx(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    dns_server.add("implicit.test", "A", "127.0.0.1")  # no MX: the domain itself (RFC 5321 §5.1)
    sender.send("dave@implicit.test")
    received_by(sink, "dave@implicit.test")
    dns_server.add("nomail.test", "MX", "0 .")  # RFC 7505
    message_id = sender.send("erin@nomail.test")
    (bounced,) = events(sesame, message_id)
    assert (bounced["type"], bounced["bounceType"]) == ("Bounce", "Permanent")
    assert bounced["bouncedRecipients"][0]["status"] == "5.1.10"


def test_hard_bounce_is_suppressed(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    dns_server.add("dest-c.test", "A", "127.0.0.1")
    sink.reply_for("gone@dest-c.test", 550, "5.1.1 No such user here")
    message_id = sender.send("gone@dest-c.test")
    (bounced,) = events(sesame, message_id)
    assert (bounced["bounceType"], bounced["bounceSubType"]) == ("Permanent", "General")
    recipient = bounced["bouncedRecipients"][0]
    assert recipient == {"emailAddress": "gone@dest-c.test", "action": "failed", "status": "5.1.1",
                         "diagnosticCode": "smtp; 550 5.1.1 No such user here"}  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the suppression list is written right after the bounce
        try:
            got = sender.v2.get_suppressed_destination(EmailAddress="gone@dest-c.test")
            break
        except sender.v2.exceptions.NotFoundException:
            time.sleep(0.1)
    assert got["SuppressedDestination"]["Reason"] == "BOUNCE"
    assert got["SuppressedDestination"]["Attributes"]["MessageId"] == message_id
    # The next send to it bounces at once, without reaching the server.
    again = sender.send("gone@dest-c.test")
    (suppressed,) = events(sesame, again)
    assert suppressed["bounceSubType"] == "OnAccountSuppressionList"


def test_a_queued_recipient_with_a_line_feed_bounces_and_injects_nothing(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    """Issue 16 item 1: such an address, written as RCPT TO, became commands of its own at a server that
    splits lines on a bare LF. The SMTP client refuses it for that recipient: a permanent bounce."""
    dns_server.add("dest-k.test", "A", "127.0.0.1")
    message_id = sender.send("first@dest-k.test")
    received_by(sink, "first@dest-k.test")
    injected = 'bob+"\nRCPT TO:<evil@evil.test>\nNOOP "@dest-k.test'
    enqueue(sesame, message_id, injected)
    found = events(sesame, message_id, want=2)
    assert [e["type"] for e in found] == ["Delivery", "Bounce"]
    assert found[1]["bounceType"] == "Permanent"
    assert found[1]["bouncedRecipients"][0]["emailAddress"] == injected
    assert found[1]["bouncedRecipients"][0]["status"] == "5.1.3"
    time.sleep(0.5)  # no retry follows
    assert len(events(sesame, message_id, timeout=0)) == 2
    assert [
        m.rcpt_tos for m in sink.messages if any(r.endswith(("dest-k.test", "evil.test")) for r in m.rcpt_tos)
    ] == [["first@dest-k.test"]]


def test_a_recipient_domain_dns_cannot_hold_bounces(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    """Issue 16 item 10: a domain longer than DNS allows raised NameTooLong in routing; the entry waited
    out its lease and was tried again, forever, without an outcome. RFC 1035 §2.3.4 limits."""
    dns_server.add("dest-l.test", "A", "127.0.0.1")
    message_id = sender.send("first@dest-l.test")
    received_by(sink, "first@dest-l.test")
    bad = [
        ".".join(["d" * 63] * 3 + ["d" * 58, "test"]),  # 255 characters: 257 octets in DNS, over 255
        "l" * 64 + ".test",  # a label over 63 octets
        "empty..test",
    ]
    for domain in bad:
        enqueue(sesame, message_id, f"x@{domain}")
    found = events(sesame, message_id, want=4)
    bounced = {e["bouncedRecipients"][0]["emailAddress"]: e for e in found if e["type"] == "Bounce"}
    assert sorted(bounced) == sorted(f"x@{domain}" for domain in bad)
    assert {(b["bounceType"], b["bouncedRecipients"][0]["status"]) for b in bounced.values()} == {
        ("Permanent", "5.1.2")
    }


def test_an_unexpected_error_while_delivering_is_retried_then_bounces(
    sesame: Serve, sender: Sender, dns_server: DnsServer
) -> None:
    """Any exception while delivering one message (here: its sender's stored DKIM key does not decrypt)
    left the entry to wait out its lease and be tried again unchanged, forever. Now it is a failed
    attempt, retried with backoff, and the message bounces after a few."""
    import sqlalchemy as sa

    dns_server.add("dest-m.test", "A", "127.0.0.1")
    write(
        sesame,
        sa.text("UPDATE identities SET dkim_private_key = 'not a token' WHERE identity = :d"),
        {"d": sender.domain},
    )
    message_id = sender.send("someone@dest-m.test")
    found = events(sesame, message_id, want=3)
    assert [(e["type"], e.get("delayType")) for e in found] == [
        ("DeliveryDelay", "InternalFailure"),
        ("DeliveryDelay", "InternalFailure"),
        ("Bounce", None),
    ]
    assert (found[2]["bounceType"], found[2]["bounceSubType"]) == ("Transient", "General")


def test_deferral_then_success(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    dns_server.add("dest-d.test", "A", "127.0.0.1")
    sink.reply_for("busy@dest-d.test", 451, "4.3.2 Try again later")
    message_id = sender.send("busy@dest-d.test")
    (delay,) = events(sesame, message_id)
    assert delay["type"] == "DeliveryDelay" and delay["delayType"] == "RecipientServerError"
    assert delay["delayedRecipients"][0]["status"] == "4.3.2" and "expirationTime" in delay
    sink.reply_for("busy@dest-d.test", 250, "2.1.5 OK")
    received_by(sink, "busy@dest-d.test")
    assert [e["type"] for e in events(sesame, message_id, want=2)][-1] == "Delivery"


def test_deferral_until_max_age_is_a_transient_bounce(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    dns_server.add("dest-e.test", "A", "127.0.0.1")
    sink.reply_for("never@dest-e.test", 452, "4.2.2 Mailbox full")
    message_id = sender.send("never@dest-e.test")
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        found = events(sesame, message_id, timeout=0)
        if found and found[-1]["type"] == "Bounce":
            break
        time.sleep(0.2)
    assert [e["type"] for e in found[:-1]] == ["DeliveryDelay"] * (len(found) - 1) and len(found) >= 2
    assert found[0]["delayType"] == "MailboxFull"
    assert (found[-1]["bounceType"], found[-1]["bounceSubType"]) == ("Transient", "MailboxFull")


def test_tls_required_is_not_sent_in_clear(sesame: Serve, sender: Sender, plain_sink: SinkServer) -> None:
    sender.v2.create_configuration_set(ConfigurationSetName="tls", DeliveryOptions={"TlsPolicy": "REQUIRE"})
    message_id = sender.send("frank@plain.test", ConfigurationSetName="tls")
    (delay,) = events(sesame, message_id)
    assert delay["type"] == "DeliveryDelay"
    assert all("frank@plain.test" not in m.rcpt_tos for m in plain_sink.messages)
    sender.send("grace@plain.test")  # without the set: delivered over the plain connection
    assert received_by(plain_sink, "grace@plain.test").tls is False


def test_connections_are_reused(
    sesame: Serve, sender: Sender, dns_server: DnsServer, sink: SinkServer
) -> None:
    dns_server.add("dest-g.test", "A", "127.0.0.1")
    before = sink.connections
    ids = [sender.send(f"user{i}@dest-g.test") for i in range(30)]
    for i in range(30):
        received_by(sink, f"user{i}@dest-g.test")
    assert all(events(sesame, m)[0]["type"] == "Delivery" for m in ids)
    # 30 messages, sent one by one as the API accepted them, over kept-open connections: never more than
    # the site's limit (delivery.max_connections_per_site, 10), so each carried several messages.
    assert sink.connections - before <= 10
    reused = {m.connection_id for m in sink.messages if m.rcpt_tos[0].endswith("@dest-g.test")}
    assert len(reused) <= 10


def test_throttling_reply_slows_the_site_down(
    sesame: Serve, sender: Sender, throttling_sink: SinkServer
) -> None:
    throttling_sink.reply_for("first@throttle.test", 421, "4.7.0 Too many messages, slow down")
    first = sender.send("first@throttle.test")
    (delay,) = events(sesame, first)
    assert delay["type"] == "DeliveryDelay"
    # While the site is cooling down, other mail to it waits without a connection being made.
    connections = throttling_sink.connections
    second = sender.send("second@throttle.test")
    (waiting,) = events(sesame, second)
    assert waiting["delayType"] == "SendingDeferral"
    assert throttling_sink.connections == connections
    throttling_sink.reply_for("first@throttle.test", 250, "2.0.0 OK")
    received_by(throttling_sink, "second@throttle.test", timeout=20)
    received_by(throttling_sink, "first@throttle.test", timeout=20)


def test_dedicated_ip_pool_is_the_source_address(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    v2 = sender.v2
    assert [ip["Ip"] for ip in v2.get_dedicated_ips()["DedicatedIps"]] == ["127.0.0.4", "127.0.0.5"]
    v2.create_dedicated_ip_pool(PoolName="marketing")
    with pytest.raises(v2.exceptions.AlreadyExistsException):
        v2.create_dedicated_ip_pool(PoolName="marketing")
    v2.put_dedicated_ip_in_pool(Ip="127.0.0.4", DestinationPoolName="marketing")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.put_dedicated_ip_in_pool(Ip="192.0.2.1", DestinationPoolName="marketing")
    v2.put_dedicated_ip_warmup_attributes(Ip="127.0.0.4", WarmupPercentage=40)
    assert v2.get_dedicated_ip(Ip="127.0.0.4")["DedicatedIp"] == {
        "Ip": "127.0.0.4",
        "WarmupStatus": "IN_PROGRESS",
        "WarmupPercentage": 40,
        "PoolName": "marketing",
    }
    assert [ip["Ip"] for ip in v2.get_dedicated_ips(PoolName="marketing")["DedicatedIps"]] == ["127.0.0.4"]
    assert v2.list_dedicated_ip_pools()["DedicatedIpPools"] == ["marketing"]
    v2.create_configuration_set(
        ConfigurationSetName="via-pool", DeliveryOptions={"SendingPoolName": "marketing"}
    )
    dns_server.add("dest-j.test", "A", "127.0.0.1")
    sender.send("pooled@dest-j.test", ConfigurationSetName="via-pool")
    sender.send("default@dest-j.test")
    assert received_by(sink, "pooled@dest-j.test").peer[0] == "127.0.0.4"
    assert received_by(sink, "default@dest-j.test").peer[0] == "127.0.0.1"
    v2.delete_dedicated_ip_pool(PoolName="marketing")
    assert "PoolName" not in v2.get_dedicated_ip(Ip="127.0.0.4")["DedicatedIp"]


def test_per_domain_limits(sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer) -> None:
    """slow.test allows one connection and 4 messages a second (``delivery.sites``)."""
    dns_server.add("slow.test", "A", "127.0.0.1")
    started = time.monotonic()
    for i in range(8):
        sender.send(f"u{i}@slow.test")
    got = [received_by(sink, f"u{i}@slow.test") for i in range(8)]
    assert time.monotonic() - started >= 7 / 4 * 0.9  # paced, not in a burst
    assert len({m.connection_id for m in got}) == 1


def test_mailbox_simulator(sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer) -> None:
    dns_server.add(sender.domain, "A", "127.0.0.1")  # where ooto@'s automatic reply goes
    outcomes = {}
    for local in ("success", "bounce", "complaint", "suppressionlist", "success+label", "ooto"):
        message_id = sender.send(f"{local}@simulator.amazonses.com")
        want = 2 if local == "complaint" else 1
        outcomes[local] = [
            (e["type"], e.get("bounceType"), e.get("bounceSubType")) for e in events(sesame, message_id, want)
        ]
    assert outcomes == {
        "success": [("Delivery", None, None)],
        "success+label": [("Delivery", None, None)],
        "ooto": [("Delivery", None, None)],
        "bounce": [("Bounce", "Permanent", "General")],
        "complaint": [("Delivery", None, None), ("Complaint", None, None)],
        "suppressionlist": [("Bounce", "Permanent", "Suppressed")],
    }
    assert all(
        "simulator.amazonses.com" not in r for m in sink.messages for r in m.rcpt_tos
    )  # never sent out
    # RFC 3834, to the envelope sender (which also gets the bounce and the complaint forwarded).
    deadline = time.monotonic() + 15
    while not (replies := [m for m in sink.messages if m.mail_from == "ooto@simulator.amazonses.com"]):
        assert time.monotonic() < deadline, "no automatic reply"
        time.sleep(0.05)
    assert replies[0].rcpt_tos == [f"me@{sender.domain}"]
    assert b"Auto-Submitted: auto-replied" in replies[0].data
    with pytest.raises(sender.v2.exceptions.NotFoundException):  # simulator bounces are not suppressed
        sender.v2.get_suppressed_destination(EmailAddress="bounce@simulator.amazonses.com")


def test_a_worker_killed_mid_delivery_loses_nothing(database: str, tmp_path: Any) -> None:
    """A process killed while it delivers keeps its lease until the lease expires; then another process
    claims the entry and delivers it."""
    import signal
    import socket

    hole = socket.create_server(("127.0.0.1", 0))  # accepts, never greets: delivery hangs here
    with hole, DnsServer() as dns_server, SinkServer("127.0.0.1") as sink:
        dns_server.add("dest-f.test", "MX", "10 hole.dest-f.test.")
        dns_server.add("hole.dest-f.test", "A", "127.0.0.1")
        env = {
            "SESAME_DNS__NAMESERVERS": dns_server.address,
            "SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0",
            "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024",
            "SESAME_DELIVERY__MX_PORT": str(hole.getsockname()[1]),
            "SESAME_DELIVERY__LEASE_SECONDS": "2",
            "SESAME_DELIVERY__POLL_INTERVAL": "0.2",
            "SESAME_DELIVERY__CONNECT_TIMEOUT": "60",
        }
        data_dir = tmp_path / "data"
        with SesameProcess("serve", data_dir=data_dir, database=database, env=env) as first:
            serve = Serve(first, data_dir, database)
            message_id = Sender(serve, dns_server, 900).send("henry@dest-f.test")
            deadline = time.monotonic() + 10
            while query(serve, "SELECT state FROM queue WHERE message_id = :m", m=message_id)[0]["state"] != (
                "delivering"
            ):
                assert time.monotonic() < deadline, "the first process never started delivering"
                time.sleep(0.05)
            assert first.proc is not None
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(10)
        # The next process reaches the real server (a transport-map entry) once the dead lease expires.
        after = {**env, "SESAME_DELIVERY__ROUTES": f"dest-f.test=127.0.0.1:{sink.port}"}
        with SesameProcess("serve", data_dir=data_dir, database=database, env=after) as second:
            got = received_by(sink, "henry@dest-f.test", timeout=20)
            assert got.rcpt_tos == ["henry@dest-f.test"]
            assert [e["type"] for e in events(Serve(second, data_dir, database), message_id)] == ["Delivery"]
        assert len(sink.messages) == 1


def test_a_delivery_outlasting_its_lease_is_sent_once(database: str, tmp_path: Any) -> None:
    """A server that takes longer to answer the final dot than the queue entry's lease lasts: the
    process delivering renews the lease meanwhile, so that another node started meanwhile (a
    delivery-only one here) finds the entry held and does not send the message a second time."""
    with DnsServer() as dns_server, SinkServer("127.0.0.1", data_delay=8) as slow:
        env = {
            "SESAME_DNS__NAMESERVERS": dns_server.address,
            "SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0",
            "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024",
            "SESAME_DELIVERY__ROUTES": f"slow-server.test=127.0.0.1:{slow.port}",
            "SESAME_DELIVERY__LEASE_SECONDS": "1",
            "SESAME_DELIVERY__POLL_INTERVAL": "0.1",
        }
        data_dir = tmp_path / "data"
        # The first node claims when its own accept wakes it, and never again by polling meanwhile:
        # only its lease renewal keeps the entry from the second node.
        first_env = {**env, "SESAME_DELIVERY__POLL_INTERVAL": "60"}
        with SesameProcess("serve", data_dir=data_dir, database=database, env=first_env) as proc:
            serve = Serve(proc, data_dir, database)
            message_id = Sender(serve, dns_server, 960).send("patient@slow-server.test")
            slow.wait_for(1, 10)  # the first copy: its reply now waits 8 s, the lease lasts 1 s
            delivery_only = ["--roles", "delivery"]
            with SesameProcess("serve", data_dir=data_dir, database=database, env=env, args=delivery_only):
                assert [e["type"] for e in events(serve, message_id)] == ["Delivery"]
        assert [m.rcpt_tos for m in slow.messages] == [["patient@slow-server.test"]]


def queue_cli(sesame: Serve, *args: str) -> str:
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "sesame",
        "queue",
        "--data-dir",
        str(sesame.data_dir),
        "--url",
        sesame.endpoint,
    ]
    if sesame.database:
        cmd += ["--database", sesame.database]
    done = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_sesame_queue(sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer) -> None:
    import json

    import httpx

    dns_server.add("dest-h.test", "A", "127.0.0.1")
    sink.reply_for("later@dest-h.test", 451, "4.3.0 Not now")
    message_id = sender.send("later@dest-h.test")
    events(sesame, message_id)  # the first deferral
    summary = [line.split()[1:] for line in queue_cli(sesame).splitlines()]
    assert ["deferred", "dest-h.test"] in summary or ["delivering", "dest-h.test"] in summary
    shown = json.loads(queue_cli(sesame, "show", message_id))
    (rcpt,) = shown["Recipients"]
    assert rcpt["Recipient"] == "later@dest-h.test"
    assert rcpt["State"] in ("deferred", "delivering")  # retried every half second here
    assert rcpt["LastReply"] == "smtp; 451 4.3.0 Not now" and rcpt["Attempts"] >= 1
    assert [e["Type"] for e in shown["Events"]][:2] == ["Send", "DeliveryDelay"]
    deadline = time.monotonic() + 10
    while json.loads(queue_cli(sesame, "bounce", message_id))["Bounced"] == 0:  # not while mid-attempt
        assert time.monotonic() < deadline
        time.sleep(0.1)
    bounced = [e for e in events(sesame, message_id, want=2) if e["type"] == "Bounce"]
    assert bounced and bounced[0]["bouncedRecipients"][0]["emailAddress"] == "later@dest-h.test"
    assert json.loads(queue_cli(sesame, "delete", message_id)) == {"Deleted": True}
    answer = httpx.get(
        f"{sesame.endpoint}/_sesame/admin/queue/{message_id}", headers={"Authorization": "Bearer x"}
    )
    assert answer.status_code == 401  # the admin API wants the server's token


@pytest.mark.parametrize("password", ["s3cret", "wrong"])
def test_smarthost_with_auth_and_starttls(database: str, tmp_path: Any, password: str) -> None:
    with DnsServer() as dns_server, SinkServer("127.0.0.1", tls=True, auth={"relayuser": "s3cret"}) as relay:
        env = {
            "SESAME_DNS__NAMESERVERS": dns_server.address,
            "SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0",
            "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024",
            "SESAME_DELIVERY__SMARTHOST": f"127.0.0.1:{relay.port}",
            "SESAME_DELIVERY__SMARTHOST_USERNAME": "relayuser",
            "SESAME_DELIVERY__SMARTHOST_PASSWORD": password,
            "SESAME_DELIVERY__SMARTHOST_TLS": "starttls",
            "SESAME_DELIVERY__POLL_INTERVAL": "0.2",
        }
        data_dir = tmp_path / "data"
        with SesameProcess("serve", data_dir=data_dir, database=database, env=env) as proc:
            serve = Serve(proc, data_dir, database)
            message_id = Sender(serve, dns_server, 950).send("anyone@elsewhere.test")  # no DNS needed
            if password == "s3cret":
                got = received_by(relay, "anyone@elsewhere.test")
                assert got.tls and relay.logins == ["relayuser"]
            else:  # refused credentials: the message waits, nothing is sent
                (delay,) = events(serve, message_id)
                assert (
                    delay["type"] == "DeliveryDelay"
                    and "AUTH failed" in delay["delayedRecipients"][0]["diagnosticCode"]
                )
                assert relay.messages == []
