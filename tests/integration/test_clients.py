"""Real SES clients that nobody here wrote, each running its ordinary send flow against ``sesame dev``.

The AWS CLI, the AWS SDK for JavaScript v3 (client-ses, client-sesv2), nodemailer's SES transport,
django-ses (both backends, default settings) and aiobotocore. Each test asserts on what the client
returned and on what ``GET /_aws/ses`` captured. The JavaScript packages are installed into tests/clients
by ``make test`` (npm ci); the Python ones are test extras.
"""

from __future__ import annotations

import asyncio
import email
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest

from sesame.testing.databases import temporary_database
from sesame.testing.servers import SesameProcess
from tests.conftest import client

CLIENTS = Path(__file__).parent.parent / "clients"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SesameProcess]:
    # The clients exercise the protocol layer, not storage: one database is enough.
    data_dir = tmp_path_factory.mktemp("clients")
    with temporary_database("sqlite", data_dir) as url:
        with SesameProcess("dev", data_dir=data_dir, database=url) as proc:
            yield proc


def captured(dev: SesameProcess, source: str) -> list[dict[str, Any]]:
    return httpx.get(f"{dev.endpoint}/_aws/ses", params={"email": source}).json()["messages"]


def parsed(raw: str) -> Message:
    return email.message_from_string(raw)


def node(flow: str, dev: SesameProcess, key: str) -> dict[str, Any]:
    if not (CLIENTS / "node_modules").is_dir():
        pytest.fail("the JavaScript clients are not installed: run `npm ci --prefix tests/clients`")
    out = subprocess.run(
        ["node", str(CLIENTS / "flows.mjs"), flow, dev.endpoint, key],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
        check=True,
    )
    return json.loads(out.stdout)


def aws(dev: SesameProcess, key: str, *args: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    cli = shutil.which("aws", path=str(Path(sys.executable).parent)) or "aws"
    out = subprocess.run(
        [cli, "--endpoint-url", dev.endpoint, "--output", "json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    return json.loads(out.stdout) if out.stdout.strip() else {}


def test_aws_cli(dev: SesameProcess) -> None:
    key = "100000000001"
    aws(dev, key, "ses", "verify-email-identity", "--email-address", "cli@cli.test")
    assert aws(dev, key, "ses", "list-identities")["Identities"] == ["cli@cli.test"]
    quota = aws(dev, key, "ses", "get-send-quota")
    assert quota["MaxSendRate"] > 0 and quota["Max24HourSend"] == -1
    v1 = aws(
        dev, key, "ses", "send-email", "--from", "cli@cli.test", "--to", "a@example.com", "b@example.com",
        "--subject", "cli v1", "--text", "hello from aws ses",
    )  # fmt: skip
    aws(dev, key, "sesv2", "create-email-identity", "--email-identity", "cli.test")
    content = {"Simple": {"Subject": {"Data": "cli v2"}, "Body": {"Html": {"Data": "<b>hi</b>"}}}}
    v2 = aws(
        dev, key, "sesv2", "send-email", "--from-email-address", "Cli <news@cli.test>",
        "--destination", "ToAddresses=c@example.com,CcAddresses=d@example.com",
        "--content", json.dumps(content),
    )  # fmt: skip
    raw = "From: cli@cli.test\r\nTo: e@example.com\r\nSubject: cli raw\r\n\r\nraw from the cli\r\n"
    v1_raw = aws(dev, key, "ses", "send-raw-email", "--raw-message", f"Data={raw}")
    assert aws(dev, key, "sesv2", "get-account")["SendQuota"]["SentLast24Hours"] == 5.0
    by_id = {m["Id"]: m for m in captured(dev, "cli@cli.test") + captured(dev, "news@cli.test")}
    assert by_id[v1["MessageId"]]["Destination"] == {"ToAddresses": ["a@example.com", "b@example.com"]}
    assert by_id[v1["MessageId"]]["Subject"] == "cli v1"
    assert by_id[v1["MessageId"]]["Body"]["text_part"] == "hello from aws ses"
    assert by_id[v2["MessageId"]]["Destination"] == {
        "ToAddresses": ["c@example.com"],
        "CcAddresses": ["d@example.com"],
    }
    assert by_id[v2["MessageId"]]["Body"]["html_part"] == "<b>hi</b>"
    assert parsed(by_id[v1_raw["MessageId"]]["RawData"])["Subject"] == "cli raw"
    assert by_id[v1_raw["MessageId"]]["Destination"] == {"ToAddresses": ["e@example.com"]}


def test_javascript_sdk_v1(dev: SesameProcess) -> None:
    out = node("sdk-v1", dev, "100000000002")
    assert "error" not in out, out
    assert out["quota"]["MaxSendRate"] > 0 and out["quota"]["Max24HourSend"] == -1
    by_id = {m["Id"]: m for m in captured(dev, "sender@js-clients.test")}
    simple = by_id[out["simple"]]
    assert simple["Destination"] == {"ToAddresses": ["to@example.com"], "CcAddresses": ["cc@example.com"]}
    assert (simple["Subject"], simple["Body"]["text_part"]) == ("v1 simple", "hello from client-ses")
    raw = by_id[out["raw"]]
    assert raw["Destination"] == {"ToAddresses": ["raw@example.com"]}
    assert parsed(raw["RawData"]).get_payload().strip() == "raw body from client-ses"


def test_javascript_sdk_v2(dev: SesameProcess) -> None:
    out = node("sdk-v2", dev, "100000000003")
    assert "error" not in out, out
    assert out["sendQuota"]["MaxSendRate"] > 0
    assert out["rejected"]["error"] == "MessageRejected"
    assert "nobody@unverified.test" in out["rejected"]["message"]
    (sent,) = [m for m in captured(dev, "sender@js-clients.test") if m["Id"] == out["sent"]]
    assert sent["Destination"] == {"ToAddresses": ["to@example.com"], "BccAddresses": ["bcc@example.com"]}
    assert sent["Subject"] == "v2 simple"
    assert sent["Body"] == {"text_part": "hello from client-sesv2", "html_part": "<p>hello</p>"}


def test_nodemailer_ses_transport(dev: SesameProcess) -> None:
    out = node("nodemailer", dev, "100000000004")
    assert "error" not in out, out
    assert out["verified"] is True
    assert out["envelope"]["to"] == ["one@example.com", "two@example.com", "three@example.com"]
    # nodemailer reports SES's MessageId as its response.
    (m,) = [m for m in captured(dev, "sender@js-clients.test") if m["Id"] == out["response"]]
    # nodemailer sends v2 SendEmail with Raw content and the envelope as Destination.
    assert m["Destination"] == {"ToAddresses": ["one@example.com", "two@example.com", "three@example.com"]}
    message = parsed(m["RawData"])
    assert message["Subject"] == "nodemailer subject"
    assert message["From"] == "Nodemailer <sender@js-clients.test>"
    parts = {p.get_filename(): p for p in message.walk() if p.get_filename()}
    assert parts["report.csv"].get_payload(decode=True) == b"a,b\n1,2\n"
    body = next(p for p in message.walk() if p.get_content_type() == "text/plain" and not p.get_filename())
    assert body.get_payload(decode=True).strip() == b"hello from nodemailer"


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_django_ses_backends_with_default_settings(dev: SesameProcess, api: str) -> None:
    key = "10000000000" + ("5" if api == "v1" else "6")
    client("sesv2", dev.endpoint, key).create_email_identity(EmailIdentity="django.test")
    out = subprocess.run(
        [sys.executable, str(CLIENTS / "django_flow.py"), dev.endpoint, api, key, f"app-{api}@django.test"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr  # django-ses's auto-throttle crashed on a rate of -1
    assert json.loads(out.stdout) == {"sent": 2, "backend": "SESBackend"}
    mine = captured(dev, f"app-{api}@django.test")
    assert len(mine) == 2
    first, second = (parsed(m["RawData"]) for m in mine)
    assert (first["Subject"], first["From"]) == ("django subject", f"Django App <app-{api}@django.test>")
    assert first.get_payload().strip() == "hello from django"
    assert second["Subject"] == "django attachment"
    assert "bcc@example.com" not in str(second)  # a Bcc is an envelope recipient, never a header
    (part,) = [p for p in second.walk() if p.get_filename()]
    assert part.get_filename() == "data.csv"
    assert part.get_payload(decode=True).replace(b"\r\n", b"\n") == b"a,b\n1,2\n"  # text: CRLF on the wire
    recipients = set(mine[1]["Destination"]["ToAddresses"])
    assert recipients == {"to@example.com", "cc@example.com", "bcc@example.com"}


def test_aiobotocore(dev: SesameProcess) -> None:
    from aiobotocore.session import get_session

    async def flow() -> tuple[dict[str, Any], str]:
        session = get_session()
        async with session.create_client(
            "sesv2",
            endpoint_url=dev.endpoint,
            region_name="us-east-1",
            aws_access_key_id="100000000007",
            aws_secret_access_key="secret",
        ) as ses:
            await ses.create_email_identity(EmailIdentity="aio.test")
            account = await ses.get_account()
            raw = b"From: bot@aio.test\r\nTo: x@example.com\r\nSubject: aio\r\n\r\nfrom aiobotocore\r\n"
            sent = await ses.send_email(
                Destination={"ToAddresses": ["y@example.com"]}, Content={"Raw": {"Data": raw}}
            )
            return account, sent["MessageId"]

    account, message_id = asyncio.run(flow())
    assert account["SendQuota"]["MaxSendRate"] > 0 and account["ProductionAccessEnabled"] is True
    (m,) = captured(dev, "bot@aio.test")
    assert m["Id"] == message_id
    assert m["Destination"] == {"ToAddresses": ["y@example.com"]}
    assert parsed(m["RawData"])["Subject"] == "aio"
