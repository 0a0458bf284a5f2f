"""The SES SMTP interface of ``sesame serve``: smtplib and raw sockets against the real listeners.

Every accepted message is read back from the database the server wrote it to; a refusal must leave
nothing there. Both databases (module_database).
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sesame.smtp.credentials import smtp_password
from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess
from tests.conftest import Serve, query, query_url
from tests.conftest import client as aws_client

TRUSTED_ACCOUNT = "444455556666"  # what clients from 127.0.0.2 send as, without AUTH
UNVERIFIED = ssl._create_unverified_context()  # the generated certificate is self-signed
_n = iter(range(1000))


@pytest.fixture(scope="module")
def smtp(
    module_database: str, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    env = {
        "SESAME_DNS__NAMESERVERS": dns_server.address,
        "SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0",
        "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024",
        "SESAME_DELIVERY__ENABLED": "false",  # what is accepted stays in the queue to be looked at
        "SESAME_SMTP__IDLE_TIMEOUT": "2",
        "SESAME_SMTP__MAX_CONNECTIONS_PER_IP": "10",
        "SESAME_SMTP__TRUSTED_NETWORKS": f"127.0.0.2/32={TRUSTED_ACCOUNT}",
    }
    data_dir = tmp_path_factory.mktemp("smtp")
    with SesameProcess("serve", data_dir=data_dir, database=module_database, env=env) as proc:
        yield Serve(proc, data_dir, module_database)


class Account:
    """An account with a verified domain; production (unlimited) unless ``sandbox``."""

    def __init__(
        self,
        serve: Serve,
        dns_server: DnsServer,
        *,
        sandbox: bool = False,
        account_id: str | None = None,
        **update: str,
    ) -> None:
        n = next(_n)
        given_id = ["--id", account_id] if account_id else []
        self.json = json.loads(serve.cli("accounts", "create", f"smtp{n}", *given_id))
        self.id, self.key = self.json["AccountId"], self.json["AccessKeyId"]
        self.password = self.json["SmtpPassword"]
        limits = [f"--{k.replace('_', '-')}={v}" for k, v in update.items()]
        limits = limits or ["--max-send-rate=-1", "--max-24-hour-send=-1"]
        serve.cli("accounts", "update", self.id, "--sandbox" if sandbox else "--production", *limits)
        self.v2 = serve.client("sesv2", self.json)
        self.domain = f"smtp{n}.test"
        self.v2.create_email_identity(EmailIdentity=self.domain)
        dns_server.add_zone_lines(serve.cli("identities", "records", self.domain, "--account", self.id))
        assert self.v2.get_email_identity(EmailIdentity=self.domain)["VerificationStatus"] == "SUCCESS"
        self.sender = f"me@{self.domain}"


@pytest.fixture(scope="module")
def account(smtp: Serve, dns_server: DnsServer) -> Account:
    return Account(smtp, dns_server)


def port(serve: Serve, name: str = "smtp") -> int:
    return serve.proc.listeners[name][1]


def message(
    sender: str, to: str = "rcpt@example.net", body: str = "Hello over SMTP.", **headers: str
) -> bytes:
    fields = {"From": sender, "To": to, "Subject": "smtp test", **headers}
    head = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in fields.items())
    return f"{head}\r\n{body}\r\n".encode()


def login(
    serve: Serve, account: Account, *, tls: str = "starttls", source: str = "127.0.0.1"
) -> smtplib.SMTP:
    if tls == "implicit":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            "127.0.0.1", port(serve, "smtps"), context=UNVERIFIED, timeout=10
        )
    else:
        client = smtplib.SMTP("127.0.0.1", port(serve), timeout=10, source_address=(source, 0))
        client.starttls(context=UNVERIFIED)
    try:
        client.login(account.key, account.password)
    except BaseException:
        client.close()
        raise
    return client


def stored(serve: Serve, message_id: str) -> dict[str, Any]:
    rows = query(serve, "SELECT * FROM messages WHERE id = :m", m=message_id)
    assert len(rows) == 1, message_id
    return rows[0]


def count_from(serve: Serve, sender: str) -> int:
    return len(query(serve, "SELECT id FROM messages WHERE source = :s", s=sender))


def message_id_of(reply: bytes) -> str:
    text = reply.decode()
    assert text.startswith("Ok "), text
    return text[3:]


_open: list[Raw] = []


@pytest.fixture(autouse=True)
def _close_raw_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


class Raw:
    """A client on a socket, for what smtplib will not send: pipelined batches, bare line feeds.
    Closed after each test."""

    def __init__(self, serve: Serve, *, source: str = "127.0.0.1", name: str = "smtp") -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(
            ("127.0.0.1", port(serve, name)), timeout=10, source_address=(source, 0)
        )
        _open.append(self)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[int, str]:
        """One (possibly multi-line) reply: its code and its lines' texts, joined by newlines."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"closed after {lines!r}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode())
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(x[4:] for x in lines)

    def command(self, line: str) -> tuple[int, str]:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def starttls(self) -> None:
        assert self.command("STARTTLS")[0] == 220
        self.sock = UNVERIFIED.wrap_socket(self.sock, server_hostname="localhost")

    def login(self, account: Account) -> None:
        assert self.command("EHLO client.test")[0] == 250
        self.starttls()
        assert self.command("EHLO client.test")[0] == 250
        assert self.command(f"AUTH LOGIN {_b64(account.key)}")[0] == 334
        assert self.command(_b64(account.password)) == (235, "Authentication successful.")

    def closed(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ConnectionError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.sock.close()


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


# -- the dialogue and authentication ---------------------------------------------------------------


def test_starttls_auth_login_and_send(smtp: Serve, account: Account) -> None:
    with smtplib.SMTP("127.0.0.1", port(smtp), timeout=10) as client:
        code, text = client.ehlo("client.test")
        assert code == 250
        features = text.decode().splitlines()
        assert "STARTTLS" in features and "8BITMIME" in features and "SIZE 41943040" in features
        assert "PIPELINING" in features
        assert not any(f.startswith("AUTH") for f in features)  # no credentials in clear
        client.starttls(context=UNVERIFIED)
        code, text = client.ehlo("client.test")
        features = text.decode().splitlines()
        assert "AUTH PLAIN LOGIN" in features and "STARTTLS" not in features
        client.login(account.key, account.password)
        raw = message(account.sender, "Friend <friend@example.net>", X_SES_MESSAGE_TAGS="campaign=launch")
        client.mail(account.sender)
        client.rcpt("friend@example.net")
        client.rcpt("other@example.org")
        code, reply = client.data(raw)
        assert code == 250
        message_id = message_id_of(reply)
        assert len(message_id) == 60 and message_id.endswith("-000000")  # SES's shape
        assert client.quit()[0] == 221
    row = stored(smtp, message_id)
    assert row["operation"] == "SendRawEmail" and row["source"] == account.sender
    body = bytes(row["body"])
    assert b"X-SES-" not in body and b"\r\nSubject: smtp test\r\n" in body
    tags = json.loads(row["tags"]) if isinstance(row["tags"], str) else row["tags"]
    assert tags == {"campaign": "launch"}
    entries = query(
        smtp, "SELECT recipient FROM queue WHERE message_id = :m ORDER BY recipient", m=message_id
    )
    assert [e["recipient"] for e in entries] == ["friend@example.net", "other@example.org"]


def test_implicit_tls_auth_plain(smtp: Serve, account: Account) -> None:
    with login(smtp, account, tls="implicit") as client:
        assert isinstance(client.sock, ssl.SSLSocket)
        refused = client.sendmail(account.sender, ["x@example.net"], message(account.sender))
        assert refused == {}


def test_auth_needs_tls_and_mail_needs_auth(smtp: Serve, account: Account) -> None:
    raw = Raw(smtp)
    assert raw.greeting[0] == 220
    assert raw.command("EHLO client.test")[0] == 250
    assert raw.command(f"AUTH PLAIN {_b64(chr(0) + account.key + chr(0) + account.password)}") == (
        530,
        "Must issue a STARTTLS command first",
    )
    assert raw.command(f"MAIL FROM:<{account.sender}>") == (530, "Authentication required")
    raw.starttls()
    assert raw.command("EHLO client.test")[0] == 250
    assert raw.command(f"MAIL FROM:<{account.sender}>") == (530, "Authentication required")
    raw.close()


# Failed logins slow their address down: each test that fails one connects from an address of its own.
@pytest.mark.parametrize(
    ("case", "source"),
    [
        ("wrong", "127.0.1.1"),
        ("other-region", "127.0.1.2"),
        ("unknown-key", "127.0.1.3"),
        ("legacy", "127.0.1.4"),
    ],
)
def test_bad_credentials_are_535(smtp: Serve, account: Account, case: str, source: str) -> None:
    from sesame.smtp.credentials import legacy_smtp_password

    user, password = account.key, account.password
    if case == "wrong":
        password = password[:-2] + ("AA" if not password.endswith("AA") else "BB")
    elif case == "other-region":
        password = smtp_password(account.json["SecretAccessKey"], "eu-west-1")
    elif case == "unknown-key":
        user = "AKIA" + "Z" * 16
    else:
        password = legacy_smtp_password(account.json["SecretAccessKey"])
    with smtplib.SMTP("127.0.0.1", port(smtp), timeout=10, source_address=(source, 0)) as client:
        client.starttls(context=UNVERIFIED)
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login(user, password)
        assert refused.value.smtp_code == 535
        assert refused.value.smtp_error == b"Authentication Credentials Invalid"


def test_a_disabled_key_is_refused_at_its_next_login(smtp: Serve, dns_server: DnsServer) -> None:
    acct = Account(smtp, dns_server)
    login(smtp, acct).quit()
    smtp.cli("accounts", "disable-key", acct.key)
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        login(smtp, acct, source="127.0.1.5")
    assert refused.value.smtp_code == 535


def test_repeated_failures_are_slowed_down(smtp: Serve, account: Account) -> None:
    with smtplib.SMTP("127.0.0.1", port(smtp), timeout=30, source_address=("127.0.1.6", 0)) as client:
        client.starttls(context=UNVERIFIED)
        client.ehlo()
        started = time.monotonic()
        for _ in range(2):
            code, _ = client.docmd("AUTH", f"PLAIN {_b64(chr(0) + account.key + chr(0) + 'x' * 44)}")
            assert code == 535
        assert time.monotonic() - started >= 3.0  # one second, then two: no guessing at line speed


# -- SES's refusals --------------------------------------------------------------------------------


def test_unverified_sender_is_554_message_rejected(smtp: Serve, account: Account) -> None:
    with login(smtp, account) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("someone@unverified.test", ["x@example.net"], message("someone@unverified.test"))
    assert refused.value.smtp_code == 554
    assert refused.value.smtp_error.decode() == (
        "Message rejected: Email address is not verified. The following identities failed the check in "
        "region US-EAST-1: someone@unverified.test"
    )
    assert count_from(smtp, "someone@unverified.test") == 0


def test_sandbox_recipient_is_refused(smtp: Serve, dns_server: DnsServer) -> None:
    acct = Account(smtp, dns_server, sandbox=True)
    with login(smtp, acct) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(acct.sender, ["stranger@example.net"], message(acct.sender))
        assert refused.value.smtp_code == 554 and b"stranger@example.net" in refused.value.smtp_error
        assert (
            client.sendmail(acct.sender, [f"peer@{acct.domain}"], message(acct.sender, f"peer@{acct.domain}"))
            == {}
        )


def test_daily_quota_is_454_per_recipient(smtp: Serve, dns_server: DnsServer) -> None:
    acct = Account(smtp, dns_server, max_send_rate="-1", max_24_hour_send="2")
    with login(smtp, acct) as client:
        assert client.sendmail(acct.sender, ["a@example.net", "b@example.net"], message(acct.sender)) == {}
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(acct.sender, ["c@example.net"], message(acct.sender))
    assert (refused.value.smtp_code, refused.value.smtp_error) == (
        454,
        b"Throttling failure: Daily message quota exceeded.",
    )
    assert count_from(smtp, acct.sender) == 1


def test_configuration_set_header_is_honoured(smtp: Serve, account: Account) -> None:
    account.v2.create_configuration_set(
        ConfigurationSetName="paused-set", SendingOptions={"SendingEnabled": False}
    )
    account.v2.create_configuration_set(ConfigurationSetName="open-set")
    with login(smtp, account) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(
                account.sender,
                ["x@example.net"],
                message(account.sender, X_SES_CONFIGURATION_SET="paused-set"),
            )
        assert refused.value.smtp_code == 554
        assert (
            refused.value.smtp_error
            == b"Message rejected: Sending is paused for configuration set paused-set."
        )
        client.mail(account.sender)
        client.rcpt("x@example.net")
        code, reply = client.data(message(account.sender, X_SES_CONFIGURATION_SET="open-set"))
        assert code == 250
    row = stored(smtp, message_id_of(reply))
    assert row["configuration_set"] == "open-set" and b"X-SES" not in bytes(row["body"])


def test_size_limit_at_mail_and_after_data(smtp: Serve, dns_server: DnsServer) -> None:
    account = Account(smtp, dns_server)
    raw = Raw(smtp)
    raw.login(account)
    assert raw.command(f"MAIL FROM:<{account.sender}> SIZE=41943041") == (552, "Message is too long.")
    assert raw.command(f"MAIL FROM:<{account.sender}> SIZE=2000") == (250, "Ok")
    assert raw.command("RCPT TO:<x@example.net>") == (250, "Ok")
    assert raw.command("DATA")[0] == 354
    head = message(account.sender)
    line = b"x" * 998 + b"\r\n"
    chunk = line * 1024  # 1 MiB
    raw.send(head)
    for _ in range(41):
        raw.send(chunk)
    raw.send(b".\r\n")
    assert raw.reply() == (552, "Message is too long.")
    assert raw.command("NOOP") == (250, "Ok")  # the session goes on
    raw.close()
    assert count_from(smtp, account.sender) == 0


def test_recipient_limit_and_bad_addresses(smtp: Serve, account: Account) -> None:
    raw = Raw(smtp)
    raw.login(account)
    assert raw.command("MAIL FROM:<not an address>") == (553, "<not an address> Invalid email address")
    assert raw.command(f"MAIL FROM:<{account.sender}>") == (250, "Ok")
    assert raw.command("RCPT TO:<bad@@example.net>") == (553, "<bad@@example.net> address unknown")
    for i in range(50):
        assert raw.command(f"RCPT TO:<r{i}@example.net>") == (250, "Ok")
    assert raw.command("RCPT TO:<r50@example.net>") == (452, "4.5.3 Recipient count exceeds 50.")
    assert raw.command("DATA")[0] == 354
    raw.send(message(account.sender) + b".\r\n")
    code, text = raw.reply()
    assert code == 250
    entries = query(smtp, "SELECT recipient FROM queue WHERE message_id = :m", m=message_id_of(text.encode()))
    assert len(entries) == 50
    raw.close()


# -- robustness ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "smuggled",
    [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r"],
    ids=["lf-dot-lf", "lf-dot-crlf", "cr-dot-cr", "crlf-dot-cr"],
)
def test_smtp_smuggling_is_refused(smtp: Serve, account: Account, smuggled: bytes) -> None:
    raw = Raw(smtp)
    raw.login(account)
    hidden = f"MAIL FROM:<{account.sender}>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n".encode()
    data = message(account.sender, body="first") + smuggled + hidden + message("ceo@example.com") + b".\r\n"
    raw.send(f"MAIL FROM:<{account.sender}>\r\nRCPT TO:<x@example.net>\r\nDATA\r\n".encode())
    assert [raw.reply()[0] for _ in range(3)] == [250, 250, 354]
    raw.send(data)
    code, text = raw.reply()
    assert code == 554 and "bare CR or LF" in text
    assert raw.command("NOOP") == (250, "Ok")  # the smuggled commands were data, never run
    raw.close()
    assert not query(smtp, "SELECT message_id FROM queue WHERE recipient = 'victim@example.net'")


def test_pipelined_commands_are_answered_in_order(smtp: Serve, account: Account) -> None:
    raw = Raw(smtp)
    raw.login(account)
    raw.send(
        f"MAIL FROM:<{account.sender}>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<bad address>\r\n"
        "RCPT TO:<b@example.net>\r\nDATA\r\n".encode()
    )
    assert [raw.reply()[0] for _ in range(5)] == [250, 250, 553, 250, 354]
    body = "8-bit body: Grüße, naïve café\r\n..a stuffed dot\r\n"
    raw.send(message(account.sender, body=body) + b".\r\nNOOP\r\nQUIT\r\n")
    code, text = raw.reply()
    assert code == 250
    assert raw.reply() == (250, "Ok") and raw.reply() == (221, "Bye")
    row = stored(smtp, message_id_of(text.encode()))
    assert bytes(row["body"]).endswith("\r\n8-bit body: Grüße, naïve café\r\n.a stuffed dot\r\n\r\n".encode())


def test_commands_pipelined_after_starttls_are_dropped(smtp: Serve, account: Account) -> None:
    raw = Raw(smtp)
    assert raw.command("EHLO client.test")[0] == 250
    raw.send(b"STARTTLS\r\nRSET\r\nNOOP\r\n")  # CVE-2011-0411: these must not be answered after TLS
    assert raw.reply()[0] == 220
    raw.sock = UNVERIFIED.wrap_socket(raw.sock, server_hostname="localhost")
    assert raw.command("EHLO again.test")[0] == 250  # the first reply over TLS is to this EHLO
    raw.close()


def test_long_lines_are_refused(smtp: Serve, account: Account) -> None:
    raw = Raw(smtp)
    raw.login(account)
    assert raw.command("NOOP " + "x" * 600)[0] == 500
    assert raw.command(f"MAIL FROM:<{account.sender}>") == (250, "Ok")
    assert raw.command("RCPT TO:<x@example.net>") == (250, "Ok")
    assert raw.command("DATA")[0] == 354
    raw.send(message(account.sender, body="y" * 1001) + b".\r\n")
    code, text = raw.reply()
    assert code == 554 and "longer than 1000" in text
    raw.close()


def test_a_client_gone_mid_data_leaves_nothing(smtp: Serve, dns_server: DnsServer) -> None:
    acct = Account(smtp, dns_server)
    raw = Raw(smtp)
    raw.login(acct)
    raw.send(f"MAIL FROM:<{acct.sender}>\r\nRCPT TO:<x@example.net>\r\nDATA\r\n".encode())
    assert [raw.reply()[0] for _ in range(3)] == [250, 250, 354]
    raw.send(message(acct.sender))  # no final dot
    raw.close()
    time.sleep(0.5)
    assert count_from(smtp, acct.sender) == 0


def test_an_idle_client_is_told_451_and_closed(smtp: Serve) -> None:
    raw = Raw(smtp)
    assert raw.command("EHLO client.test")[0] == 250
    started = time.monotonic()
    assert raw.reply() == (451, "4.4.2 Timeout waiting for data from client.")
    assert 1.5 < time.monotonic() - started < 10
    assert raw.closed()


def test_too_many_connections_from_one_address(smtp: Serve) -> None:
    clients = [Raw(smtp, source="127.0.0.3") for _ in range(10)]
    assert all(c.greeting[0] == 220 for c in clients)
    extra = Raw(smtp, source="127.0.0.3")
    assert extra.greeting == (421, "Too many concurrent SMTP connections")
    assert extra.closed()
    assert Raw(smtp, source="127.0.0.4").greeting[0] == 220  # others are not held back
    for c in clients:
        c.close()


def test_a_trusted_network_sends_without_auth(smtp: Serve, dns_server: DnsServer) -> None:
    trusted = Account(smtp, dns_server, account_id=TRUSTED_ACCOUNT)
    raw = Raw(smtp, source="127.0.0.2")
    assert raw.command("EHLO relay.test")[0] == 250
    assert raw.command(f"MAIL FROM:<{trusted.sender}>") == (250, "Ok")  # no AUTH asked
    assert raw.command("RCPT TO:<x@example.net>") == (250, "Ok")
    assert raw.command("DATA")[0] == 354
    raw.send(message(trusted.sender) + b".\r\n")
    code, text = raw.reply()
    assert code == 250
    assert stored(smtp, message_id_of(text.encode()))["account_id"] == TRUSTED_ACCOUNT
    # Its checks apply: a sender it has not verified is refused.
    assert raw.command("MAIL FROM:<app@nowhere.test>") == (250, "Ok")
    assert raw.command("RCPT TO:<x@example.net>") == (250, "Ok")
    assert raw.command("DATA")[0] == 354
    raw.send(message("app@nowhere.test") + b".\r\n")
    code, text = raw.reply()
    assert code == 554 and "not verified" in text
    # Another address is not trusted.
    other = Raw(smtp)
    assert other.command("EHLO x")[0] == 250
    assert other.command(f"MAIL FROM:<{trusted.sender}>") == (530, "Authentication required")


def test_dev_mode_takes_any_credentials_in_clear(dev: SesameProcess) -> None:
    v2 = aws_client("sesv2", dev.endpoint, "111122223333", "x")
    v2.create_email_identity(EmailIdentity="dev-smtp.test")
    with smtplib.SMTP("127.0.0.1", dev.listeners["smtp"][1], timeout=10) as client:
        client.login("111122223333", "anything")  # offered without TLS in dev
        assert client.sendmail("me@dev-smtp.test", ["x@example.net"], message("me@dev-smtp.test")) == {}
    with smtplib.SMTP("127.0.0.1", dev.listeners["smtp"][1], timeout=10) as client:
        # no AUTH at all: the default account, which has no identity here
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("me@dev-smtp.test", ["x@example.net"], message("me@dev-smtp.test"))
        assert refused.value.smtp_code == 554


# -- stopping and failing --------------------------------------------------------------------------


def test_sigterm_tells_idle_sessions_421_and_exits_cleanly(tmp_path: Any) -> None:
    proc = SesameProcess("dev", data_dir=tmp_path).start()
    try:
        host, smtp_port = proc.listeners["smtp"]
        with socket.create_connection((host, smtp_port), timeout=10) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"220 ")
            sock.sendall(b"EHLO client.test\r\n")
            while not reader.readline().startswith(b"250 "):
                pass
            proc.proc.terminate()  # type: ignore[union-attr]
            assert reader.readline() == b"421 Service shutting down\r\n"
            assert reader.readline() == b""  # and closed
            reader.close()
        assert proc.proc.wait(20) == 0  # type: ignore[union-attr]
    finally:
        proc.stop()


def test_database_down_is_451_and_the_client_retries(tmp_path: Any) -> None:
    """PostgreSQL refusing connections: a submission gets 451 (retry later), nothing half-queued; once
    the database is back, the same submission goes through."""
    import asyncio

    import asyncpg

    from sesame.testing.databases import POSTGRES, temporary_database

    async def admin(*sql: str) -> None:
        conn = await asyncpg.connect(f"{POSTGRES}/postgres")
        try:
            for statement in sql:
                await conn.execute(statement)
        finally:
            await conn.close()

    with temporary_database("postgresql", tmp_path) as url:
        name = url.rpartition("/")[2]
        with SesameProcess("dev", data_dir=tmp_path / "data", database=url) as proc:
            host = proc.listeners["smtp"][0]
            v2 = aws_client("sesv2", proc.endpoint)
            v2.create_email_identity(EmailIdentity="down.test")
            raw = message("me@down.test")
            with smtplib.SMTP(host, proc.listeners["smtp"][1], timeout=20) as client:
                assert client.sendmail("me@down.test", ["x@example.net"], raw) == {}
                asyncio.run(
                    admin(
                        f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
                        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
                    )
                )
                with pytest.raises(smtplib.SMTPDataError) as refused:
                    client.sendmail("me@down.test", ["y@example.net"], raw)
                assert (refused.value.smtp_code, refused.value.smtp_error) == (
                    451,
                    b"Temporary service failure",
                )
                client.rset()
                asyncio.run(admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
                deadline = time.monotonic() + 10
                while True:  # as a client does: retry the 4xx
                    try:
                        assert client.sendmail("me@down.test", ["y@example.net"], raw) == {}
                        break
                    except smtplib.SMTPDataError as exc:
                        assert exc.smtp_code == 451 and time.monotonic() < deadline
                        client.rset()
                        time.sleep(0.2)
        messages = query_url(url, "SELECT id FROM messages")
        entries = query_url(url, "SELECT recipient FROM queue ORDER BY recipient")
    assert len(messages) == 2 and [e["recipient"] for e in entries] == ["x@example.net", "y@example.net"]


def test_sending_authorization_headers(smtp: Serve, dns_server: DnsServer) -> None:
    owner, delegate = Account(smtp, dns_server), Account(smtp, dns_server)
    arn = f"arn:aws:ses:us-east-1:{owner.id}:identity/{owner.domain}"
    sender = f"billing@{owner.domain}"
    raw = message(sender, X_SES_SOURCE_ARN=arn)
    with login(smtp, delegate) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(sender, ["x@example.net"], raw)
        assert refused.value.smtp_code == 554
        assert refused.value.smtp_error.decode() == (
            f"Access denied: User arn:aws:iam::{delegate.id}:root is not authorized to perform "
            f"ses:SendRawEmail on resource {arn}"
        )
        statement = {"Effect": "Allow", "Principal": {"AWS": delegate.id}, "Action": "ses:SendRawEmail"}
        owner.v2.create_email_identity_policy(
            EmailIdentity=owner.domain,
            PolicyName="delegate",
            Policy=json.dumps({"Version": "2012-10-17", "Statement": [{**statement, "Resource": arn}]}),
        )
        client.mail(sender)
        client.rcpt("x@example.net")
        code, reply = client.data(raw)
        assert code == 250
    row = stored(smtp, message_id_of(reply))
    assert row["account_id"] == delegate.id and b"X-SES-SOURCE-ARN" not in bytes(row["body"])
