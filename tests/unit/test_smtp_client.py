"""The SMTP client against real servers on loopback: pipelining, per-recipient replies, DATA encoding."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from sesame.mta.reply import SmtpReply
from sesame.mta.routing import Hop
from sesame.mta.smtp_client import (
    ConnectFailed,
    ConnectionCache,
    Transaction,
    UnsafeCommand,
    data_block,
)
from sesame.testing.smtp import SinkServer

MESSAGE = b"From: a@example.com\nTo: ok@x.test\nSubject: dots\n\n.leading dot\nmiddle\n..two dots\nend"


def cache(**kw: Any) -> ConnectionCache:
    return ConnectionCache(**{"helo": "client.test", "connect_timeout": 5, "command_timeout": 5, **kw})


def send(hop: Hop, recipients: list[str], data: bytes = MESSAGE, **kw: Any) -> tuple[Transaction, int]:
    async def go() -> tuple[Transaction, int]:
        c = cache()
        try:
            tx = await c.send(hop, mail_from="bounce@example.com", recipients=recipients, data=data,
                              require_tls=False, **kw)  # fmt: skip
            return tx, c.opened
        finally:
            await c.close()

    return asyncio.run(go())


class Scripted:
    """A raw SMTP server that answers by a script and records each chunk it read, to see what the client
    wrote in one go. ``answer`` gets each command (``"."`` for the end of a message) and returns the
    reply lines to send, or None to close the connection without a reply."""

    def __init__(
        self, answer: Callable[[str], str | None], ehlo: str = "250-scripted\r\n250 PIPELINING"
    ) -> None:
        self.answer = answer
        self.ehlo = ehlo
        self.chunks: list[bytes] = []
        self.bodies: list[bytes] = []
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        writer.write(b"220 scripted ESMTP\r\n")
        pending, in_data = b"", False
        while chunk := await reader.read(65536):
            self.chunks.append(chunk)
            pending += chunk
            out = []
            while True:
                if in_data:  # the body runs to a line holding only a dot (an empty body: that line alone)
                    end = -2 if pending.startswith(b".\r\n") else pending.find(b"\r\n.\r\n")
                    if end == -1:
                        break
                    self.bodies.append(pending[: end + 2])
                    pending = pending[end + 5 :]
                    in_data = False
                    command = "."
                else:
                    line, sep, rest = pending.partition(b"\r\n")
                    if not sep:
                        break
                    pending = rest
                    command = line.decode()
                reply = self.ehlo if command.startswith("EHLO") else self.answer(command)
                if reply is None:
                    writer.write("".join(f"{r}\r\n" for r in out).encode())
                    writer.close()
                    return
                out.append(reply)
                in_data = command == "DATA" and reply.startswith("354")
                if command == "QUIT":
                    writer.write(b"221 bye\r\n")
                    writer.close()
                    return
            if out:
                writer.write("".join(f"{r}\r\n" for r in out).encode())
        writer.close()

    def run(self, recipients: list[str], data: bytes = MESSAGE) -> tuple[Transaction, int]:
        [tx], opened = self.run_many([recipients], data=data)
        return tx, opened

    def run_many(
        self, messages: list[list[str]], data: bytes = MESSAGE, mail_from: str = "b@example.com", **kw: Any
    ) -> tuple[list[Transaction], int]:
        """One message to each list of recipients, one after the other through one connection cache."""

        async def go() -> tuple[list[Transaction], int]:
            server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            c = cache(**kw)
            try:
                return [
                    await c.send(
                        Hop("127.0.0.1", port),
                        mail_from=mail_from,
                        recipients=recipients,
                        data=data,
                        require_tls=False,
                    )  # fmt: skip
                    for recipients in messages
                ], c.opened
            finally:
                await c.close()
                server.close()
                for writer in self._writers:  # the client may have left without QUIT
                    writer.close()
                await asyncio.gather(*(w.wait_closed() for w in self._writers), return_exceptions=True)

        return asyncio.run(go())


def test_data_block_uses_crlf_doubles_leading_dots_and_ends_with_the_dot_line() -> None:
    assert data_block(b"a\nb") == b"a\r\nb\r\n.\r\n"
    assert data_block(b".x\r\n..y\rz\r\n") == b"..x\r\n...y\r\nz\r\n.\r\n"
    assert data_block(b"plain\r\n") == b"plain\r\n.\r\n"


@pytest.mark.parametrize("pipelining", [True, False])
def test_each_recipient_gets_its_own_reply_and_the_message_arrives_byte_exact(pipelining: bool) -> None:
    replies = {"gone@x.test": (550, "5.1.1 No such user"), "full@x.test": (452, "4.2.2 Mailbox full")}
    with SinkServer(replies=replies, pipelining=pipelining) as sink:
        tx, opened = send(Hop(*sink.address), ["ok@x.test", "gone@x.test", "full@x.test", "also@x.test"])
        [received] = sink.wait_for(1)
    assert opened == 1
    assert tx.replies["gone@x.test"] == SmtpReply(550, None, "5.1.1 No such user")
    assert tx.replies["full@x.test"] == SmtpReply(452, None, "4.2.2 Mailbox full")
    assert tx.replies["ok@x.test"].code == 250 and tx.replies["ok@x.test"] == tx.replies["also@x.test"]
    assert received.rcpt_tos == ["ok@x.test", "also@x.test"]
    assert received.data == MESSAGE.replace(b"\n", b"\r\n") + b"\r\n"


def test_with_pipelining_mail_every_rcpt_and_data_go_out_in_one_write() -> None:
    server = Scripted(lambda c: "354 go on" if c == "DATA" else "250 ok")
    tx, _ = server.run(["a@x.test", "b@x.test", "c@x.test"])
    assert all(r == SmtpReply(250, None, "ok") for r in tx.replies.values())
    batch = next(c for c in server.chunks if c.startswith(b"MAIL"))
    assert batch.split(b"\r\n")[:-1] == [
        b"MAIL FROM:<b@example.com>",
        b"RCPT TO:<a@x.test>",
        b"RCPT TO:<b@x.test>",
        b"RCPT TO:<c@x.test>",
        b"DATA",
    ]
    assert server.bodies == [data_block(MESSAGE)[:-3]]


def test_without_pipelining_commands_go_one_at_a_time() -> None:
    server = Scripted(lambda c: "354 go on" if c == "DATA" else "250 ok", ehlo="250 scripted")
    tx, _ = server.run(["a@x.test", "b@x.test"])
    assert all(r.code == 250 for r in tx.replies.values())
    commands = [c for c in server.chunks if not c.startswith(b"EHLO")][:4]
    assert commands == [b"MAIL FROM:<b@example.com>\r\n", b"RCPT TO:<a@x.test>\r\n",
                        b"RCPT TO:<b@x.test>\r\n", b"DATA\r\n"]  # fmt: skip


def test_data_taken_after_every_recipient_was_refused_ends_with_an_empty_message() -> None:
    """RFC 2920 §3.1: with pipelining, the server may answer DATA with 354 though no RCPT was accepted."""

    def answer(command: str) -> str:
        if command.startswith("RCPT"):
            return "550 5.1.1 unknown"
        return {"DATA": "354 go on", ".": "554 5.5.1 no valid recipients"}.get(command, "250 ok")

    server = Scripted(answer)
    tx, _ = server.run(["a@x.test", "b@x.test"])
    assert tx.replies == {
        "a@x.test": SmtpReply(550, None, "5.1.1 unknown"),
        "b@x.test": SmtpReply(550, None, "5.1.1 unknown"),
    }
    assert server.bodies == [b""]  # the message itself never went out
    assert any(c.startswith(b"RSET") for c in server.chunks)


def test_a_refused_sender_is_every_recipients_answer() -> None:
    def answer(command: str) -> str:
        if command.startswith("MAIL"):
            return "553 5.7.1 sender refused"
        return "503 5.5.1 need MAIL" if command != "RSET" else "250 ok"

    tx, _ = Scripted(answer).run(["a@x.test", "b@x.test"])
    assert set(tx.replies.values()) == {SmtpReply(553, None, "5.7.1 sender refused")}


def test_a_connection_that_breaks_mid_transaction_is_a_connect_failure() -> None:
    async def go() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"220 hi\r\n")
            await reader.readline()
            writer.write(b"250-hi\r\n250 PIPELINING\r\n")
            await reader.readline()
            writer.write(b"250 ok\r\n")
            writer.close()  # gone before the RCPT replies

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        c = cache()
        with pytest.raises(ConnectFailed):
            await c.send(Hop("127.0.0.1", server.sockets[0].getsockname()[1]), mail_from="b@example.com",
                         recipients=["a@x.test"], data=MESSAGE, require_tls=False)  # fmt: skip
        await c.close()
        server.close()

    asyncio.run(go())


def test_connections_are_reused_across_messages() -> None:
    async def go() -> tuple[int, int]:
        c = cache()
        with SinkServer() as sink:
            for _ in range(5):
                await c.send(Hop(*sink.address), mail_from="b@example.com", recipients=["a@x.test"],
                             data=MESSAGE, require_tls=False)  # fmt: skip
            await c.close()
            sink.wait_for(5)
            return c.opened, sink.connections

    assert asyncio.run(go()) == (1, 1)


INJECTED = 'bob+"\nRCPT TO:<evil@evil.test>\nNOOP "@x.test'


@pytest.mark.parametrize("bad", [INJECTED, "a\r\nRSET@x.test", "nul\0@x.test", "a@x.test> NOTIFY=NEVER"])
def test_a_recipient_that_would_break_the_command_line_never_reaches_the_wire(bad: str) -> None:
    """Intake refuses such addresses; mail queued before it did must still not inject commands."""
    server = Scripted(lambda c: "354 go on" if c == "DATA" else "250 ok")
    tx, _ = server.run(["ok@x.test", bad])
    assert tx.replies["ok@x.test"] == SmtpReply(250, None, "ok")
    assert tx.replies[bad].code == 553 and tx.replies[bad].text.startswith("5.1.3 ")
    wire = b"".join(server.chunks)
    assert b"RCPT TO:<ok@x.test>\r\n" in wire and wire.count(b"RCPT") == 1
    assert len(server.bodies) == 1


def test_a_sender_that_would_break_the_command_line_refuses_the_whole_message() -> None:
    server = Scripted(lambda c: "354 go on" if c == "DATA" else "250 ok")
    [tx], opened = server.run_many([["a@x.test", "b@x.test"]], mail_from="x\nRCPT TO:<evil@evil.test>@y.test")
    assert {r.code for r in tx.replies.values()} == {553}
    assert all(r.text.startswith("5.1.7 ") for r in tx.replies.values())
    assert opened == 0 and server.chunks == []  # not even a connection


def test_a_reply_the_server_sent_unasked_drops_the_connection() -> None:
    """A server that answers more than it was asked (as one splitting commands on a bare LF does after an
    injected line) must not have its replies read as answers to the next message's commands."""
    dots = 0

    def answer(command: str) -> str:
        nonlocal dots
        if command == ".":
            dots += 1
            return "250 queued\r\n250 2.1.5 recipient ok" if dots == 1 else "250 queued"
        return "354 go on" if command == "DATA" else "250 ok"

    server = Scripted(answer)
    txs, opened = server.run_many([["first@x.test"], ["second@x.test"]])
    assert [tx.replies for tx in txs] == [{"first@x.test": SmtpReply(250, None, "queued")},
                                          {"second@x.test": SmtpReply(250, None, "queued")}]  # fmt: skip
    assert opened == server.connections == 2  # the second message went on a fresh connection
    assert len(server.bodies) == 2


@pytest.mark.parametrize(
    ("command", "reply"),
    [("MAIL", "354 go on"), ("RCPT", "354 go on"), ("DATA", "250 ok"), ("MAIL", "199 hm")],
)
def test_a_reply_that_cannot_answer_its_command_drops_the_connection(command: str, reply: str) -> None:
    """RFC 5321 §4.3.2: only DATA is answered 354, and DATA is never answered 2yz; replies out of step
    with the commands mean the connection cannot be trusted with a message."""
    server = Scripted(lambda c: reply if c.startswith(command) else "354 go on" if c == "DATA" else "250 ok")
    with pytest.raises(ConnectFailed, match="cannot answer"):
        server.run(["a@x.test"])
    assert server.bodies == []


@pytest.mark.parametrize("line", [b"250-" + b"x" * 200 + b"\r\n", b"x" * 65536], ids=["lines", "one-line"])
def test_an_endless_reply_is_given_up_promptly_with_bounded_memory(line: bytes) -> None:
    """Issue 16 item 5: a hostile MX answered EHLO with 400 MB of reply lines, all of which were kept."""
    import time
    import tracemalloc

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 hi\r\n")
        await reader.readline()
        try:
            for _ in range(32 * 1024 * 1024 // len(line)):  # 32 MB at most, should the client read on
                writer.write(line)
                await writer.drain()
        except OSError:
            pass
        writer.close()

    async def go() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        c = cache()
        try:
            with pytest.raises(ConnectFailed, match="longer than"):
                await c.send(Hop("127.0.0.1", server.sockets[0].getsockname()[1]), mail_from="b@example.com",
                             recipients=["a@x.test"], data=MESSAGE, require_tls=False)  # fmt: skip
        finally:
            await c.close()
            server.close()

    tracemalloc.start()
    started = time.monotonic()
    try:
        asyncio.run(go())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 2  # not the 5 s command timeout
    assert peak < 4 * 1024 * 1024


def test_a_reused_connection_closed_before_mail_is_retried_at_once_on_a_fresh_one() -> None:
    """The usual case of a server that dropped an idle connection: nothing of the message was sent."""
    mails = 0

    def answer(command: str) -> str | None:
        nonlocal mails
        if command.startswith("MAIL"):
            mails += 1
            if mails == 2:
                return None  # the second message's MAIL, on the first connection: it closes
        return "354 go on" if command == "DATA" else "250 ok"

    server = Scripted(answer)
    txs, opened = server.run_many([["first@x.test"], ["second@x.test"]])
    assert [tx.replies for tx in txs] == [
        {"first@x.test": SmtpReply(250, None, "ok")},
        {"second@x.test": SmtpReply(250, None, "ok")},
    ]
    assert opened == server.connections == 2
    assert len(server.bodies) == 2  # each message once


def test_a_connection_lost_after_the_final_dot_defers_the_message_without_sending_it_again() -> None:
    """RFC 5321 §4.1.1.4: the server may have taken the message before the connection went; sending it
    again at once (on a fresh connection, or to the next MX host) could deliver it twice."""
    dots = 0

    def answer(command: str) -> str | None:
        nonlocal dots
        if command == ".":
            dots += 1
            if dots == 2:
                return None  # the second message arrived; the connection closes without a reply
        if command.startswith("RCPT") and "refused" in command:
            return "550 5.1.1 no such user"
        return "354 go on" if command == "DATA" else "250 ok"

    server = Scripted(answer)
    txs, opened = server.run_many([["first@x.test"], ["second@x.test", "refused@x.test"]])
    assert txs[0].replies == {"first@x.test": SmtpReply(250, None, "ok")}
    assert txs[1].replies["refused@x.test"] == SmtpReply(550, None, "5.1.1 no such user")
    unknown = txs[1].replies["second@x.test"]
    assert unknown.code == 451 and unknown.text.startswith("4.4.2 ")  # deferred: retried later
    assert opened == server.connections == 1
    assert len(server.bodies) == 2  # not sent again


def test_a_fresh_connection_lost_after_the_final_dot_is_no_connect_failure() -> None:
    """A connect failure sends the message on to the next MX host: not once the message may be taken."""
    server = Scripted(lambda c: None if c == "." else "354 go on" if c == "DATA" else "250 ok")
    tx, opened = server.run(["a@x.test"])
    assert tx.replies["a@x.test"].code == 451
    assert len(server.bodies) == 1


def test_a_helo_name_with_a_line_break_is_never_written() -> None:
    server = Scripted(lambda c: "250 ok")
    with pytest.raises(UnsafeCommand):
        server.run_many([["a@x.test"]], helo="client.test\r\nMAIL FROM:<x@y.test>")
    assert server.chunks == []  # and the connection was closed (an unclosed one fails the test)
