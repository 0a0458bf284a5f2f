"""Mail submitted over the SES SMTP interface is delivered by the engine, as mail sent through the API is.

Clients: Python's smtplib (STARTTLS, AUTH LOGIN), aiosmtplib (implicit TLS, AUTH PLAIN) and Debian's
``swaks``, none of them verifying the server's self-signed certificate. The credentials are what
``sesame accounts create`` prints: the access key id and its SmtpPassword. The sending setup (a
production account with a domain verified through the test DNS server) is test_delivery's ``Sender``.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import smtplib
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import dkim
import pytest

from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess
from sesame.testing.smtp import SinkServer
from tests.conftest import Serve, query
from tests.e2e.servers import serve_env, serving
from tests.e2e.test_delivery import Sender, _json, events, received_by

_OK = re.compile(r"^Ok (\S+)$")


@pytest.fixture(scope="module")
def sink(module_database: str) -> Iterator[SinkServer]:
    with SinkServer("127.0.0.1", tls=True, hostname="mx.sink.test") as server:
        yield server


def delivery_env(dns_server: DnsServer, sink: SinkServer) -> dict[str, str]:
    """Every recipient domain is delivered to the sink (127.0.0.1 as its MX, the sink's port)."""
    return serve_env(dns_server, DELIVERY__MX_PORT=str(sink.port), DELIVERY__HELO_NAME="sesame.test")


@pytest.fixture(scope="module")
def sesame(
    module_database: str, sink: SinkServer, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    with serving(
        module_database, tmp_path_factory, "smtp-delivery", delivery_env(dns_server, sink)
    ) as server:
        yield server


_n = iter(range(100, 1000))  # domains from100.test …, apart from test_delivery's


@pytest.fixture
def sender(sesame: Serve, dns_server: DnsServer) -> Sender:
    return Sender(sesame, dns_server, next(_n))


def unverified() -> ssl.SSLContext:
    """The server's certificate is self-signed (made in its data dir): clients are told not to check it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def message(sender: Sender, to: str, *headers: str, body: bytes = b"Hello.\r\n") -> bytes:
    lines = [f"From: me@{sender.domain}", f"To: {to}", "Subject: over SMTP", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def submit_starttls(sesame: Serve, sender: Sender, to: str, data: bytes) -> tuple[int, str]:
    """smtplib: STARTTLS, AUTH LOGIN, one message; the reply to the final dot."""
    host, port = sesame.proc.listeners["smtp"]
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.starttls(context=unverified())
        client.ehlo()  # again, over TLS: AUTH is offered only now
        client.user, client.password = sender.account["AccessKeyId"], sender.account["SmtpPassword"]
        assert client.auth("LOGIN", client.auth_login)[0] == 235
        assert client.mail(f"me@{sender.domain}", ["BODY=8BITMIME"])[0] == 250
        assert client.rcpt(to)[0] == 250
        code, text = client.data(data)
        return code, text.decode()


def dkim_verifies(sender: Sender, data: bytes) -> bool:
    records = {
        line.split()[0].rstrip("."): line.split("\t", 4)[4].strip('"') for line in sender.zone.splitlines()
    }
    return bool(
        dkim.verify(data, dnsfunc=lambda name, timeout=5: records[name.decode().rstrip(".")].encode())
    )


def test_smtplib_starttls_auth_login_delivered_byte_exact_and_dkim_signed(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    dns_server.add("smtp-a.test", "A", "127.0.0.1")
    sender.v2.create_configuration_set(ConfigurationSetName="via-smtp")
    body = "Grüße aus Köln, 8 bits.\r\n.a line that starts with a dot\r\nEnd.\r\n".encode()
    data = message(
        sender,
        "alice@smtp-a.test",
        "X-SES-CONFIGURATION-SET: via-smtp",
        "X-SES-MESSAGE-TAGS: campaign=launch",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        body=body,
    )
    code, text = submit_starttls(sesame, sender, "alice@smtp-a.test", data)
    assert code == 250, text
    ok = _OK.match(text)
    assert ok, text
    message_id = ok[1]
    (stored,) = query(
        sesame, "SELECT body, configuration_set, tags FROM messages WHERE id = :m", m=message_id
    )  # the id in the reply is the message's row
    assert stored["configuration_set"] == "via-smtp"  # the X-SES-* fields were honoured …
    assert _json(stored["tags"]) == {"campaign": "launch"}
    got = received_by(sink, "alice@smtp-a.test")
    assert got.data.endswith(bytes(stored["body"]))  # the accepted message, headers only added in front
    assert got.data.endswith(body)  # the 8-bit bytes, dot-stuffing undone, as sent
    assert b"X-SES-" not in got.data.upper()  # … and removed
    assert got.data.startswith(b"DKIM-Signature:") and dkim_verifies(sender, got.data)
    assert [e["type"] for e in events(sesame, message_id)] == ["Delivery"]


def test_aiosmtplib_implicit_tls_auth_plain_delivered(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    dns_server.add("smtp-b.test", "A", "127.0.0.1")
    host, port = sesame.proc.listeners["smtps"]

    async def go() -> str:
        client = aiosmtplib.SMTP(hostname=host, port=port, use_tls=True, tls_context=unverified(), timeout=10)
        async with client:
            await client.ehlo()
            await client.auth_plain(sender.account["AccessKeyId"], sender.account["SmtpPassword"])
            refused, reply = await client.sendmail(
                f"me@{sender.domain}", ["bob@smtp-b.test"], message(sender, "bob@smtp-b.test")
            )
            assert refused == {}
        # QUIT sent, the TLS transport's closing handshake is still under way: let it finish before the
        # loop closes, or its socket is left for the collector (a ResourceWarning in some later test).
        await asyncio.sleep(0.1)
        return reply

    reply = asyncio.run(go())
    ok = _OK.match(reply)
    assert ok, reply
    got = received_by(sink, "bob@smtp-b.test")
    assert dkim_verifies(sender, got.data) and got.data.endswith(b"\r\n\r\nHello.\r\n")
    assert [e["type"] for e in events(sesame, ok[1])] == ["Delivery"]


def test_swaks_starttls_auth_login_delivered(
    sesame: Serve, sender: Sender, sink: SinkServer, dns_server: DnsServer
) -> None:
    swaks = shutil.which("swaks")
    if swaks is None:
        pytest.skip("swaks is not installed (.ci/run installs it: apt-get install swaks)")
    dns_server.add("smtp-d.test", "A", "127.0.0.1")
    host, port = sesame.proc.listeners["smtp"]
    done = subprocess.run(
        [swaks, "--server", f"{host}:{port}", "--tls", "--auth", "LOGIN",
         "--auth-user", sender.account["AccessKeyId"], "--auth-password", sender.account["SmtpPassword"],
         "--from", f"me@{sender.domain}", "--to", "carol@smtp-d.test", "--timeout", "10"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    ok = re.search(r"^<~ +250 Ok (\S+)$", done.stdout, re.M)  # "<~": a reply read over TLS
    assert ok, done.stdout
    got = received_by(sink, "carol@smtp-d.test")
    assert got.mail_from == f"me@{sender.domain}" and dkim_verifies(sender, got.data)
    assert [e["type"] for e in events(sesame, ok[1])] == ["Delivery"]


def test_sigkill_right_after_250_loses_nothing(database: str, tmp_path: Path) -> None:
    """``250 Ok`` comes only once the message and its queue entries are committed: a process killed the
    moment the client has it still leaves the message to be delivered by the next one."""
    with DnsServer() as dns_server, SinkServer("127.0.0.1") as sink:
        env = delivery_env(dns_server, sink)
        data_dir = tmp_path / "data"
        first = SesameProcess(
            "serve", data_dir=data_dir, database=database, env={**env, "SESAME_DELIVERY__ENABLED": "false"}
        )
        with first:
            serve = Serve(first, data_dir, database)
            sender = Sender(serve, dns_server, 990)
            dns_server.add("smtp-c.test", "A", "127.0.0.1")
            host, port = first.listeners["smtp"]
            client = smtplib.SMTP(host, port, timeout=10)
            try:
                client.starttls(context=unverified())
                client.login(sender.account["AccessKeyId"], sender.account["SmtpPassword"])
                client.mail(f"me@{sender.domain}")
                client.rcpt("dan@smtp-c.test")
                code, text = client.data(message(sender, "dan@smtp-c.test"))
                assert first.proc is not None
                first.proc.kill()  # SIGKILL, before QUIT and before anything else can run
                first.proc.wait(10)
            finally:
                client.close()
            assert code == 250, text
            ok = _OK.match(text.decode())
            assert ok, text
        assert sink.messages == []
        queued = query(serve, "SELECT state FROM queue WHERE message_id = :m", m=ok[1])
        assert queued == [{"state": "queued"}]  # committed before the reply, with its queue entry
        with SesameProcess("serve", data_dir=data_dir, database=database, env=env) as second:
            got = received_by(sink, "dan@smtp-c.test", timeout=20)
            assert dkim_verifies(sender, got.data)
            found = events(Serve(second, data_dir, database), ok[1])
            assert [e["type"] for e in found] == ["Delivery"]
        assert len(sink.messages) == 1  # once
