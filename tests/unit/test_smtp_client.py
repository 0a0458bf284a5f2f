"""The SMTP client against real servers on loopback: pipelining, per-recipient replies, DATA encoding."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from sesame.mta.routing import Hop
from sesame.mta.smtp_client import ConnectFailed, ConnectionCache, Reply, Transaction, data_block
from sesame.testing.smtp import SinkServer

MESSAGE = b"From: a@example.com\nTo: ok@x.test\nSubject: dots\n\n.leading dot\nmiddle\n..two dots\nend"


def cache(**kw: Any) -> ConnectionCache:
    return ConnectionCache(helo="client.test", connect_timeout=5, command_timeout=5, **kw)


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
    wrote in one go."""

    def __init__(self, answer: Callable[[str], str], ehlo: str = "250-scripted\r\n250 PIPELINING") -> None:
        self.answer = answer
        self.ehlo = ehlo
        self.chunks: list[bytes] = []
        self.bodies: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
                    out.append(self.answer("."))
                    continue
                line, sep, rest = pending.partition(b"\r\n")
                if not sep:
                    break
                pending = rest
                command = line.decode()
                reply = self.ehlo if command.startswith("EHLO") else self.answer(command)
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
        async def go() -> tuple[Transaction, int]:
            server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            c = cache()
            try:
                tx = await c.send(Hop("127.0.0.1", port), mail_from="b@example.com", recipients=recipients,
                                  data=data, require_tls=False)  # fmt: skip
                return tx, c.opened
            finally:
                await c.close()
                server.close()

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
    assert tx.replies["gone@x.test"] == Reply(550, "5.1.1 No such user")
    assert tx.replies["full@x.test"] == Reply(452, "4.2.2 Mailbox full")
    assert tx.replies["ok@x.test"].code == 250 and tx.replies["ok@x.test"] == tx.replies["also@x.test"]
    assert received.rcpt_tos == ["ok@x.test", "also@x.test"]
    assert received.data == MESSAGE.replace(b"\n", b"\r\n") + b"\r\n"


def test_with_pipelining_mail_every_rcpt_and_data_go_out_in_one_write() -> None:
    server = Scripted(lambda c: "354 go on" if c == "DATA" else "250 ok")
    tx, _ = server.run(["a@x.test", "b@x.test", "c@x.test"])
    assert all(r == Reply(250, "ok") for r in tx.replies.values())
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
    assert tx.replies == {"a@x.test": Reply(550, "5.1.1 unknown"), "b@x.test": Reply(550, "5.1.1 unknown")}
    assert server.bodies == [b""]  # the message itself never went out
    assert any(c.startswith(b"RSET") for c in server.chunks)


def test_a_refused_sender_is_every_recipients_answer() -> None:
    def answer(command: str) -> str:
        if command.startswith("MAIL"):
            return "553 5.7.1 sender refused"
        return "503 5.5.1 need MAIL" if command != "RSET" else "250 ok"

    tx, _ = Scripted(answer).run(["a@x.test", "b@x.test"])
    assert set(tx.replies.values()) == {Reply(553, "5.7.1 sender refused")}


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
