"""Every SES send operation over boto3 against ``sesame serve``, with SES's checks and errors.

Identities are verified for real: each test domain's records are published on a DNS server on
loopback, which the server under test resolves through.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess
from tests.conftest import Serve, query

MESSAGE_ID = re.compile(
    r"^01[0-9a-f]{14}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-000000$"
)


@pytest.fixture(scope="module")
def sesame(
    module_database: str, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    data_dir = tmp_path_factory.mktemp("sending")
    env = {
        "SESAME_DNS__NAMESERVERS": dns_server.address,
        "SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0",
        "SESAME_DELIVERY__ENABLED": "false",  # these tests look at the queue; delivery has its own
        "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024",
    }
    with SesameProcess("serve", data_dir=data_dir, database=module_database, env=env) as proc:
        yield Serve(proc, data_dir, module_database)


class Sender:
    """An account with a verified domain, and clients for it."""

    def __init__(self, sesame: Serve, dns_server: DnsServer, name: str, domain: str) -> None:
        self.sesame = sesame
        self.account = sesame.new_account(name)
        self.id = self.account["AccountId"]
        self.v1 = sesame.client("ses", self.account)
        self.v2 = sesame.client("sesv2", self.account)
        self.domain = domain
        self.verify(domain, dns_server)

    def verify(self, domain: str, dns_server: DnsServer) -> None:
        self.v2.create_email_identity(EmailIdentity=domain)
        dns_server.add_zone_lines(self.sesame.cli("identities", "records", domain, "--account", self.id))
        assert self.v2.get_email_identity(EmailIdentity=domain)["VerificationStatus"] == "SUCCESS"

    def production(self, **limits: str) -> None:
        """Out of the sandbox, unlimited unless ``limits`` say otherwise."""
        limits = {"max_send_rate": "-1", "max_24_hour_send": "-1", **limits}
        args = [f"--{k.replace('_', '-')}={v}" for k, v in limits.items()]
        self.sesame.cli("accounts", "update", self.id, "--production", *args)


_counter = iter(range(10_000))


@pytest.fixture
def sender(sesame: Serve, dns_server: DnsServer) -> Sender:
    n = next(_counter)
    return Sender(sesame, dns_server, f"sender{n}", f"send{n}.test")


def code(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def stored(sesame: Serve, message_id: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The message row and its queue entries (the delivery engine's view; no API shows the queue yet)."""
    (msg,) = query(sesame, "SELECT * FROM messages WHERE id = :id", id=message_id)
    rows = query(
        sesame, "SELECT recipient, state FROM queue WHERE message_id = :id ORDER BY id", id=message_id
    )
    return msg, [(r["recipient"], r["state"]) for r in rows]


# ------------------------------------------------------------------------------------------ sends


def test_v1_send_email_is_stored_and_queued(sesame: Serve, sender: Sender) -> None:
    sender.production()
    out = sender.v1.send_email(
        Source=f"Café Ünicode <news@{sender.domain}>",
        Destination={
            "ToAddresses": ["a@example.net"],
            "CcAddresses": ["b@example.net"],
            "BccAddresses": ["c@example.net"],
        },
        Message={
            "Subject": {"Data": "Grüße aus Köln"},
            "Body": {"Text": {"Data": "hello\n"}, "Html": {"Data": "<b>hi</b>"}},
        },
        ReplyToAddresses=["reply@example.net"],
        Tags=[{"Name": "campaign", "Value": "spring-2026"}],
    )
    assert MESSAGE_ID.match(out["MessageId"])
    msg, entries = stored(sesame, out["MessageId"])
    assert entries == [("a@example.net", "queued"), ("b@example.net", "queued"), ("c@example.net", "queued")]
    assert msg["status"] == "queued" and msg["from_address"] == f"news@{sender.domain}"
    parsed = email.message_from_bytes(bytes(msg["body"]), policy=email.policy.default)
    assert str(parsed["Subject"]) == "Grüße aus Köln"
    assert parsed["From"].addresses[0].display_name == "Café Ünicode"
    assert "Bcc" not in parsed and parsed["Reply-To"] == "reply@example.net"
    assert parsed["Message-ID"] == f"<{out['MessageId']}@email.amazonses.com>"
    assert parsed.get_content_type() == "multipart/alternative"
    quota = sender.v1.get_send_quota()
    assert quota["SentLast24Hours"] == 3.0
    assert sender.v2.get_account()["SendQuota"]["SentLast24Hours"] == 3.0
    points = sender.v1.get_send_statistics()["SendDataPoints"]
    assert sum(p["DeliveryAttempts"] for p in points) == 3


def test_unverified_sender_is_rejected(sender: Sender) -> None:
    with pytest.raises(ClientError) as err:
        sender.v1.send_email(
            Source="someone@unverified.test",
            Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        )
    assert code(err) == (
        "MessageRejected",
        "Email address is not verified. The following identities failed the check in region US-EAST-1: "
        "someone@unverified.test",
    )
    with pytest.raises(sender.v2.exceptions.MessageRejected):
        sender.v2.send_email(
            FromEmailAddress="x@other-unverified.test",
            Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
        )
    # SES names the source as the request gave it, display name and all.
    with pytest.raises(sender.v2.exceptions.MessageRejected) as named:
        sender.v2.send_email(
            FromEmailAddress="John Smith <foobar@example.com>",
            Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
        )
    assert named.value.response["Error"]["Message"] == (
        "Email address is not verified. The following identities failed the check in region US-EAST-1: "
        "John Smith <foobar@example.com>"
    )


def test_sandbox_allows_only_verified_and_simulator_recipients(sender: Sender, dns_server: DnsServer) -> None:
    simple = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}
    ok = sender.v2.send_email(
        FromEmailAddress=f"me+tag@{sender.domain}",  # a +label needs no identity of its own
        Destination={"ToAddresses": ["success@simulator.amazonses.com", f"colleague@{sender.domain}"]},
        Content=simple,
    )
    assert MESSAGE_ID.match(ok["MessageId"])
    with pytest.raises(sender.v2.exceptions.MessageRejected) as err:
        sender.v2.send_email(
            FromEmailAddress=f"me@{sender.domain}",
            Destination={"ToAddresses": ["stranger@example.org"]},
            Content=simple,
        )
    assert "stranger@example.org" in code(err)[1]
    sender.production()
    sender.v2.send_email(
        FromEmailAddress=f"me@{sender.domain}",
        Destination={"ToAddresses": ["stranger@example.org"]},
        Content=simple,
    )


def test_recipient_count_and_size_limits(sender: Sender) -> None:
    sender.production()
    too_many = [f"r{i}@example.org" for i in range(51)]
    with pytest.raises(ClientError) as err:
        sender.v1.send_email(
            Source=f"me@{sender.domain}",
            Destination={"ToAddresses": too_many},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        )
    assert code(err) == ("InvalidParameterValue", "Recipient count exceeds 50.")
    with pytest.raises(sender.v2.exceptions.BadRequestException):
        sender.v2.send_email(
            FromEmailAddress=f"me@{sender.domain}",
            Destination={"ToAddresses": too_many},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
        )
    big = b"From: me@" + sender.domain.encode() + b"\r\nTo: a@example.org\r\nSubject: big\r\n\r\n"
    big += b"x" * (8 * 1024 * 1024)  # 8 MB is 10.7 MB in base64: over v1's 10 MB
    with pytest.raises(ClientError) as err:
        sender.v1.send_raw_email(RawMessage={"Data": big})
    assert code(err)[0] == "MessageRejected" and "Message length is more than" in code(err)[1]


def test_attachments_and_unsupported_extension(sesame: Serve, sender: Sender) -> None:
    sender.production()
    simple: dict[str, Any] = {
        "Subject": {"Data": "report"},
        "Body": {"Text": {"Data": "see attached"}},
        "Headers": [{"Name": "X-Campaign", "Value": "q3"}],
        "Attachments": [{"RawContent": b"%PDF-1.4 binary\x00\xff", "FileName": "report.pdf"}],
    }
    out = sender.v2.send_email(
        FromEmailAddress=f"me@{sender.domain}",
        Destination={"ToAddresses": ["a@example.org"]},
        Content={"Simple": simple},
    )
    msg, _ = stored(sesame, out["MessageId"])
    parsed = email.message_from_bytes(bytes(msg["body"]), policy=email.policy.default)
    assert parsed["X-Campaign"] == "q3"
    attachment = next(parsed.iter_attachments())
    assert attachment.get_filename() == "report.pdf"
    assert attachment.get_content() == b"%PDF-1.4 binary\x00\xff"
    simple["Attachments"] = [{"RawContent": b"MZ", "FileName": "setup.EXE"}]
    with pytest.raises(sender.v2.exceptions.MessageRejected):
        sender.v2.send_email(
            FromEmailAddress=f"me@{sender.domain}",
            Destination={"ToAddresses": ["a@example.org"]},
            Content={"Simple": simple},
        )


def test_raw_email_keeps_the_body_and_drops_ses_headers(sesame: Serve, sender: Sender) -> None:
    sender.production()
    body = b"line one\r\n\xe9t\xe9 8-bit line\r\n"
    raw = (
        f"From: Me <me@{sender.domain}>\r\nTo: a@example.org\r\nBcc: hidden@example.org\r\n"
        "X-SES-CONFIGURATION-SET: my-set\r\nX-SES-MESSAGE-TAGS: team=mail,\r\n env=prod\r\n"
        "Message-ID: <mine@client.example>\r\nSubject: raw\r\nContent-Type: text/plain; charset=latin-1\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body
    with pytest.raises(sender.v1.exceptions.ConfigurationSetDoesNotExistException):
        sender.v1.send_raw_email(RawMessage={"Data": raw})
    sender.v2.create_configuration_set(ConfigurationSetName="my-set")
    out = sender.v1.send_raw_email(RawMessage={"Data": raw})
    msg, entries = stored(sesame, out["MessageId"])
    data = bytes(msg["body"])
    assert data.endswith(b"\r\n\r\n" + body)
    assert b"X-SES-" not in data and b"hidden@example.org" not in data
    assert f"Message-ID: <{out['MessageId']}@email.amazonses.com>".encode() in data
    assert [r for r, _ in entries] == ["a@example.org", "hidden@example.org"]  # Bcc still receives it
    assert msg["configuration_set"] == "my-set"
    tags = msg["tags"] if isinstance(msg["tags"], dict) else json.loads(msg["tags"])
    assert tags == {"team": "mail", "env": "prod"}
    out = sender.v2.send_email(
        Destination={"ToAddresses": ["only-this@example.org"]}, Content={"Raw": {"Data": raw}}
    )
    assert [r for r, _ in stored(sesame, out["MessageId"])[1]] == ["only-this@example.org"]


def _raw_from(domain: str, *fields: str) -> bytes:
    head = "".join(f"{f}\r\n" for f in fields)
    return f"{head}To: friend@{domain}\r\nSubject: hello\r\n\r\nbody\r\n".encode()


def test_raw_from_spoofing_is_refused(sesame: Serve, sender: Sender) -> None:
    """Every mailbox a raw message claims to be from is checked, however its From field is spelled."""
    me, d = f"me@{sender.domain}", sender.domain
    unverified = [
        ["From : CEO <ceo@bank.test>"],  # blanks before the colon: still a From field (RFC 5322 §4.5)
        ["X-Mailer: x", "FROM\t: CEO <ceo@bank.test>"],
        [f"From: {me}, CEO <ceo@bank.test>", f"Sender: {me}"],
        [f"From: {me}", "Sender: CEO <ceo@bank.test>"],
    ]
    for fields in unverified:
        raw = _raw_from(d, *fields)
        with pytest.raises(ClientError) as err:
            sender.v1.send_raw_email(Source=me, RawMessage={"Data": raw})
        assert code(err) == (
            "MessageRejected",
            "Email address is not verified. The following identities failed the check in region "
            "US-EAST-1: ceo@bank.test",
        ), fields
        with pytest.raises(sender.v2.exceptions.MessageRejected):
            sender.v2.send_email(FromEmailAddress=me, Content={"Raw": {"Data": raw}})
    malformed = [
        [f"From: {me}", "From : CEO <ceo@bank.test>"],  # RFC 5322 §3.6: exactly one From field
        [f"From: {me}, CEO <ceo@bank.test"],
        [f"From: {me}, undisclosed:;"],
        [f"From: {me}", f"Sender: {me}, other@{d}"],
    ]
    for fields in malformed:
        raw = _raw_from(d, *fields)
        with pytest.raises(ClientError) as err:
            sender.v1.send_raw_email(Source=me, RawMessage={"Data": raw})
        assert code(err)[0] == "InvalidParameterValue", fields
        with pytest.raises(sender.v2.exceptions.BadRequestException):
            sender.v2.send_email(FromEmailAddress=me, Content={"Raw": {"Data": raw}})
    assert query(sesame, "SELECT id FROM messages WHERE account_id = :a", a=sender.id) == []
    # Several From mailboxes, all covered, with a Sender: fine.
    raw = _raw_from(d, f'From: "Me, Myself" <{me}>, other@{d}', f"Sender : {me}")
    out = sender.v1.send_raw_email(RawMessage={"Data": raw})
    msg, entries = stored(sesame, out["MessageId"])
    assert msg["from_address"] == me and entries == [(f"friend@{d}", "queued")]


def test_a_bulk_send_past_the_daily_quota_refuses_its_last_destinations(sender: Sender) -> None:
    """A bulk call's destinations are accepted in order until the quota runs out, then refused one by
    one; the accepted ones are queued (their MessageIds are real)."""
    sender.production(max_send_rate="100", max_24_hour_send="3")
    sender.v2.create_email_template(TemplateName="q", TemplateContent={"Subject": "s {{n}}", "Text": "b"})
    results = sender.v2.send_bulk_email(
        FromEmailAddress=f"me@{sender.domain}",
        DefaultContent={"Template": {"TemplateName": "q", "TemplateData": '{"n": 1}'}},
        BulkEmailEntries=[{"Destination": {"ToAddresses": [f"r{i}@example.org"]}} for i in range(5)],
    )["BulkEmailEntryResults"]
    assert [r["Status"] for r in results] == ["SUCCESS"] * 3 + ["ACCOUNT_DAILY_QUOTA_EXCEEDED"] * 2
    queued = [stored(sender.sesame, r["MessageId"])[1] for r in results[:3]]
    assert queued == [[(f"r{i}@example.org", "queued")] for i in range(3)]
    sender.production(max_send_rate="100", max_24_hour_send="5")
    v1 = sender.v1.send_bulk_templated_email(
        Source=f"me@{sender.domain}",
        Template="q",
        DefaultTemplateData='{"n": 2}',
        Destinations=[{"Destination": {"ToAddresses": [f"v{i}@example.org"]}} for i in range(4)],
    )["Status"]
    assert [s["Status"] for s in v1] == ["Success"] * 2 + ["AccountDailyQuotaExceeded"] * 2


def test_quotas_rate_and_daily(sender: Sender) -> None:
    sender.production(max_send_rate="1", max_24_hour_send="3")
    simple = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}

    def send(to: str) -> None:
        sender.v2.send_email(
            FromEmailAddress=f"me@{sender.domain}", Destination={"ToAddresses": [to]}, Content=simple
        )

    throttled = None
    for i in range(5):  # within one second, the second recipient exceeds 1 per second
        try:
            send(f"rate{i}@simulator.amazonses.com")
        except sender.v2.exceptions.TooManyRequestsException as exc:
            throttled = exc
            break
    assert throttled is not None and "Maximum sending rate exceeded." in str(throttled)
    with pytest.raises(ClientError) as err:  # v1 names it Throttling
        for i in range(5):
            sender.v1.send_email(
                Source=f"me@{sender.domain}",
                Destination={"ToAddresses": [f"v1rate{i}@simulator.amazonses.com"]},
                Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
            )
    assert code(err) == ("Throttling", "Maximum sending rate exceeded.")
    # Simulator recipients do not count against the 24-hour quota; real ones do, per recipient.
    assert sender.v1.get_send_quota()["SentLast24Hours"] == 0.0
    sender.production(max_send_rate="100", max_24_hour_send="3")
    sender.v2.send_email(
        FromEmailAddress=f"me@{sender.domain}",
        Destination={"ToAddresses": ["a@example.org", "b@example.org", "c@example.org"]},
        Content=simple,
    )
    with pytest.raises(sender.v2.exceptions.LimitExceededException, match="Daily message quota exceeded."):
        send("d@example.org")
    with pytest.raises(ClientError) as err:
        sender.v1.send_email(
            Source=f"me@{sender.domain}",
            Destination={"ToAddresses": ["e@example.org"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        )
    assert code(err) == ("Throttling", "Daily message quota exceeded.")
    assert sender.v1.get_send_quota()["SentLast24Hours"] == 3.0


def test_paused_account(sender: Sender) -> None:
    sender.v1.update_account_sending_enabled(Enabled=False)
    with pytest.raises(sender.v1.exceptions.AccountSendingPausedException):
        sender.v1.send_email(
            Source=f"me@{sender.domain}",
            Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        )
    with pytest.raises(sender.v2.exceptions.SendingPausedException):
        sender.v2.send_email(
            FromEmailAddress=f"me@{sender.domain}",
            Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
        )


def test_suppression_list_and_enforcement(sesame: Serve, sender: Sender) -> None:
    sender.production()
    v2 = sender.v2
    v2.put_suppressed_destination(EmailAddress="Gone@Example.org", Reason="BOUNCE")
    v2.put_suppressed_destination(EmailAddress="angry@example.org", Reason="COMPLAINT")
    got = v2.get_suppressed_destination(EmailAddress="gone@example.org")["SuppressedDestination"]
    assert (got["EmailAddress"], got["Reason"]) == ("gone@example.org", "BOUNCE")
    listed = v2.list_suppressed_destinations(Reasons=["COMPLAINT"])["SuppressedDestinationSummaries"]
    assert [d["EmailAddress"] for d in listed] == ["angry@example.org"]
    page = v2.list_suppressed_destinations(PageSize=1)
    rest = v2.list_suppressed_destinations(PageSize=1, NextToken=page["NextToken"])
    assert len(page["SuppressedDestinationSummaries"]) == len(rest["SuppressedDestinationSummaries"]) == 1
    future = v2.list_suppressed_destinations(StartDate=time.time() + 3600)["SuppressedDestinationSummaries"]
    assert future == []
    out = v2.send_email(
        FromEmailAddress=f"me@{sender.domain}",
        Destination={"ToAddresses": ["gone@example.org", "fine@example.org"]},
        Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
    )
    assert stored(sesame, out["MessageId"])[1] == [
        ("gone@example.org", "suppressed"),
        ("fine@example.org", "queued"),
    ]
    # An account that suppresses only complaints sends to the bounced address again.
    v2.put_account_suppression_attributes(SuppressedReasons=["COMPLAINT"])
    out = v2.send_email(
        FromEmailAddress=f"me@{sender.domain}",
        Destination={"ToAddresses": ["gone@example.org"]},
        Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
    )
    assert stored(sesame, out["MessageId"])[1] == [("gone@example.org", "queued")]
    v2.delete_suppressed_destination(EmailAddress="gone@example.org")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_suppressed_destination(EmailAddress="gone@example.org")


# -------------------------------------------------------------------------------------- templates


def test_templates_v1_and_v2(sender: Sender) -> None:
    v1, v2 = sender.v1, sender.v2
    v1.create_template(
        Template={
            "TemplateName": "welcome",
            "SubjectPart": "Hi {{name}}",
            "TextPart": "Dear {{name}},\n{{#each items}}- {{this}}\n{{/each}}",
            "HtmlPart": "<p>{{name}} & co</p>",
        }  # fmt: skip
    )
    with pytest.raises(v1.exceptions.AlreadyExistsException):
        v1.create_template(Template={"TemplateName": "welcome", "SubjectPart": "x", "TextPart": "y"})
    with pytest.raises(v1.exceptions.InvalidTemplateException):
        v1.create_template(
            Template={"TemplateName": "broken", "SubjectPart": "x", "TextPart": "{{#if a}}never closed"}
        )
    got = v2.get_email_template(TemplateName="welcome")
    assert got["TemplateContent"]["Subject"] == "Hi {{name}}"  # one namespace for both APIs
    rendered = v1.test_render_template(
        TemplateName="welcome", TemplateData=json.dumps({"name": "Ann <A>", "items": ["x", "y"]})
    )
    parsed = email.message_from_string(rendered["RenderedTemplate"], policy=email.policy.default)
    assert str(parsed["Subject"]) == "Hi Ann <A>"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and text.get_content().replace("\r\n", "\n") == "Dear Ann <A>,\n- x\n- y\n"
    assert html is not None and html.get_content().strip() == "<p>Ann <A> & co</p>"  # SES does not escape
    with pytest.raises(v1.exceptions.MissingRenderingAttributeException):
        v1.test_render_template(TemplateName="welcome", TemplateData="{}")
    with pytest.raises(v1.exceptions.InvalidRenderingParameterException):
        v1.test_render_template(TemplateName="welcome", TemplateData="not json")
    v2.update_email_template(TemplateName="welcome", TemplateContent={"Subject": "Yo {{name}}", "Text": "t"})
    assert v1.get_template(TemplateName="welcome")["Template"] == {
        "TemplateName": "welcome", "SubjectPart": "Yo {{name}}", "TextPart": "t"}  # fmt: skip
    v2.create_email_template(TemplateName="second", TemplateContent={"Subject": "s", "Html": "<b>h</b>"})
    assert [t["Name"] for t in v1.list_templates()["TemplatesMetadata"]] == ["second", "welcome"]
    first = v2.list_email_templates(PageSize=1)
    assert [t["TemplateName"] for t in first["TemplatesMetadata"]] == ["second"]
    assert [
        t["TemplateName"] for t in v2.list_email_templates(NextToken=first["NextToken"])["TemplatesMetadata"]
    ] == ["welcome"]
    assert (
        "Yo Bo"
        in v2.test_render_email_template(TemplateName="welcome", TemplateData='{"name": "Bo"}')[
            "RenderedTemplate"
        ]
    )
    v1.delete_template(TemplateName="second")
    v1.delete_template(TemplateName="second")  # v1: deleting nothing is fine
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.delete_email_template(TemplateName="second")
    with pytest.raises(v1.exceptions.TemplateDoesNotExistException):
        v1.get_template(TemplateName="second")


def test_templated_sends(sesame: Serve, sender: Sender) -> None:
    sender.production()
    v1, v2 = sender.v1, sender.v2
    v2.create_email_template(
        TemplateName="t", TemplateContent={"Subject": "Hello {{name}}", "Text": "Hi {{name}}"}
    )
    out = v1.send_templated_email(
        Source=f"me@{sender.domain}",
        Destination={"ToAddresses": ["a@example.org"]},
        Template="t",
        TemplateData='{"name": "Ann"}',
    )
    msg, entries = stored(sesame, out["MessageId"])
    parsed = email.message_from_bytes(bytes(msg["body"]), policy=email.policy.default)
    assert str(parsed["Subject"]) == "Hello Ann" and entries == [("a@example.org", "queued")]
    # A missing attribute: accepted (a MessageId) but never sent, recorded as a rendering failure.
    out = v1.send_templated_email(
        Source=f"me@{sender.domain}",
        Destination={"ToAddresses": ["a@example.org"]},
        Template="t",
        TemplateData="{}",
    )
    msg, entries = stored(sesame, out["MessageId"])
    assert msg["status"] == "rendering-failure" and entries == []
    (failure,) = query(
        sesame, "SELECT event_type, detail FROM events WHERE message_id = :m", m=out["MessageId"]
    )
    detail = json.loads(failure["detail"]) if isinstance(failure["detail"], str) else failure["detail"]
    assert failure["event_type"] == "RenderingFailure"
    assert detail == {
        "errorMessage": "Attribute 'name' is not present in the rendering data.",
        "templateName": "t",
    }
    with pytest.raises(v1.exceptions.TemplateDoesNotExistException):
        v1.send_templated_email(
            Source=f"me@{sender.domain}",
            Destination={"ToAddresses": ["a@example.org"]},
            Template="nope",
            TemplateData="{}",
        )
    bulk = v1.send_bulk_templated_email(
        Source=f"me@{sender.domain}",
        Template="t",
        DefaultTemplateData='{"name": "friend"}',
        Destinations=[
            {"Destination": {"ToAddresses": ["x@example.org"]}, "ReplacementTemplateData": '{"name": "Xi"}'},
            {"Destination": {"ToAddresses": ["y@example.org"]}},
            {"Destination": {"ToAddresses": ["not an address"]}},
        ],
    )["Status"]
    assert [s["Status"] for s in bulk] == ["Success", "Success", "InvalidParameterValue"]
    subjects = [
        str(
            email.message_from_bytes(
                bytes(stored(sesame, s["MessageId"])[0]["body"]), policy=email.policy.default
            )["Subject"]
        )
        for s in bulk[:2]
    ]
    assert subjects == ["Hello Xi", "Hello friend"]
    results = v2.send_bulk_email(
        FromEmailAddress=f"me@{sender.domain}",
        DefaultContent={"Template": {"TemplateName": "t", "TemplateData": '{"name": "all"}'}},
        BulkEmailEntries=[
            {
                "Destination": {"ToAddresses": ["p@example.org"]},
                "ReplacementEmailContent": {
                    "ReplacementTemplate": {"ReplacementTemplateData": '{"name": "P"}'}
                },
            },
            {"Destination": {"ToAddresses": ["q@example.org"]}},
        ],  # fmt: skip
    )["BulkEmailEntryResults"]
    assert [r["Status"] for r in results] == ["SUCCESS", "SUCCESS"]
    inline = v2.send_email(
        FromEmailAddress=f"me@{sender.domain}",
        Destination={"ToAddresses": ["i@example.org"]},
        Content={
            "Template": {
                "TemplateContent": {"Subject": "Inline {{n}}", "Text": "x"},
                "TemplateData": '{"n": 1}',
            }
        },
    )
    parsed = email.message_from_bytes(
        bytes(stored(sesame, inline["MessageId"])[0]["body"]), policy=email.policy.default
    )
    assert str(parsed["Subject"]) == "Inline 1"


def test_sending_authorization(sesame: Serve, sender: Sender, dns_server: DnsServer) -> None:
    sender.production()
    delegate = Sender(sesame, dns_server, "delegate", f"delegate-{sender.domain}")
    delegate.production()
    arn = f"arn:aws:ses:us-east-1:{sender.id}:identity/{sender.domain}"
    simple = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}
    with pytest.raises(delegate.v2.exceptions.MessageRejected):
        delegate.v2.send_email(
            FromEmailAddress=f"billing@{sender.domain}",
            FromEmailAddressIdentityArn=arn,
            Destination={"ToAddresses": ["a@example.org"]},
            Content=simple,
        )
    statement = {"Effect": "Allow", "Resource": arn, "Principal": {"AWS": [delegate.id]}}
    policy = {
        "Version": "2012-10-17",
        "Statement": [{**statement, "Action": ["ses:SendEmail", "ses:SendRawEmail"]}],
    }
    sender.v2.create_email_identity_policy(
        EmailIdentity=sender.domain, PolicyName="delegate", Policy=json.dumps(policy)
    )
    out = delegate.v2.send_email(
        FromEmailAddress=f"billing@{sender.domain}",
        FromEmailAddressIdentityArn=arn,
        Destination={"ToAddresses": ["a@example.org"]},
        Content=simple,
    )
    assert stored(sesame, out["MessageId"])[0]["account_id"] == delegate.id
    out = delegate.v1.send_email(
        Source=f"billing@{sender.domain}", SourceArn=arn, Destination={"ToAddresses": ["a@example.org"]},
        Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
    )  # fmt: skip
    assert MESSAGE_ID.match(out["MessageId"])


def test_sending_authorization_matches_the_identity_arn_exactly(
    sesame: Serve, sender: Sender, dns_server: DnsServer
) -> None:
    owner = sender
    delegate = Sender(sesame, dns_server, f"delegate{next(_counter)}", f"delegate-{owner.domain}")
    arn = f"arn:aws:ses:us-east-1:{owner.id}:identity/{owner.domain}"

    def send(**kw: Any) -> Any:
        return delegate.v2.send_email(
            FromEmailAddress=f"billing@{owner.domain}",
            FromEmailAddressIdentityArn=arn,
            Destination={"ToAddresses": [f"a@{delegate.domain}"]},  # the delegate is in the sandbox
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
            **kw,
        )

    def policy(*statements: dict[str, Any]) -> None:
        owner.v1.put_identity_policy(
            Identity=owner.domain,
            PolicyName="delegate",
            Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
        )

    allow = {"Effect": "Allow", "Principal": {"AWS": delegate.id}, "Action": "ses:SendEmail", "Resource": arn}
    for resource in (
        arn.replace("us-east-1", "eu-west-1"),  # the same identity in another region
        arn.replace(owner.id, delegate.id),  # another account's identity of that name
        f"arn:aws:ses:us-east-1:{owner.id}:identity/mail.{owner.domain}",
    ):
        policy({**allow, "Resource": resource})
        with pytest.raises(delegate.v2.exceptions.MessageRejected):
            send()
    policy({**allow, "Action": "ses:SendTemplatedEmail"})  # another action
    with pytest.raises(delegate.v2.exceptions.MessageRejected):
        send()
    policy({**allow, "Resource": f"arn:aws:ses:*:{owner.id}:identity/*"})
    assert MESSAGE_ID.match(send()["MessageId"])
    policy(allow, {**allow, "Effect": "Deny", "Principal": "*", "Resource": "*"})
    with pytest.raises(delegate.v2.exceptions.MessageRejected):
        send()


def test_bad_tags(sender: Sender) -> None:
    with pytest.raises(ClientError) as err:
        sender.v1.send_email(
            Source=f"me@{sender.domain}",
            Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
            Tags=[{"Name": "bad name", "Value": "v"}],
        )
    assert code(err) == (
        "InvalidParameterValue",
        "Invalid tag name <bad name>: only alphanumeric ASCII characters, '_',  '-' are allowed.",
    )


# ------------------------------------------------------------------------------------ addresses


def _bad_addresses(domain: str) -> list[str]:
    """Addresses no SMTP envelope may carry; the first is issue 16's command injection, which passes the
    sandbox because its +label reduces it to an address of the verified domain."""
    return [
        f'me+"\nRCPT TO:<evil@evil.test>\nNOOP\nNOOP "@{domain}',
        '"x\nDATA"@a.test',
        f"me\x00@{domain}",
        f'"me>"@{domain}',
        "a" * 65 + f"@{domain}",
        "me@" + ".".join(["b" * 63] * 4) + ".test",
        "me@[127.0.0.1]",
        f"me@-{domain}",
    ]


def test_envelope_addresses_must_be_rfc5321_mailboxes(sesame: Serve, sender: Sender) -> None:
    """Every parameter that becomes MAIL FROM or RCPT TO, on both APIs, refuses what is not a mailbox
    with SES's error (400), before anything is stored."""
    me = f"me@{sender.domain}"
    v1_body = {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}
    v2_simple = {"Simple": v1_body}
    raw = f"From: {me}\r\nTo: friend@{sender.domain}\r\nSubject: s\r\n\r\nbody\r\n".encode()
    v1, v2 = sender.v1, sender.v2
    paths: dict[str, Any] = {
        "v1 To": lambda a: v1.send_email(Source=me, Destination={"ToAddresses": [a]}, Message=v1_body),
        "v1 Cc": lambda a: v1.send_email(Source=me, Destination={"CcAddresses": [a]}, Message=v1_body),
        "v1 Bcc": lambda a: v1.send_email(
            Source=me, Destination={"ToAddresses": [me], "BccAddresses": [a]}, Message=v1_body
        ),
        "v1 ReturnPath": lambda a: v1.send_email(
            Source=me, ReturnPath=a, Destination={"ToAddresses": [me]}, Message=v1_body
        ),
        "v1 Source": lambda a: v1.send_email(Source=a, Destination={"ToAddresses": [me]}, Message=v1_body),
        "v1 ReplyTo": lambda a: v1.send_email(
            Source=me, ReplyToAddresses=[a], Destination={"ToAddresses": [me]}, Message=v1_body
        ),
        "v1 raw Destinations": lambda a: v1.send_raw_email(Destinations=[a], RawMessage={"Data": raw}),
        "v1 raw Source": lambda a: v1.send_raw_email(Source=a, RawMessage={"Data": raw}),
        "v2 To": lambda a: v2.send_email(
            FromEmailAddress=me, Destination={"ToAddresses": [a]}, Content=v2_simple
        ),
        "v2 Cc": lambda a: v2.send_email(
            FromEmailAddress=me, Destination={"CcAddresses": [a]}, Content=v2_simple
        ),
        "v2 Bcc": lambda a: v2.send_email(
            FromEmailAddress=me, Destination={"ToAddresses": [me], "BccAddresses": [a]}, Content=v2_simple
        ),
        "v2 FeedbackForwardingEmailAddress": lambda a: v2.send_email(
            FromEmailAddress=me,
            FeedbackForwardingEmailAddress=a,
            Destination={"ToAddresses": [me]},
            Content=v2_simple,
        ),
        "v2 FromEmailAddress": lambda a: v2.send_email(
            FromEmailAddress=a, Destination={"ToAddresses": [me]}, Content=v2_simple
        ),
        "v2 raw Bcc": lambda a: v2.send_email(
            Destination={"ToAddresses": [me], "BccAddresses": [a]}, Content={"Raw": {"Data": raw}}
        ),
        "v2 raw FeedbackForwardingEmailAddress": lambda a: v2.send_email(
            FeedbackForwardingEmailAddress=a, Content={"Raw": {"Data": raw}}
        ),
    }
    wrong = []
    for address in _bad_addresses(sender.domain):
        for name, send in paths.items():
            try:
                send(address)
                outcome = "accepted"
            except ClientError as exc:
                error, status = exc.response["Error"], exc.response["ResponseMetadata"]["HTTPStatusCode"]
                outcome = f"{status} {error['Code']}"
            expected = "400 " + ("InvalidParameterValue" if name.startswith("v1") else "BadRequestException")
            if outcome != expected:
                wrong.append((name, address, outcome))
    assert wrong == []
    assert query(sesame, "SELECT id FROM messages WHERE account_id = :a", a=sender.id) == []


def test_an_address_without_domain_gets_ses_message(sender: Sender) -> None:
    with pytest.raises(ClientError) as err:
        sender.v1.send_email(
            Source=f"me@{sender.domain}",
            Destination={"ToAddresses": ["resource_owner"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        )
    assert code(err) == ("InvalidParameterValue", "Missing final '@domain'")
    with pytest.raises(sender.v2.exceptions.BadRequestException) as err:
        sender.v2.send_email(
            FromEmailAddress="Me <me>",
            Destination={"ToAddresses": [f"me@{sender.domain}"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
        )
    assert code(err) == ("BadRequestException", "Missing final '@domain'")


def test_unusual_but_valid_addresses_reach_the_envelope(sesame: Serve, sender: Sender) -> None:
    sender.production()
    out = sender.v1.send_email(
        Source=f'"Me, Myself" <me+news@{sender.domain}>',
        ReturnPath=f'"bounce handler"@{sender.domain}',
        Destination={
            "ToAddresses": ['"john smith"@example.org', "o'brien+tag@example.org"],
            "BccAddresses": ["Anna <anna@münchen.example>"],  # headers need punycode; envelopes get it
        },
        Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
    )
    msg, entries = stored(sesame, out["MessageId"])
    assert [r for r, _ in entries] == [
        '"john smith"@example.org',
        "o'brien+tag@example.org",
        "anna@xn--mnchen-3ya.example",
    ]
    assert msg["from_address"] == f"me+news@{sender.domain}"
    assert msg["source"] == f'"bounce handler"@{sender.domain}'


# ------------------------------------------------------------------------------------ dev mode


def test_dev_mode_captures_for_localstack_clients(dev: SesameProcess) -> None:
    import httpx

    from tests.conftest import client

    v1 = client("ses", dev.endpoint)
    v1.verify_email_identity(EmailAddress="hello@example.com")
    out = v1.send_email(
        Source="hello@example.com",
        Destination={"ToAddresses": ["jeff@aws.com"]},
        Message={"Subject": {"Data": "This is the subject"}, "Body": {"Text": {"Data": "This is the body"}}},
    )
    raw = base64.b64encode(b"From: hello@example.com\r\nTo: x@example.org\r\nSubject: r\r\n\r\nraw body\r\n")
    raw_id = v1.send_raw_email(RawMessage={"Data": base64.b64decode(raw)})["MessageId"]
    got = httpx.get(f"{dev.endpoint}/_aws/ses", params={"id": out["MessageId"]}).json()["messages"]
    assert len(got) == 1
    m = got[0]
    assert {k: m[k] for k in ("Id", "Region", "Source", "Subject", "Body", "Destination")} == {
        "Id": out["MessageId"],
        "Region": "us-east-1",
        "Source": "hello@example.com",
        "Subject": "This is the subject",
        "Body": {"text_part": "This is the body", "html_part": None},
        "Destination": {"ToAddresses": ["jeff@aws.com"]},
    }
    raw_view = httpx.get(f"{dev.endpoint}/_aws/ses", params={"id": raw_id}).json()["messages"][0]
    assert "raw body" in raw_view["RawData"]
    # Raw sends show their recipients: the ones the request named (v2 Destination, as nodemailer sends
    # it; v1 Destinations), else the message's own To, Cc and Bcc.
    assert raw_view["Destination"] == {"ToAddresses": ["x@example.org"]}
    v2 = client("sesv2", dev.endpoint)
    raw_v2 = b"From: hello@example.com\r\nTo: a@example.org\r\nSubject: r\r\n\r\nraw body\r\n"
    for destination, shown in [
        (
            {"ToAddresses": ["b@example.org"], "BccAddresses": ["c@example.org"]},
            ["b@example.org", "c@example.org"],
        ),
        ({}, ["a@example.org"]),
    ]:
        sent = v2.send_email(Destination=destination, Content={"Raw": {"Data": raw_v2}})
        view = httpx.get(f"{dev.endpoint}/_aws/ses", params={"id": sent["MessageId"]}).json()["messages"][0]
        assert view["Destination"] == {"ToAddresses": shown}
        assert "raw body" in view["RawData"]
    given = v1.send_raw_email(RawMessage={"Data": raw_v2}, Destinations=["d@example.org"])["MessageId"]
    view = httpx.get(f"{dev.endpoint}/_aws/ses", params={"id": given}).json()["messages"][0]
    assert view["Destination"] == {"ToAddresses": ["d@example.org"]}
    assert (
        len(httpx.get(f"{dev.endpoint}/_aws/ses", params={"email": "hello@example.com"}).json()["messages"])
        >= 2
    )
    assert httpx.delete(f"{dev.endpoint}/_aws/ses", params={"id": raw_id}).status_code == 204
    assert httpx.get(f"{dev.endpoint}/_aws/ses", params={"id": raw_id}).json()["messages"] == []


# ------------------------------------------------------------------------------- configuration sets


def test_configuration_sets_at_send_time(sesame: Serve, sender: Sender) -> None:
    sender.production()
    v1, v2 = sender.v1, sender.v2
    simple = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}

    def send(**kw: Any) -> str:
        return v2.send_email(
            FromEmailAddress=f"me@{sender.domain}",
            Destination={"ToAddresses": ["gone@example.org"]},
            Content=simple,
            **kw,
        )["MessageId"]

    with pytest.raises(v2.exceptions.NotFoundException):
        send(ConfigurationSetName="nope")
    with pytest.raises(v1.exceptions.ConfigurationSetDoesNotExistException):
        v1.send_email(
            Source=f"me@{sender.domain}", Destination={"ToAddresses": ["a@example.org"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}, ConfigurationSetName="nope",
        )  # fmt: skip
    v2.put_suppressed_destination(EmailAddress="gone@example.org", Reason="BOUNCE")
    # A set with its own (empty) suppression reasons sends to an address the account would suppress.
    v2.create_configuration_set(
        ConfigurationSetName="no-suppression",
        SuppressionOptions={"SuppressedReasons": []},
        Tags=[{"Key": "k", "Value": "v"}],
    )
    assert stored(sesame, send(ConfigurationSetName="no-suppression"))[1] == [("gone@example.org", "queued")]
    assert stored(sesame, send())[1] == [("gone@example.org", "suppressed")]
    # The identity's default configuration set applies when a send names none.
    v2.put_email_identity_configuration_set_attributes(
        EmailIdentity=sender.domain, ConfigurationSetName="no-suppression"
    )
    msg, entries = stored(sesame, send())
    assert msg["configuration_set"] == "no-suppression" and entries == [("gone@example.org", "queued")]
    v1.update_configuration_set_sending_enabled(ConfigurationSetName="no-suppression", Enabled=False)
    with pytest.raises(v2.exceptions.SendingPausedException):
        send()
    with pytest.raises(v1.exceptions.ConfigurationSetSendingPausedException):
        v1.send_email(
            Source=f"me@{sender.domain}", Destination={"ToAddresses": ["a@example.org"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        )  # fmt: skip
    v2.put_configuration_set_sending_options(ConfigurationSetName="no-suppression", SendingEnabled=True)
    got = v2.get_configuration_set(ConfigurationSetName="no-suppression")
    assert got["SendingOptions"] == {"SendingEnabled": True}
    assert "LastFreshStart" in got["ReputationOptions"]  # re-enabling is a fresh start
    assert got["SuppressionOptions"] == {"SuppressedReasons": []}
    assert got["Tags"] == [{"Key": "k", "Value": "v"}]


def test_configuration_set_crud_v1_and_v2(sender: Sender) -> None:
    v1, v2 = sender.v1, sender.v2
    v1.create_configuration_set(ConfigurationSet={"Name": "alpha"})
    with pytest.raises(v1.exceptions.ConfigurationSetAlreadyExistsException):
        v1.create_configuration_set(ConfigurationSet={"Name": "alpha"})
    with pytest.raises(v2.exceptions.AlreadyExistsException):
        v2.create_configuration_set(ConfigurationSetName="alpha")
    v2.create_configuration_set(
        ConfigurationSetName="beta", DeliveryOptions={"TlsPolicy": "REQUIRE", "MaxDeliverySeconds": 600}
    )
    assert [c["Name"] for c in v1.list_configuration_sets()["ConfigurationSets"]] == ["alpha", "beta"]
    first = v2.list_configuration_sets(PageSize=1)
    assert first["ConfigurationSets"] == ["alpha"]
    assert v2.list_configuration_sets(NextToken=first["NextToken"])["ConfigurationSets"] == ["beta"]
    v1.put_configuration_set_delivery_options(
        ConfigurationSetName="alpha", DeliveryOptions={"TlsPolicy": "Require"}
    )
    v1.create_configuration_set_tracking_options(
        ConfigurationSetName="alpha", TrackingOptions={"CustomRedirectDomain": "t.example.org"}
    )
    with pytest.raises(v1.exceptions.TrackingOptionsAlreadyExistsException):
        v1.create_configuration_set_tracking_options(
            ConfigurationSetName="alpha", TrackingOptions={"CustomRedirectDomain": "x.org"}
        )
    v1.update_configuration_set_reputation_metrics_enabled(ConfigurationSetName="alpha", Enabled=True)
    described = v1.describe_configuration_set(
        ConfigurationSetName="alpha",
        ConfigurationSetAttributeNames=[
            "trackingOptions",
            "deliveryOptions",
            "reputationOptions",
            "eventDestinations",
        ],
    )
    assert described["ConfigurationSet"] == {"Name": "alpha"}
    assert described["TrackingOptions"] == {"CustomRedirectDomain": "t.example.org"}
    assert described["DeliveryOptions"] == {"TlsPolicy": "Require"}
    assert described["ReputationOptions"]["ReputationMetricsEnabled"] is True
    assert described["EventDestinations"] == []
    v2.put_configuration_set_tracking_options(
        ConfigurationSetName="alpha", CustomRedirectDomain="u.example.org", HttpsPolicy="REQUIRE"
    )
    v2.put_configuration_set_vdm_options(
        ConfigurationSetName="alpha", VdmOptions={"DashboardOptions": {"EngagementMetrics": "ENABLED"}}
    )
    got = v2.get_configuration_set(ConfigurationSetName="alpha")
    assert got["TrackingOptions"] == {"CustomRedirectDomain": "u.example.org", "HttpsPolicy": "REQUIRE"}
    assert got["VdmOptions"] == {"DashboardOptions": {"EngagementMetrics": "ENABLED"}}
    assert v2.get_configuration_set(ConfigurationSetName="beta")["DeliveryOptions"] == {
        "TlsPolicy": "REQUIRE", "MaxDeliverySeconds": 600}  # fmt: skip
    v1.delete_configuration_set_tracking_options(ConfigurationSetName="alpha")
    with pytest.raises(v1.exceptions.TrackingOptionsDoesNotExistException):
        v1.delete_configuration_set_tracking_options(ConfigurationSetName="alpha")
    v1.delete_configuration_set(ConfigurationSetName="alpha")
    v2.delete_configuration_set(ConfigurationSetName="beta")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_configuration_set(ConfigurationSetName="beta")
    with pytest.raises(v1.exceptions.ConfigurationSetDoesNotExistException):
        v1.delete_configuration_set(ConfigurationSetName="alpha")
