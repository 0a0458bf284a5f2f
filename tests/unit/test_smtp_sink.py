"""The sink SMTP servers end-to-end tests deliver to, driven with aiosmtplib as the engine will be."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from typing import Any

import aiosmtplib
import pytest

from sesame.testing.smtp import Received, SinkServer

MESSAGE = b"From: a@example.com\r\nTo: ok@x.test\r\nSubject: hello\r\n\r\nbody\r\n"


def send(sink: SinkServer, message: bytes = MESSAGE, recipients: list[str] | None = None, **kw: Any) -> Any:
    """aiosmtplib.send to the sink, on a loop of its own."""
    kw.setdefault("timeout", 10)

    async def deliver() -> Any:
        try:
            return await aiosmtplib.send(
                message,
                sender="a@example.com",
                recipients=recipients or ["ok@x.test"],
                hostname=sink.host,
                port=sink.port,
                **kw,
            )
        finally:
            if sink.tls:
                await settle()

    return asyncio.run(deliver())


async def settle() -> None:
    """Lets a closed TLS connection finish its close_notify exchange: asyncio.run would otherwise close
    the loop with the client's socket still open (a ResourceWarning, an error under this suite)."""
    await asyncio.sleep(0.1)


@pytest.fixture
def sink() -> Any:
    with SinkServer() as server:
        yield server


def test_plain_delivery_is_recorded(sink: SinkServer) -> None:
    assert sink.port > 0 and sink.address == ("127.0.0.1", sink.port)
    errors, reply = send(sink, local_hostname="engine.sesame.test")
    assert errors == {}
    assert reply.startswith("2.0.0 Ok: queued as")
    [message] = sink.wait_for(1)
    assert isinstance(message, Received)
    assert message.mail_from == "a@example.com"
    assert message.rcpt_tos == ["ok@x.test"]
    assert message.data == MESSAGE
    assert message.tls is False
    assert message.peer[0] == "127.0.0.1" and message.peer[1] > 0
    assert message.connection_id == 1
    assert message.helo == "engine.sesame.test"
    assert sink.connections == 1
    assert sink.rejected == []


def test_data_is_byte_exact_with_dots_and_8bit(sink: SinkServer) -> None:
    message = (
        b"From: a@example.com\r\n"
        b"Subject: folded\r\n  over two lines\r\n"
        b"\r\n"
        b".a line starting with a dot\r\n"
        b"..two dots\r\n"
        b".\r\n"  # a lone dot inside the message: must not end DATA
        b"trailing spaces   \r\n"
        + "8-bit: Grüße — ✓\r\n".encode()
        + bytes(range(0x80, 0x100))
        + b"\r\n\r\n\r\n"
    )
    send(sink, message, mail_options=["BODY=8BITMIME"])
    [received] = sink.wait_for(1)
    assert received.data == message
    assert "BODY=8BITMIME" in received.mail_options


def test_lf_line_ends_arrive_as_crlf(sink: SinkServer) -> None:
    send(sink, MESSAGE.replace(b"\r\n", b"\n"))
    assert sink.wait_for(1)[0].data == MESSAGE


def test_banner_and_ehlo_use_the_hostname() -> None:
    async def session(sink: SinkServer) -> tuple[str, str]:
        smtp = aiosmtplib.SMTP(hostname=sink.host, port=sink.port, start_tls=False, timeout=10)
        banner = await smtp.connect()
        ehlo = await smtp.ehlo()
        await smtp.quit()
        return banner.message, ehlo.message

    with SinkServer(hostname="mx.example.test") as sink:
        banner, ehlo = asyncio.run(session(sink))
    assert banner.startswith("mx.example.test")
    assert ehlo.startswith("mx.example.test")


# -- TLS ------------------------------------------------------------------------------------------


def test_starttls_with_the_self_signed_certificate() -> None:
    with SinkServer(tls=True) as sink:
        assert sink.certificate_path is not None and sink.certificate_path.exists()
        send(sink, validate_certs=False)
        [message] = sink.wait_for(1)
        assert message.tls is True
        assert message.data == MESSAGE
        assert message.peer[0] == "127.0.0.1"
        assert sink.connections == 1  # the upgrade is the same connection
        certificate = sink.certificate_path
    assert not certificate.exists()  # the temp dir goes with the sink


def test_certificate_verifies_against_its_own_pem() -> None:
    with SinkServer(tls=True) as sink:
        assert sink.certificate_path is not None
        send(sink, validate_certs=True, cert_bundle=str(sink.certificate_path))  # IP SAN: 127.0.0.1
        assert sink.wait_for(1)[0].tls
        with pytest.raises((ssl.SSLCertVerificationError, aiosmtplib.SMTPException)):
            send(sink, validate_certs=True)  # not in the system's trust store
        assert len(sink.messages) == 1


def test_tls_is_optional_unless_required() -> None:
    with SinkServer(tls=True) as sink:
        send(sink, start_tls=False)
        assert sink.wait_for(1)[0].tls is False
    with SinkServer(tls=True, require_tls=True) as sink:
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            send(sink, start_tls=False)
        assert refused.value.code == 530
        send(sink, validate_certs=False)
        assert [m.tls for m in sink.wait_for(1)] == [True]


def test_require_tls_needs_tls() -> None:
    with pytest.raises(ValueError):
        SinkServer(require_tls=True)


# -- replies --------------------------------------------------------------------------------------


def test_per_recipient_replies() -> None:
    replies = {"full@x.test": (452, "4.2.2 Mailbox full"), "Gone@X.test": (550, "5.1.1 No such user")}
    with SinkServer(replies=replies) as sink:
        errors, _ = send(sink, recipients=["ok@x.test", "full@x.test", "gone@x.test"])
        assert {rcpt: (r.code, r.message) for rcpt, r in errors.items()} == {
            "full@x.test": (452, "4.2.2 Mailbox full"),
            "gone@x.test": (550, "5.1.1 No such user"),
        }
        [message] = sink.wait_for(1)
        assert message.rcpt_tos == ["ok@x.test"]

        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as all_refused:
            send(sink, recipients=["full@x.test", "gone@x.test"])
        assert sorted(e.code for e in all_refused.value.recipients) == [452, 550]
        assert len(sink.messages) == 1


def test_single_recipient_refusals_raise_with_their_code() -> None:
    async def rcpt(sink: SinkServer, address: str) -> None:
        async with aiosmtplib.SMTP(hostname=sink.host, port=sink.port, timeout=10) as smtp:
            await smtp.mail("a@example.com")
            await smtp.rcpt(address)

    with SinkServer(replies={"full@x.test": (452, "4.2.2 Mailbox full")}) as sink:
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as temporary:
            asyncio.run(rcpt(sink, "full@x.test"))
        assert (temporary.value.code, temporary.value.message) == (452, "4.2.2 Mailbox full")
        assert temporary.value.recipient == "full@x.test"

        sink.reply_for("later@x.test", 550, "5.7.1 Rejected by policy")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as permanent:
            asyncio.run(rcpt(sink, "later@x.test"))
        assert permanent.value.code == 550

        sink.reply_for("full@x.test", 250, "2.1.5 Room again")  # a 2xx reply accepts
        send(sink, recipients=["full@x.test"])
        assert sink.wait_for(1)[0].rcpt_tos == ["full@x.test"]


@pytest.mark.parametrize("code", [451, 554])
def test_data_reply(code: int) -> None:
    with SinkServer(data_reply=(code, f"{code // 100}.6.0 Content rejected")) as sink:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            send(sink)
        assert refused.value.code == code
        assert refused.value.message == f"{code // 100}.6.0 Content rejected"
        assert sink.messages == []
        [rejected] = sink.rejected
        assert rejected.data == MESSAGE
        sink.data_reply = None  # may be changed on a running sink
        send(sink)
        assert len(sink.wait_for(1)) == 1


def test_size_is_advertised_and_enforced() -> None:
    async def extensions(sink: SinkServer) -> dict[str, str]:
        async with aiosmtplib.SMTP(hostname=sink.host, port=sink.port, start_tls=False, timeout=10) as smtp:
            await smtp.ehlo()
            return dict(smtp.esmtp_extensions)

    with SinkServer(size_limit=1000) as sink:
        assert asyncio.run(extensions(sink))["size"] == "1000"
        send(sink)
        big = MESSAGE + b"x" * 100 + b"\r\n" * 10 + (b"y" * 98 + b"\r\n") * 10
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            send(sink, big)
        assert refused.value.code == 552
        assert len(sink.messages) == 1
    with SinkServer() as sink:
        assert "size" not in asyncio.run(extensions(sink))


# -- connections ----------------------------------------------------------------------------------


def test_several_messages_over_one_connection_count_as_one(sink: SinkServer) -> None:
    async def deliver(count: int) -> None:
        async with aiosmtplib.SMTP(hostname=sink.host, port=sink.port, timeout=10) as smtp:
            for i in range(count):
                await smtp.sendmail("a@example.com", [f"r{i}@x.test"], MESSAGE)

    asyncio.run(deliver(3))
    assert sink.connections == 1
    messages = sink.wait_for(3)
    assert [m.rcpt_tos for m in messages] == [["r0@x.test"], ["r1@x.test"], ["r2@x.test"]]
    assert {m.connection_id for m in messages} == {1}
    asyncio.run(deliver(1))
    assert sink.connections == 2
    assert sink.wait_for(4)[-1].connection_id == 2


def test_max_messages_per_connection() -> None:
    async def deliver(sink: SinkServer) -> list[str]:
        outcomes = []
        smtp = aiosmtplib.SMTP(hostname=sink.host, port=sink.port, timeout=10)
        await smtp.connect()
        try:
            for i in range(3):
                try:
                    await smtp.sendmail("a@example.com", [f"r{i}@x.test"], MESSAGE)
                    outcomes.append("sent")
                except aiosmtplib.SMTPResponseException as exc:
                    outcomes.append(str(exc.code))
        finally:
            smtp.close()
        return outcomes

    with SinkServer(max_messages_per_connection=2) as sink:
        assert asyncio.run(deliver(sink)) == ["sent", "sent", "421"]
        assert len(sink.messages) == 2
        send(sink)  # a new connection may send again
        assert len(sink.wait_for(3)) == 3
        assert sink.connections == 2


def test_bind_to_another_loopback_address_and_given_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.2", 0))
        free = probe.getsockname()[1]
    with SinkServer("127.0.0.2", free) as sink:
        assert sink.address == ("127.0.0.2", free)
        send(sink)
        assert sink.wait_for(1)[0].peer[0] == "127.0.0.1"  # the client's source address


def test_two_sinks_side_by_side() -> None:
    with SinkServer("127.0.0.3") as one, SinkServer("127.0.0.4", hostname="two.test") as two:
        send(one)
        send(two, recipients=["b@y.test"])
        assert [m.rcpt_tos for m in one.wait_for(1)] == [["ok@x.test"]]
        assert [m.rcpt_tos for m in two.wait_for(1)] == [["b@y.test"]]


# -- waiting, clearing, stopping ------------------------------------------------------------------


def test_wait_for_times_out(sink: SinkServer) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="0 of 1 messages"):
        sink.wait_for(1, timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 2
    with pytest.raises(TimeoutError):
        sink.wait_for(1, timeout=0)


def test_wait_for_wakes_when_messages_arrive_from_another_thread(sink: SinkServer) -> None:
    def later() -> None:
        time.sleep(0.2)
        send(sink)
        send(sink)

    thread = threading.Thread(target=later)
    thread.start()
    try:
        started = time.monotonic()
        assert len(sink.wait_for(2, timeout=10)) == 2
        assert time.monotonic() - started < 5
    finally:
        thread.join()
    assert sink.wait_for(1) == sink.messages  # already there: every message so far, at once


def test_clear(sink: SinkServer) -> None:
    send(sink)
    sink.wait_for(1)
    sink.clear()
    assert sink.messages == [] and sink.connections == 0
    send(sink)
    [message] = sink.wait_for(1)
    assert sink.connections == 1
    assert message.connection_id == 2  # connection ids are never reused


def test_stop_closes_the_port_and_open_connections() -> None:
    async def scenario() -> float:
        sink = SinkServer(tls=True).start()
        smtp = aiosmtplib.SMTP(hostname=sink.host, port=sink.port, validate_certs=False, timeout=10)
        await smtp.connect()  # STARTTLS done, connection left open
        await smtp.noop()
        started = time.monotonic()
        sink.stop()
        took = time.monotonic() - started
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await smtp.noop()
        smtp.close()
        await settle()
        with pytest.raises(OSError):
            socket.create_connection(sink.address, timeout=2).close()
        sink.stop()  # twice is harmless
        return took

    assert asyncio.run(scenario()) < 3


def test_restart_on_a_new_port() -> None:
    sink = SinkServer()
    with sink:
        first = sink.port
        send(sink)
    assert sink.port == 0
    with sink:
        assert sink.port > 0
        send(sink)
        assert len(sink.wait_for(2)) == 2  # what it recorded stays until clear()
    assert first > 0
