"""Receiving mail through the MX, end to end: smtplib into the MX listener, receipt rules made with
boto3, and each action's effect where a user would look for it (the object store, an SNS subscriber, an
HTTP function, a bounce in the sender's mailbox)."""

from __future__ import annotations

import base64
import contextlib
import json
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from sesame.mail import dkim
from sesame.testing.dns import DnsServer
from sesame.testing.http_sink import HttpSink, verify_sns_signature
from sesame.testing.moto import moto_server
from sesame.testing.servers import SesameProcess
from tests.conftest import client

MESSAGE = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: Bob <bob@example.test>\r\n"
    b"Subject: Hello receiving\r\n"
    b"Message-ID: <hello-1@sender.test>\r\n"
    b"Date: Sat, 05 Dec 2026 12:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Bob.\r\n"
)


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def mx(proc: SesameProcess) -> smtplib.SMTP:
    host, port = proc.listeners["mx"]
    return smtplib.SMTP(host, port, timeout=10)


def deliver(
    proc: SesameProcess, rcpts: list[str], data: bytes = MESSAGE, sender: str = "alice@sender.test"
) -> str:
    """Send one message into the MX; its receiving message id (from the 250 reply)."""
    with mx(proc) as smtp:
        smtp.ehlo("client.sender.test")
        smtp.mail(sender)
        for rcpt in rcpts:
            code, text = smtp.rcpt(rcpt)
            assert code == 250, (rcpt, code, text)
        code, text = smtp.data(data)
        assert code == 250, text
    return text.decode().split()[-1]


def inbound(proc: SesameProcess, message_id: str) -> dict[str, Any]:
    found = httpx.get(f"{proc.endpoint}/_sesame/inbound", params={"id": message_id}).json()["messages"]
    assert len(found) == 1
    return found[0]


def receipts_done(proc: SesameProcess, message_id: str) -> dict[str, Any] | None:
    msg = inbound(proc, message_id)
    if msg["receipts"] and all(r["state"] != "pending" for r in msg["receipts"]):
        return msg
    return None


class Functions:
    """A Lambda-style function on loopback: records each event, answers with ``answer``."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer: dict[str, Any] | None = None
        functions = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                functions.events.append(json.loads(body))
                out = json.dumps(functions.answer or {}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/invoke"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:receive"


@pytest.fixture(scope="module")
def functions() -> Iterator[Functions]:
    f = Functions()
    yield f
    f.close()


#: A DNS blocklist zone on the test DNS server; it lists 127.0.0.2 (RFC 5782 §2.1: 2.0.0.127.<zone>).
BLOCKLIST = "bl.test"


@pytest.fixture(scope="module")
def receiving(
    module_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    functions: Functions,
    dns_server: DnsServer,
) -> Iterator[SesameProcess]:
    """``sesame dev`` with an MX, asking the test DNS server (SPF, DKIM, DMARC, the blocklist); its rules
    are made per test (a rule set each)."""
    data_dir = tmp_path_factory.mktemp("receiving")
    config = data_dir / "sesame.toml"
    config.write_text(
        f'[dns]\nnameservers = ["{dns_server.address}"]\ntimeout = 2\n\n'
        f'[receiving]\nfunctions = {{"{FUNCTION}" = "{functions.url}"}}\ndnsbl = ["{BLOCKLIST}"]\n'
    )
    dns_server.add(f"2.0.0.127.{BLOCKLIST}", "A", "127.0.0.2")
    with SesameProcess("dev", data_dir=data_dir, database=module_database, config_file=config) as proc:
        yield proc


ACCOUNT = "123456789012"


def ses(proc: SesameProcess) -> Any:
    return client("ses", proc.endpoint, key=ACCOUNT)


def activate(proc: SesameProcess, name: str, *rules: dict[str, Any]) -> None:
    """Make and activate a rule set. An account receives only for its verified domains: each rule's
    recipient domains are made identities first (verified at once in dev mode)."""
    v1 = ses(proc)
    v2 = client("sesv2", proc.endpoint, key=ACCOUNT)
    domains = {c.rpartition("@")[2].lstrip(".") for rule in rules for c in rule.get("Recipients", [])}
    for domain in domains:
        with contextlib.suppress(v2.exceptions.AlreadyExistsException):
            v2.create_email_identity(EmailIdentity=domain)
    v1.create_receipt_rule_set(RuleSetName=name)
    after = None
    for rule in rules:
        v1.create_receipt_rule(
            RuleSetName=name, Rule={"Enabled": True, **rule}, **({"After": after} if after else {})
        )
        after = rule["Name"]
    v1.set_active_receipt_rule_set(RuleSetName=name)


def objects(proc: SesameProcess, bucket: str) -> Path:
    assert proc.data_dir is not None
    return proc.data_dir / "objects" / bucket


# -- the listener ----------------------------------------------------------------------------------


def test_dev_mx_captures_mail_for_any_domain(receiving: SesameProcess) -> None:
    message_id = deliver(receiving, ["someone@anything.example"])
    got = inbound(receiving, message_id)
    assert got["state"] == "captured"
    assert got["source"] == "alice@sender.test"
    assert got["destination"] == ["someone@anything.example"]
    assert got["subject"] == "Hello receiving"
    assert got["text"].strip() == "Hello Bob."
    assert got["raw"].endswith("Hello Bob.\r\n")


def test_the_mx_offers_starttls_and_no_auth_and_takes_bounces(receiving: SesameProcess) -> None:
    with mx(receiving) as smtp:
        code, _ = smtp.ehlo("client.test")
        assert code == 250
        assert smtp.has_extn("starttls") and smtp.has_extn("size")
        assert not smtp.has_extn("auth")
        assert smtp.docmd("AUTH", "PLAIN AGFiYwBkZWY=")[0] == 502
        assert smtp.mail("<>")[0] == 250  # the null reverse-path of a bounce (RFC 5321 §4.5.5)
        assert smtp.rcpt("postmaster@example.test")[0] == 250
        smtp.rset()
        too_big = 40 * 1024 * 1024 + 1
        assert smtp.docmd("MAIL", f"FROM:<a@sender.test> SIZE={too_big}")[0] == 552


def test_mail_over_starttls_is_marked_as_received_over_tls(receiving: SesameProcess) -> None:
    import ssl

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with mx(receiving) as smtp:
        smtp.starttls(context=context)
        smtp.ehlo("client.test")
        smtp.sendmail("alice@sender.test", ["tls@anything.example"], MESSAGE)
    found = httpx.get(f"{receiving.endpoint}/_sesame/inbound").json()["messages"]
    assert any(m["destination"] == ["tls@anything.example"] and m["tls"] for m in found)


# -- actions -----------------------------------------------------------------------------------------


def test_s3_action_stores_the_message_with_ses_headers_and_added_ones(receiving: SesameProcess) -> None:
    activate(
        receiving,
        "store",
        {
            "Name": "keep",
            "Recipients": ["store.test"],
            "Actions": [
                {"AddHeaderAction": {"HeaderName": "X-Stored-By", "HeaderValue": "sesame"}},
                {"S3Action": {"BucketName": "mail", "ObjectKeyPrefix": "in/"}},
            ],
        },
    )
    message_id = deliver(receiving, ["bob@store.test"])
    path = objects(receiving, "mail") / "in" / message_id
    body = wait_until(lambda: path.exists() and path.read_bytes())
    msg = message_from_bytes(body, policy=default_policy)
    assert msg["X-Stored-By"] == "sesame"
    assert msg["X-SES-Spam-Verdict"] is None  # the rule does not scan
    assert "spf=" in str(msg["Authentication-Results"])
    assert message_id in str(msg["Received"])
    assert body.endswith(b"Hello Bob.\r\n")
    got = wait_until(lambda: receipts_done(receiving, message_id))
    assert [a["type"] for a in got["receipts"][0]["actions"]] == ["AddHeaderAction", "S3Action"]


def test_sns_action_publishes_the_received_notification_with_content(receiving: SesameProcess) -> None:
    sns = client("sns", receiving.endpoint, key=ACCOUNT)
    topic = sns.create_topic(Name="inbound")["TopicArn"]
    with HttpSink() as sink:
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=sink.url)
        (confirmation,) = sink.wait_for(lambda r: r.json()["Type"] == "SubscriptionConfirmation")
        httpx.get(confirmation.json()["SubscribeURL"])
        activate(
            receiving,
            "notify",
            {"Name": "utf8", "Recipients": ["notify.test"], "Actions": [{"SNSAction": {"TopicArn": topic}}]},
            {
                "Name": "b64",
                "Recipients": ["b64@notify.test"],
                "Actions": [{"SNSAction": {"TopicArn": topic, "Encoding": "Base64"}}],
            },
        )
        message_id = deliver(receiving, ["b64@notify.test"])
        posts = sink.wait_for(lambda r: r.json()["Type"] == "Notification", count=2)
    encodings = []
    for post in posts:
        verify_sns_signature(post.json())
        note = json.loads(post.json()["Message"])
        assert note["notificationType"] == "Received"
        assert note["mail"]["messageId"] == message_id
        assert note["mail"]["source"] == "alice@sender.test"
        assert note["mail"]["commonHeaders"]["subject"] == "Hello receiving"
        assert note["receipt"]["recipients"] == ["b64@notify.test"]
        assert note["receipt"]["action"]["type"] == "SNS"
        assert note["receipt"]["spfVerdict"]["status"] in ("PASS", "FAIL", "GRAY", "PROCESSING_FAILED")
        encoding = note["receipt"]["action"]["encoding"].upper()
        encodings.append(encoding)
        raw = base64.b64decode(note["content"]) if encoding.startswith("BASE") else note["content"].encode()
        assert raw.endswith(b"Hello Bob.\r\n")
    assert sorted(e.startswith("BASE") for e in encodings) == [False, True]


@pytest.mark.parametrize(
    ("answer", "ran_after"),
    [
        ({"disposition": "CONTINUE"}, ["first", "second"]),
        ({"disposition": "STOP_RULE"}, ["first", "second"]),
        ({"disposition": "STOP_RULE_SET"}, ["first"]),
        ({"garbage": True}, ["first", "second"]),
    ],
)
def test_lambda_action_obeys_the_disposition(
    receiving: SesameProcess, functions: Functions, answer: dict[str, Any], ran_after: list[str]
) -> None:
    functions.answer, functions.events = answer, []
    name = f"lambda-{answer.get('disposition', 'none').lower().replace('_', '-')}"
    activate(
        receiving,
        name,
        {
            "Name": "first",
            "Recipients": ["fn.test"],
            "Actions": [
                {"LambdaAction": {"FunctionArn": FUNCTION, "InvocationType": "RequestResponse"}},
                {"AddHeaderAction": {"HeaderName": "X-Same-Rule", "HeaderValue": "1"}},
            ],
        },
        {"Name": "second", "Recipients": ["fn.test"], "Actions": [{"S3Action": {"BucketName": name}}]},
    )
    message_id = deliver(receiving, ["x@fn.test"])
    got = wait_until(lambda: receipts_done(receiving, message_id))
    (event,) = functions.events
    record = event["Records"][0]
    assert record["eventSource"] == "aws:ses"
    assert record["ses"]["mail"]["messageId"] == message_id
    assert "content" not in record["ses"]
    assert record["ses"]["receipt"]["action"]["functionArn"] == FUNCTION
    rules_run = list(dict.fromkeys(a["rule"] for a in got["receipts"][0]["actions"]))
    assert rules_run == ran_after
    same_rule_went_on = any(a["type"] == "AddHeaderAction" for a in got["receipts"][0]["actions"])
    assert same_rule_went_on == (answer.get("disposition") not in ("STOP_RULE", "STOP_RULE_SET"))
    assert (objects(receiving, name) / message_id).exists() == ("second" in ran_after)


def test_bounce_action_sends_a_dsn_to_the_sender_and_stop_ends_the_rule_set(receiving: SesameProcess) -> None:
    activate(
        receiving,
        "bounce",
        {
            "Name": "refuse",
            "Recipients": ["nobody@bounce.test"],
            "Actions": [
                {
                    "BounceAction": {
                        "SmtpReplyCode": "550",
                        "StatusCode": "5.1.1",
                        "Message": "Mailbox does not exist",
                        "Sender": "mailer@bounce.test",
                    }
                },
                {"StopAction": {"Scope": "RuleSet"}},
            ],
        },
        {"Name": "never", "Recipients": ["bounce.test"], "Actions": [{"S3Action": {"BucketName": "never"}}]},
    )
    message_id = deliver(receiving, ["nobody@bounce.test"], sender="carol@sender.test")
    wait_until(lambda: receipts_done(receiving, message_id))
    assert not objects(receiving, "never").exists()

    def bounce() -> dict[str, Any] | None:
        sent = httpx.get(f"{receiving.endpoint}/_aws/ses").json()["messages"]
        return next((m for m in sent if m["Destination"]["ToAddresses"] == ["carol@sender.test"]), None)

    raw = wait_until(bounce)["RawData"]
    report = message_from_bytes(raw.encode(), policy=default_policy)
    assert report.get_content_type() == "multipart/report"
    assert report["From"] == "mailer@bounce.test"
    assert "Status: 5.1.1" in raw and "Diagnostic-Code: smtp; 550 5.1.1 Mailbox does not exist" in raw
    assert "<hello-1@sender.test>" in raw  # the original's header section comes back


def test_tls_policy_require_bounces_mail_received_in_clear(receiving: SesameProcess) -> None:
    activate(
        receiving,
        "tls-only",
        {
            "Name": "secure",
            "Recipients": ["secure.test"],
            "TlsPolicy": "Require",
            "Actions": [{"S3Action": {"BucketName": "secure"}}],
        },
    )
    message_id = deliver(receiving, ["x@secure.test"], sender="dave@sender.test")
    got = wait_until(lambda: receipts_done(receiving, message_id))
    assert [a["result"] for a in got["receipts"][0]["actions"]] == ["bounced"]
    assert not (objects(receiving, "secure") / message_id).exists()


def test_an_action_that_fails_is_retried_and_its_place_kept(
    receiving: SesameProcess, functions: Functions
) -> None:
    unknown = "arn:aws:lambda:us-east-1:123456789012:function:nowhere"
    activate(
        receiving,
        "failing",
        {
            "Name": "store-then-call",
            "Recipients": ["fail.test"],
            "Actions": [
                {"S3Action": {"BucketName": "failing"}},
                {"LambdaAction": {"FunctionArn": unknown}},
            ],
        },
    )
    message_id = deliver(receiving, ["x@fail.test"])

    def failed_once() -> dict[str, Any] | None:
        (receipt,) = inbound(receiving, message_id)["receipts"] or [None]
        return receipt if receipt and receipt["lastError"] else None

    receipt = wait_until(failed_once)
    assert receipt["state"] == "pending" and "LambdaAction" in receipt["lastError"]
    assert [a["type"] for a in receipt["actions"]] == ["S3Action"]  # stored once, not again


def test_a_blocklisted_client_is_refused_at_connect_unless_an_account_allows_it(
    receiving: SesameProcess,
) -> None:
    host, port = receiving.listeners["mx"]
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP(host, port, timeout=10, source_address=("127.0.0.2", 0))
    assert refused.value.smtp_code == 554 and BLOCKLIST.encode() in refused.value.smtp_error
    with mx(receiving) as smtp:  # 127.0.0.1 is not listed
        assert smtp.noop()[0] == 250
    # An account that receives (an active rule set) and allows the address lets it past the blocklist.
    activate(
        receiving,
        "allowing",
        {"Name": "stop", "Recipients": ["allowing.test"], "Actions": [{"StopAction": {"Scope": "RuleSet"}}]},
    )
    v1 = ses(receiving)
    v1.create_receipt_filter(Filter={"Name": "trusted", "IpFilter": {"Policy": "Allow", "Cidr": "127.0.0.2"}})
    try:
        with smtplib.SMTP(host, port, timeout=10, source_address=("127.0.0.2", 0)) as smtp:
            assert smtp.noop()[0] == 250
    finally:
        v1.delete_receipt_filter(FilterName="trusted")


def signed(domain: str, dns_server: DnsServer) -> bytes:
    """MESSAGE from a@<domain>, DKIM-signed with a key published at sel._domainkey.<domain>."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    record = dkim.txt_record(pem)
    dns_server.add(
        f"sel._domainkey.{domain}",
        "TXT",
        " ".join(f'"{record[i : i + 250]}"' for i in range(0, len(record), 250)),
    )
    body = MESSAGE.replace(b"alice@sender.test", f"a@{domain}".encode())
    return dkim.sign(body, dkim.SigningKey(selector="sel", domain=domain, private_key_pem=pem))


def test_verdicts_for_spf_dkim_and_dmarc(
    receiving: SesameProcess, functions: Functions, dns_server: DnsServer
) -> None:
    dns_server.add("good.test", "TXT", '"v=spf1 ip4:127.0.0.0/8 -all"')
    dns_server.add("_dmarc.good.test", "TXT", '"v=DMARC1; p=reject"')
    dns_server.add("bad.test", "TXT", '"v=spf1 -all"')
    dns_server.add("_dmarc.bad.test", "TXT", '"v=DMARC1; p=quarantine"')
    activate(
        receiving,
        "judged",
        {
            "Name": "call",
            "Recipients": ["judged.test"],
            "Actions": [{"LambdaAction": {"FunctionArn": FUNCTION}}],
        },
    )
    functions.answer = None
    cases = {
        "good.test": (signed("good.test", dns_server), "PASS", "PASS", "PASS", None),
        "bad.test": (
            MESSAGE.replace(b"alice@sender.test", b"a@bad.test"),
            "FAIL",
            "GRAY",
            "FAIL",
            "quarantine",
        ),
        "none.test": (MESSAGE.replace(b"alice@sender.test", b"a@none.test"), "GRAY", "GRAY", "GRAY", None),
    }
    for domain, (data, spf, dkim_status, dmarc, policy) in cases.items():
        functions.events = []
        message_id = deliver(receiving, ["x@judged.test"], data=data, sender=f"a@{domain}")
        wait_until(lambda: functions.events)
        receipt = functions.events[0]["Records"][0]["ses"]["receipt"]
        assert functions.events[0]["Records"][0]["ses"]["mail"]["messageId"] == message_id
        got = (
            receipt["spfVerdict"]["status"],
            receipt["dkimVerdict"]["status"],
            receipt["dmarcVerdict"]["status"],
        )
        assert got == (spf, dkim_status, dmarc), domain
        assert receipt.get("dmarcPolicy") == policy, domain
        assert receipt["spamVerdict"]["status"] == "DISABLED"  # the rule does not scan


def test_s3_and_sns_actions_reach_an_external_aws(database: str, tmp_path: Path) -> None:
    """With ``aws.endpoint_url`` set (moto's server here), the S3 action writes to that S3 and the SNS
    actions publish to that SNS: read back from the bucket, and from an SQS queue on the topic."""
    from tests.e2e.test_events import aws, drain_queue, topic_to_queue

    with moto_server() as moto:
        aws(moto, "s3").create_bucket(Bucket="inbound-mail")
        topic, queue = topic_to_queue(moto, "inbound")
        config = tmp_path / "sesame.toml"
        config.write_text(f'[aws]\nendpoint_url = "{moto}"\naccess_key_id = "x"\nsecret_access_key = "x"\n')
        with SesameProcess("dev", data_dir=tmp_path / "data", database=database, config_file=config) as proc:
            activate(
                proc,
                "external",
                {
                    "Name": "store-and-tell",
                    "Recipients": ["external.test"],
                    "Actions": [
                        {
                            "S3Action": {
                                "BucketName": "inbound-mail",
                                "ObjectKeyPrefix": "raw/",
                                "TopicArn": topic,
                            }
                        },
                        {"SNSAction": {"TopicArn": topic, "Encoding": "Base64"}},
                    ],
                },
            )
            message_id = deliver(proc, ["bob@external.test"])
            notes = drain_queue(moto, queue, lambda got: len(got) >= 2)
            stored = aws(moto, "s3").get_object(Bucket="inbound-mail", Key=f"raw/{message_id}")["Body"].read()
    assert stored.endswith(b"Hello Bob.\r\n") and b"Authentication-Results:" in stored
    by_type = {n["receipt"]["action"]["type"]: n for n in (json.loads(m["Message"]) for m in notes)}
    assert by_type["S3"]["receipt"]["action"]["bucketName"] == "inbound-mail"
    assert by_type["S3"]["receipt"]["action"]["objectKey"] == f"raw/{message_id}"
    assert "content" not in by_type["S3"]  # only the SNS action carries the message
    assert base64.b64decode(by_type["SNS"]["content"]).endswith(b"Hello Bob.\r\n")
    assert {n["mail"]["messageId"] for n in by_type.values()} == {message_id}
