"""SMTP transactions to remote hosts (RFC 5321): the only module that speaks SMTP out.

Connections are kept per destination address and reused for the next message (RSET-free, as RFC 5321
§4.1.4 allows a new MAIL after a completed transaction) until they have carried ``max_messages`` or sat
idle for ``idle_seconds``; at most ``max_per_host`` are open to one address at a time. STARTTLS is
opportunistic (certificates are not verified, as between MTAs, RFC 7435) unless the configuration set
requires TLS: then a host without STARTTLS gets no message. Every reply is kept, so the caller can turn
each recipient's into a Delivery, a deferral or a bounce.

When the server offers PIPELINING (RFC 2920), MAIL, every RCPT and DATA go out in one write and their
replies are read together: a transaction costs two round trips, not three plus one per recipient.

The client is a small one of our own on asyncio streams. aiosmtplib, used before, reads exactly one reply
per command it writes and throws away bytes that arrive while no command is waiting, so it cannot
pipeline; everything else it did for us (greeting, EHLO, STARTTLS, AUTH PLAIN, dot-stuffing) is a few
lines each.

Nothing but a command line may reach the server as one (RFC 5321 §2.3.8): an envelope address holding a
line break (or anything a Mailbox never holds) is refused here, for that recipient or, for the sender, the
whole message, with the 553 a server would give it, and nothing is written. Replies are checked against
the commands they answer: one that cannot answer its command (RFC 5321 §4.3.2), or bytes the server sent
that answer no command, mean the replies ran out of step with the commands, and the connection is
dropped, never reused: read in step with the next message's commands, stray replies would accept
recipients the server was never asked about, and a receiving server that split an injected line into
commands of its own would then take the next message for whatever those commands said.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass, field

from sesame.mta.reply import SmtpReply
from sesame.mta.routing import Hop


class ConnectFailed(Exception):
    """The host could not be reached or greeted, or went away mid-transaction before the message's final
    dot was sent: nothing was delivered, so the message may go at once on another connection or host."""


class TlsUnavailable(Exception):
    """TLS was required and the host offers no STARTTLS (or it failed)."""


class _Lost(Exception):
    """The connection broke, timed out, or the peer spoke something that is not SMTP (or out of step)."""


class UnsafeCommand(ValueError):
    """A command line with a CR, LF or NUL in it: never written (RFC 5321 §2.3.8)."""


@dataclass
class Transaction:
    """What the host answered: per recipient (RCPT, then DATA for the accepted ones)."""

    hop: Hop
    remote_ip: str
    tls: bool
    replies: dict[str, SmtpReply] = field(default_factory=dict)


def _tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # opportunistic TLS encrypts; it does not authenticate
    return ctx


_TLS = _tls_context()
#: A command is one line ending in CRLF, and CR and LF occur only together as that end (RFC 5321 §2.3.8): one
#: inside would end the command early. A NUL belongs in no command (§4.1.2) and some servers end lines there.
_BREAKS_LINE = re.compile(r"[\r\n\0]")
#: What an envelope address never holds: control characters (qtextSMTP and quoted-pairSMTP are printable
#: ASCII, RFC 5321 §4.1.2) and angle brackets, which would end the path and let parameters follow it.
#: Intake refuses all of these (domain/addresses.py); this catches mail queued before it did.
_NOT_IN_PATH = re.compile(r"[\x00-\x1f\x7f<>]")
#: The replies given here to such addresses, as a server would give them (RFC 5321 §4.2.2, 553 "mailbox
#: name not allowed"; RFC 3463 X.1.3 bad destination, X.1.7 bad sender mailbox address syntax).
BAD_RECIPIENT = SmtpReply(553, None, "5.1.3 Bad destination mailbox address syntax; not sent")
BAD_SENDER = SmtpReply(553, None, "5.1.7 Bad sender mailbox address syntax; not sent")
#: The reply for a message whose connection was lost after its final dot (RFC 3463 X.4.2 bad connection).
LOST_AFTER_DATA = SmtpReply(
    451, None, "4.4.2 Connection lost after the message was sent; its delivery is unknown"
)
#: RFC 5321 §4.5.3.1.5 allows 512 octets a reply line. Real servers go past it a little, so a line may have
#: 4 KiB (also the stream's buffer limit), a reply 200 lines and 64 KiB: an EHLO reply has a dozen or two
#: lines. A server sending more is broken or hostile; its replies are not kept without bound.
MAX_REPLY_LINE = 4096
MAX_REPLY_LINES = 200
MAX_REPLY_BYTES = 64 * 1024
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


def data_block(message: bytes) -> bytes:
    """The message as DATA carries it (RFC 5321 §4.1.1.4, §4.5.2): CRLF line ends (DKIM hashed it so),
    a CRLF at the end, leading dots doubled, and the terminating dot line."""
    crlf = message.count(b"\r\n")
    if crlf != message.count(b"\n") or crlf != message.count(b"\r"):  # some line ends are not CRLF
        message = _LINE_ENDS.sub(b"\r\n", message)
    if b"\n." in message or message.startswith(b"."):
        message = _LEADING_DOT.sub(b"..", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message + b".\r\n"


class _Session:
    """One SMTP connection: replies read line by line from a stream, so pipelined ones stay in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.extensions: dict[str, str] = {}  # EHLO keyword (upper case) → its parameters

    @property
    def connected(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def supports(self, keyword: str) -> bool:
        return keyword.upper() in self.extensions

    def send(self, data: bytes) -> None:
        if self.writer.is_closing():
            raise _Lost("connection closed")
        self.writer.write(data)

    def in_step(self) -> bool:
        """Whether every byte the server sent so far was read as a reply: anything more answers no
        command. StreamReader has no public way to ask what it holds, hence its ``_buffer``."""
        return not self.reader._buffer  # type: ignore[attr-defined]

    async def replies(self, commands: list[str]) -> list[SmtpReply]:
        """Write ``commands`` in one go (several: pipelined, RFC 2920) and read one reply to each.
        ``_Lost`` when a reply cannot answer its command or the server sent more than the replies."""
        if any(_BREAKS_LINE.search(c) for c in commands):
            raise UnsafeCommand("a command line holds a CR, LF or NUL")
        self.send("".join(f"{c}\r\n" for c in commands).encode())
        out = [await self.answer(c.partition(" ")[0].upper()) for c in commands]
        if not self.in_step():
            raise _Lost("the server sent more than its replies")
        return out

    async def answer(self, verb: str) -> SmtpReply:
        """The reply to one command (``verb``: its first word; "." the end of DATA, "" the greeting).
        RFC 5321 §4.2.1, §4.3.2: only DATA may be answered 3yz (354) and DATA is never answered 2yz;
        every other reply is 2yz, 4yz or 5yz."""
        reply = await self.reply()
        if reply.code // 100 not in ((3, 4, 5) if verb == "DATA" else (2, 4, 5)):
            raise _Lost(f"{reply.code} cannot answer {verb or 'the connection'}")
        return reply

    async def reply(self) -> SmtpReply:
        """One reply, its lines joined by newlines (RFC 5321 §4.2.1), within the size limits above."""
        texts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    line = await self.reader.readline()
                    if not line.endswith(b"\n") or len(line) < 4 or not line[:3].isdigit():
                        raise _Lost("connection closed" if not line else f"not an SMTP reply: {line[:80]!r}")
                    size += len(line)
                    if len(texts) == MAX_REPLY_LINES or size > MAX_REPLY_BYTES:
                        raise _Lost(
                            f"a reply longer than {MAX_REPLY_LINES} lines or {MAX_REPLY_BYTES} octets"
                        )
                    texts.append(line[4:].strip())
                    if line[3:4] != b"-":
                        return SmtpReply(int(line[:3]), None, b"\n".join(texts).decode("utf-8", "replace"))
        except ValueError as exc:  # readline: no line end within the stream's limit
            raise _Lost(f"a reply line longer than {MAX_REPLY_LINE} octets") from exc
        except (OSError, TimeoutError) as exc:
            raise _Lost(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc

    async def command(self, line: str) -> SmtpReply:
        return (await self.replies([line]))[0]

    async def hello(self, name: str) -> SmtpReply:
        """EHLO, and HELO when the server does not know EHLO; records the extensions offered."""
        reply = await self.command(f"EHLO {name}")
        if 500 <= reply.code < 600:
            reply = await self.command(f"HELO {name}")
            self.extensions = {}
        elif reply.code == 250:
            self.extensions = {}
            for line in reply.text.split("\n")[1:]:
                keyword, _, params = line.strip().partition(" ")
                self.extensions[keyword.upper()] = params
        return reply

    async def starttls(self) -> None:
        reply = await self.command("STARTTLS")
        if reply.code != 220:
            raise ssl.SSLError(f"STARTTLS refused: {reply.line()}")
        try:
            async with asyncio.timeout(self.timeout):
                await self.writer.start_tls(_TLS)
        except (OSError, TimeoutError) as exc:
            raise ssl.SSLError(f"TLS handshake failed: {exc}") from exc

    async def quit(self) -> None:
        try:
            await self.command("QUIT")
        except _Lost:
            pass
        finally:
            self.close()

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class Relay:
    """How to talk to a smarthost: credentials, and "opportunistic" | "starttls" | "tls" (implicit)."""

    username: str = ""
    password: str = ""
    tls: str = "opportunistic"


@dataclass(frozen=True)
class SiteLimits:
    """How hard one destination may be pushed: open connections, messages per second (0: no limit),
    messages per connection."""

    connections: int
    rate: float
    messages: int

    @classmethod
    def parse(cls, text: str, default: SiteLimits) -> SiteLimits:
        """``"connections=2;rate=5;messages=20"``; what it leaves out keeps the default."""
        values = dict(item.split("=", 1) for item in text.replace(",", ";").split(";") if "=" in item)
        return cls(
            int(values.get("connections", default.connections)),
            float(values.get("rate", default.rate)),
            int(values.get("messages", default.messages)),
        )


@dataclass
class _Connection:
    session: _Session
    hop: Hop
    remote_ip: str
    tls: bool
    source: str | None = None
    messages: int = 0
    idle_since: float = 0.0
    max_messages: int = 100

    def close(self) -> None:
        self.session.close()


class ConnectionCache:
    def __init__(
        self,
        *,
        helo: str,
        connect_timeout: float,
        command_timeout: float,
        idle_seconds: float = 5.0,
        max_messages: int = 100,
        max_per_host: int = 10,
        max_rate: float = 0.0,
    ) -> None:
        self.helo = helo
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.idle_seconds = idle_seconds
        self.max_messages = max_messages
        self.max_per_host = max_per_host
        self.max_rate = max_rate
        self._idle: dict[tuple[str, int, str | None], list[_Connection]] = defaultdict(list)
        self._gates: dict[tuple[str, int, str | None], asyncio.Semaphore] = {}
        self._next_slot: dict[tuple[str, int, str | None], float] = {}
        self.opened = 0  # connections opened, for tests and metrics

    async def send(
        self,
        hop: Hop,
        *,
        mail_from: str,
        recipients: list[str],
        data: bytes,
        require_tls: bool,
        source: str | None = None,
        limits: SiteLimits | None = None,
        relay: Relay | None = None,
    ) -> Transaction:
        """One transaction to ``hop``, leaving from the local address ``source`` when given (a dedicated
        IP pool's); connections are kept per (address, port, source). Addresses that cannot be written
        as a command get ``BAD_SENDER`` / ``BAD_RECIPIENT`` and are never sent."""
        if _NOT_IN_PATH.search(mail_from):
            return Transaction(hop, hop.host, False, dict.fromkeys(recipients, BAD_SENDER))
        refused = {rcpt: BAD_RECIPIENT for rcpt in recipients if _NOT_IN_PATH.search(rcpt)}
        if len(refused) == len(recipients):
            return Transaction(hop, hop.host, False, refused)
        recipients = [rcpt for rcpt in recipients if rcpt not in refused]
        tx = await self._send(hop, mail_from, recipients, data, require_tls, source, limits, relay)
        tx.replies.update(refused)
        return tx

    async def _send(
        self,
        hop: Hop,
        mail_from: str,
        recipients: list[str],
        data: bytes,
        require_tls: bool,
        source: str | None,
        limits: SiteLimits | None,
        relay: Relay | None,
    ) -> Transaction:
        key = (hop.host, hop.port, source)
        limits = limits or SiteLimits(self.max_per_host, self.max_rate, self.max_messages)
        gate = self._gates.get(key)
        if gate is None:  # a site's connection limit is fixed when its first message comes
            gate = self._gates[key] = asyncio.Semaphore(limits.connections)
        async with gate:
            await self._pace(key, limits.rate)
            conn = self._reusable(key)
            if conn is not None:
                conn.max_messages = limits.messages
                try:
                    return await self._transaction(conn, mail_from, recipients, data, require_tls)
                except ConnectFailed:
                    pass  # the server closed the idle connection: open a fresh one, once
            conn = await self._open(hop, require_tls, source, relay)
            conn.max_messages = limits.messages
            return await self._transaction(conn, mail_from, recipients, data, require_tls)

    async def _pace(self, key: tuple[str, int, str | None], rate: float) -> None:
        """Space messages to one address ``1 / rate`` seconds apart."""
        if rate <= 0:
            return
        now = time.monotonic()
        slot = max(now, self._next_slot.get(key, now))
        self._next_slot[key] = slot + 1.0 / rate
        if slot > now:
            await asyncio.sleep(slot - now)

    def _reusable(self, key: tuple[str, int, str | None]) -> _Connection | None:
        now = time.monotonic()
        idle = self._idle[key]
        while idle:
            conn = idle.pop()
            if (
                now - conn.idle_since <= self.idle_seconds
                and conn.session.connected
                and conn.session.in_step()
            ):
                return conn
            conn.close()
        return None

    def prune(self) -> None:
        """Close connections idle for longer than ``idle_seconds``."""
        now = time.monotonic()
        for key, idle in self._idle.items():
            keep = [c for c in idle if now - c.idle_since <= self.idle_seconds and c.session.connected]
            for c in idle:
                if c not in keep:
                    c.close()
            self._idle[key] = keep

    async def _open(
        self, hop: Hop, require_tls: bool, source: str | None, relay: Relay | None
    ) -> _Connection:
        implicit = relay is not None and relay.tls == "tls"
        where = f"{hop.name or hop.host} [{hop.host}]:{hop.port}"
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    hop.host,
                    hop.port,
                    ssl=_TLS if implicit else None,
                    local_addr=(source, 0) if source else None,
                    limit=MAX_REPLY_LINE,  # the reader buffers at most about twice this
                )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"{where}: {exc or type(exc).__name__}") from exc
        session = _Session(reader, writer, self.command_timeout)
        try:
            return await self._start(session, hop, source, implicit, require_tls, relay)
        except BaseException:
            session.close()
            raise

    async def _start(
        self,
        session: _Session,
        hop: Hop,
        source: str | None,
        implicit: bool,
        require_tls: bool,
        relay: Relay | None,
    ) -> _Connection:
        """Greeting, EHLO, STARTTLS and AUTH on a fresh connection."""
        where = f"{hop.name or hop.host} [{hop.host}]:{hop.port}"
        try:
            greeting = await session.answer("")
            if not session.in_step():
                raise _Lost("the server spoke before it was asked")
            if greeting.code != 220:  # 554: this server takes no mail from us now
                raise _Lost(f"greeted with {greeting.line()}")
            hello = await session.hello(self.helo)
            if hello.code != 250:
                raise _Lost(f"EHLO answered {hello.line()}")
        except _Lost as exc:
            session.close()
            raise ConnectFailed(f"{where}: {exc}") from exc
        self.opened += 1
        peer = session.writer.get_extra_info("peername")
        conn = _Connection(session, hop, peer[0] if peer else hop.host, tls=implicit, source=source)
        if relay is not None and relay.tls == "starttls":
            require_tls = True
        if not implicit and session.supports("STARTTLS"):
            try:
                await session.starttls()
                conn.tls = True
                # RFC 3207 §4.2: what was learnt before TLS is forgotten; the session starts over.
                if (await session.hello(self.helo)).code != 250:
                    raise ssl.SSLError("EHLO refused after STARTTLS")
            except (ssl.SSLError, _Lost) as exc:
                session.close()
                if require_tls:
                    raise TlsUnavailable(f"STARTTLS failed at {where}: {exc}") from exc
                raise ConnectFailed(f"STARTTLS failed at {where}: {exc}") from exc
        if require_tls and not conn.tls:
            session.close()
            raise TlsUnavailable(f"{where} does not offer STARTTLS")
        if relay is not None and relay.username:
            # AUTH PLAIN only (RFC 4616): over TLS it is the mechanism relays offer, and trying others in
            # turn after a refusal only delays the answer. Wrong credentials are the operator's to fix:
            # the mail waits and is tried again.
            token = base64.b64encode(f"\0{relay.username}\0{relay.password}".encode()).decode()
            try:
                reply = await session.command(f"AUTH PLAIN {token}")
            except _Lost as exc:
                session.close()
                raise ConnectFailed(f"AUTH failed at {where}: {exc}") from exc
            if reply.code != 235:
                session.close()
                raise ConnectFailed(f"AUTH failed at {where}: {reply.line()}")
        return conn

    async def _transaction(
        self, conn: _Connection, mail_from: str, recipients: list[str], data: bytes, require_tls: bool
    ) -> Transaction:
        if require_tls and not conn.tls:
            self._release(conn, reuse=True)  # fine for mail that does not need TLS
            raise TlsUnavailable(f"{conn.hop.name or conn.hop.host} does not offer STARTTLS")
        session = conn.session
        result = Transaction(conn.hop, conn.remote_ip, conn.tls)
        mail = f"MAIL FROM:<{mail_from}>"
        if session.supports("SIZE"):
            mail += f" SIZE={len(data)}"
        if session.supports("8BITMIME") and not data.isascii():
            mail += " BODY=8BITMIME"
        commands = [mail, *(f"RCPT TO:<{rcpt}>" for rcpt in recipients), "DATA"]
        accepted: list[str] = []
        sent = False  # the message and its final dot went out: from then on it may have been taken
        try:
            if session.supports("PIPELINING"):
                replies = await session.replies(commands)
            else:  # one command at a time, stopping where the transaction cannot go on
                replies = [await session.command(mail)]
                if replies[0].code == 250:
                    replies += [await session.command(c) for c in commands[1:-1]]
                    if any(200 <= r.code < 300 for r in replies[1:]):
                        replies.append(await session.command("DATA"))
            mail_reply, rcpt_replies = replies[0], replies[1 : 1 + len(recipients)]
            if mail_reply.code == 421:  # the server is closing: nothing was said about this message
                conn.close()
                raise ConnectFailed(mail_reply.line())
            if mail_reply.code != 250:  # a refused sender: the same answer for every recipient
                result.replies = dict.fromkeys(recipients, mail_reply)
            else:
                result.replies = dict(zip(recipients, rcpt_replies, strict=True))
            accepted = [rcpt for rcpt, reply in result.replies.items() if 200 <= reply.code < 300]
            data_reply = replies[1 + len(recipients)] if len(replies) > 1 + len(recipients) else None
            if data_reply is not None and data_reply.code == 354:
                # RFC 2920 §3.1: a server may take DATA even when it refused every recipient; an empty
                # message then ends the transaction (and is refused).
                session.send(data_block(data) if accepted else b".\r\n")
                sent = bool(accepted)
                await session.writer.drain()
                data_reply = await session.answer(".")
            for rcpt in accepted:
                result.replies[rcpt] = data_reply or SmtpReply(451, None, "4.3.0 DATA was not answered")
            if data_reply is None or not 200 <= data_reply.code < 300:
                if any(r.code == 421 for r in result.replies.values()):
                    conn.close()  # the server said it is closing the connection
                else:
                    await self._reset(conn)
                return result
            conn.messages += 1
            self._release(conn, reuse=session.in_step())
            return result
        except (_Lost, OSError) as exc:
            conn.close()
            if not sent:  # nothing was taken: the message can go at once, on a fresh connection or host
                raise ConnectFailed(f"{conn.hop.host}:{conn.hop.port}: {exc}") from exc
            # RFC 5321 §4.1.1.4: the server may have delivered the message without answering the dot
            # (or its answer was lost). Sending it again now could deliver it twice; it waits for a retry.
            for rcpt in accepted:
                result.replies[rcpt] = LOST_AFTER_DATA
            return result
        except BaseException:
            conn.close()
            raise

    async def _reset(self, conn: _Connection) -> None:
        try:
            reply = await conn.session.command("RSET")
            self._release(conn, reuse=reply.code == 250)
        except _Lost:
            conn.close()

    def _release(self, conn: _Connection, *, reuse: bool) -> None:
        if reuse and conn.messages < conn.max_messages and conn.session.connected:
            conn.idle_since = time.monotonic()
            self._idle[(conn.hop.host, conn.hop.port, conn.source)].append(conn)
        else:
            asyncio.ensure_future(conn.session.quit())

    async def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                await conn.session.quit()
        self._idle.clear()
