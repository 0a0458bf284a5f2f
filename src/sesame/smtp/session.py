"""One SMTP session, as SES's SMTP endpoint and its MX speak it: RFC 5321 with PIPELINING (RFC 2920),
8BITMIME (RFC 6152), SIZE (RFC 1870), STARTTLS (RFC 3207) and AUTH PLAIN / LOGIN (RFC 4954).

The session is an ``asyncio.Protocol`` with its own input buffer, read by one task: every command is
taken from the buffer in order, its reply queued, and the queued replies written in one send whenever
the session is about to wait (for input, the database or a credential check), so a pipelining client
gets its replies in order and in few packets. Owning the buffer is also what keeps two attacks out:
bytes pipelined after STARTTLS are dropped before the handshake (CVE-2011-0411), and only
``<CRLF>.<CRLF>`` ends DATA, a bare CR or LF in the data being refused (SMTP smuggling).

What differs between submission and the MX is the door's (``door.py``): AUTH, who is let in, which
recipients are taken and where the message goes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from sesame.domain.addresses import IllegalAddress, bare_address
from sesame.smtp.door import OK, Envelope, Reply
from sesame.smtp.submission import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from sesame.smtp.server import SmtpServer

log = logging.getLogger(__name__)

MAX_COMMAND_LINE = 512  # RFC 5321 §4.5.3.1.4, with its CRLF
MAX_TEXT_LINE = 1000  # RFC 5321 §4.5.3.1.6, with its CRLF
#: Commands that move no mail (NOOP, RSET, VRFY, HELP, EHLO again ...) and error replies a session may
#: have before it is closed (Postfix: smtpd_junk_command_limit, smtpd_hard_error_limit).
MAX_JUNK_COMMANDS = 100
MAX_ERRORS = 20
#: Input buffered past this (while not reading message data) pauses the socket: a client pipelining
#: without reading its replies cannot grow the buffer without bound.
MAX_BUFFERED = 64 * 1024
_PATH = re.compile(r"(?i)(?:FROM|TO):\s*<([^<>]*)>\s*(.*)")
_PARAM = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)(?:=([!-<>-~]+))?")  # RFC 5321 §4.1.2 esmtp-param

BYE = Reply(221, "Bye")
TIMEOUT = Reply(451, "4.4.2 Timeout waiting for data from client.")
TOO_LONG = Reply(552, "Message is too long.")
AUTH_REQUIRED = Reply(530, "Authentication required")
TLS_FIRST = Reply(530, "Must issue a STARTTLS command first")
AUTH_INVALID = Reply(535, "Authentication Credentials Invalid")
SHUTTING_DOWN = Reply(421, "Service shutting down")


class _Closed(Exception):
    """The client went away, or the session is over."""


class SmtpSession(asyncio.Protocol):
    def __init__(self, server: SmtpServer, *, implicit_tls: bool) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.tls = implicit_tls
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._eof = False
        self._reading_paused = False
        self._reading_data = False
        self.task: asyncio.Task[None] | None = None
        self.idle = True  # waiting for a command between transactions (a shutdown may close it)
        # Session state (RFC 5321 §4.1.4); reset by STARTTLS.
        self.helo: str | None = None
        self.door = server.door
        self.account: str | None = None  # who sends: by AUTH, a trusted network, or dev mode's default
        self.authenticated = False
        self.mail_from: str | None = None  # "" is the null reverse-path
        self.recipients: list[str] = []
        self.junk = self.errors = 0

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        self.task = self.loop.create_task(self._run(), name=f"smtp-session-{self.peer}")

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._reading_data and len(self._buf) > MAX_BUFFERED and self.transport is not None:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._wake()
        return None  # close the transport: replies to a half-closed client have no one to read them

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def shutdown(self) -> None:
        """The server is stopping: a session waiting for its next command is told so and closed."""
        if self.idle:
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- input and output ---------------------------------------------------------------------------

    def reply(self, reply: Reply) -> None:
        if reply.code >= 400:
            self.errors += 1
        self._out.append(reply.line())

    def flush(self) -> None:
        if self._out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self._out))
        self._out.clear()

    async def _fill(self) -> None:
        """Wait for more input, replies written first; at the idle timeout answer 451 and close."""
        if self._eof:
            raise _Closed
        self.flush()
        if self._writable is not None:  # the client does not read its replies: read no more from it
            try:
                await asyncio.wait_for(asyncio.shield(self._writable), self.server.idle_timeout)
            except TimeoutError:
                raise _Closed from None
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(self.server.idle_timeout, _expire, waiter)
        try:
            await waiter
        except TimeoutError:
            self.reply(TIMEOUT)
            raise _Closed from None
        finally:
            timer.cancel()
            self._waiter = None
        if self.idle and self.server.closing:
            self.reply(SHUTTING_DOWN)
            raise _Closed

    async def _line(self) -> bytes | None:
        """The next command line without its line end, or None for one longer than RFC 5321 allows
        (discarded up to its end). A bare LF ends a command line too, as most servers take it."""
        while True:
            end = self._buf.find(b"\n")
            if 0 <= end < MAX_COMMAND_LINE:
                line = bytes(self._buf[:end])
                del self._buf[: end + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if end >= 0 or len(self._buf) >= MAX_COMMAND_LINE:
                while (end := self._buf.find(b"\n")) < 0:
                    self._buf.clear()
                    await self._fill()
                del self._buf[: end + 1]
                return None
            await self._fill()

    async def _message(self) -> bytes | Reply:
        """The message data up to ``<CRLF>.<CRLF>``, un-dot-stuffed (RFC 5321 §4.5.2), or the refusal
        for data too long, with a bare CR or LF, or with a line past 1,000 octets. Data past the size
        limit is read to its end and thrown away as it comes, never held."""
        self._reading_data = True
        try:
            self._buf[0:0] = b"\r\n"  # the data starts a line: an empty message is just ".\r\n"
            scanned, dropped = 0, False
            while (end := self._buf.find(b"\r\n.\r\n", scanned)) < 0:
                scanned = max(0, len(self._buf) - 4)
                if len(self._buf) > MAX_MESSAGE_BYTES + 2:
                    del self._buf[:scanned]
                    scanned, dropped = 0, True
                await self._fill()
            data = bytes(self._buf[: end + 2])
            del self._buf[: end + 5]
        finally:
            self._reading_data = False
        if dropped or len(data) - 2 > MAX_MESSAGE_BYTES:
            return TOO_LONG
        lines = data.count(b"\r\n")
        if data.count(b"\n") != lines or data.count(b"\r") != lines:
            return Reply(554, "Message rejected: bare CR or LF in message data; lines must end with CRLF.")
        if len(data) > MAX_TEXT_LINE and max(map(len, data.split(b"\r\n"))) > MAX_TEXT_LINE - 2:
            return Reply(554, f"Message rejected: a line is longer than {MAX_TEXT_LINE} octets.")
        return data.replace(b"\r\n.", b"\r\n")[2:]

    # -- the dialogue -------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            refusal = self.server.admit(self)
            if refusal is not None:
                self.reply(refusal)
                return
            refusal = await self.door.connect(self.peer)
            if refusal is not None:  # e.g. an IP filter: the client's mail is never read
                self.reply(refusal)
                return
            self.account = self.door.first_account(self.peer)
            self.reply(Reply(220, f"{self.server.hostname} ESMTP Sesame"))
            while True:
                self.idle = self.mail_from is None  # between transactions
                if self.idle and self.server.closing:
                    self.reply(SHUTTING_DOWN)
                    return
                line = await self._line()
                self.idle = False
                if line is None:
                    self.reply(Reply(500, "Line too long"))
                elif not await self._command(line):
                    return
                if self.errors >= MAX_ERRORS or self.junk > MAX_JUNK_COMMANDS:
                    self.reply(Reply(421, "Too many errors or commands without mail; closing"))
                    return
        except _Closed:
            pass
        except ssl.SSLError as exc:
            log.info("SMTP TLS handshake with %s failed: %s", self.peer, exc)
        except (ConnectionError, TimeoutError):
            pass
        except Exception:
            log.exception("SMTP session with %s failed", self.peer)
            self.reply(Reply(421, "Local error; closing"))
        finally:
            self.server.release(self)
            self.flush()
            if self.transport is not None:
                self.transport.close()

    async def _command(self, line: bytes) -> bool:
        """Carry out one command; False ends the session."""
        text = line.decode("utf-8", "replace")
        verb, _, arg = text.partition(" ")
        handler = self._COMMANDS.get(verb.upper())
        if handler is None:
            self.junk += 1
            self.reply(Reply(500, "Error: command not recognized"))
            return True
        result = handler(self, arg.strip())
        if isinstance(result, bool):
            return result
        if result is not None:
            await result
        return True

    def ehlo(self, arg: str) -> None:
        if not arg:
            return self.reply(Reply(501, "Syntax: EHLO hostname"))
        self.junk += self.helo is not None
        self.helo, self.mail_from, self.recipients = arg, None, []
        lines = [self.server.hostname, "8BITMIME", f"SIZE {MAX_MESSAGE_BYTES}", "PIPELINING"]
        if not self.tls:
            lines.append("STARTTLS")
        if self._auth_offered():
            lines.append("AUTH PLAIN LOGIN")
        self._out.append("".join(f"250-{x}\r\n" for x in lines).encode() + b"250 Ok\r\n")  # SES ends with Ok

    def helo_(self, arg: str) -> None:
        if not arg:
            return self.reply(Reply(501, "Syntax: HELO hostname"))
        self.helo, self.mail_from, self.recipients = arg, None, []
        self.reply(Reply(250, self.server.hostname))

    def _auth_offered(self) -> bool:
        return self.door.requires_account and (self.tls or self.server.plaintext_auth)

    async def starttls(self, arg: str) -> None:
        if arg:
            return self.reply(Reply(501, "Syntax: STARTTLS"))
        if self.tls:
            return self.reply(Reply(503, "TLS already active"))
        self.reply(Reply(220, "Ready to start TLS"))
        self._buf.clear()  # RFC 3207 §4.2 / CVE-2011-0411: nothing sent in clear counts after TLS
        self.flush()
        assert self.transport is not None
        transport = await self.loop.start_tls(
            self.transport,
            self,
            self.server.tls_context,
            server_side=True,
            ssl_handshake_timeout=self.server.idle_timeout,
        )
        if transport is None:
            raise _Closed
        self.transport, self.tls = transport, True
        # RFC 3207 §4.2: the client starts over with EHLO; what it said in clear is forgotten, an
        # identity given by a trusted network excepted (it comes from the address, not from the client).
        self.helo, self.mail_from, self.recipients = None, None, []
        self.account, self.authenticated = self.door.first_account(self.peer), False

    async def auth(self, arg: str) -> None:
        if not self.door.requires_account:
            return self.reply(Reply(502, "Command not implemented"))
        if not self._auth_offered():
            return self.reply(TLS_FIRST)
        if self.helo is None:
            return self.reply(Reply(503, "Error: send EHLO first"))
        if self.authenticated:
            return self.reply(Reply(503, "Already authenticated"))
        if self.mail_from is not None:
            return self.reply(Reply(503, "Error: AUTH not allowed during a mail transaction"))
        mechanism, _, initial = arg.partition(" ")
        mechanism = mechanism.upper()
        if mechanism == "PLAIN":
            response = initial.strip() or await self._challenge("")
            if response is None:
                return
            decoded = _b64(response)
            parts = decoded.split("\0") if decoded is not None else []
            if len(parts) != 3:
                return self.reply(Reply(501, "Cannot decode response"))
            username, password = parts[1], parts[2]
        elif mechanism == "LOGIN":
            username_b64 = initial.strip() or await self._challenge("VXNlcm5hbWU6")  # "Username:"
            if username_b64 is None:
                return
            password_b64 = await self._challenge("UGFzc3dvcmQ6")  # "Password:"
            if password_b64 is None:
                return
            user, secret = _b64(username_b64), _b64(password_b64)
            if user is None or secret is None:
                return self.reply(Reply(501, "Cannot decode response"))
            username, password = user, secret
        else:
            return self.reply(Reply(504, "Unrecognized authentication type"))
        await self._authenticate(username, password)

    async def _challenge(self, prompt: str) -> str | None:
        """Send a 334 challenge and read the client's answer; None (answered 501) if it cancels."""
        self.reply(Reply(334, prompt) if prompt else Reply(334, ""))
        line = await self._line()
        if line is None or line.strip() == b"*":
            self.reply(Reply(501, "Authentication cancelled"))
            return None
        return line.decode("ascii", "replace").strip()

    async def _authenticate(self, username: str, password: str) -> None:
        self.flush()
        account = await self.door.authenticate(username, password)
        if account is None:
            await self.server.failed_login(self.peer)
            return self.reply(AUTH_INVALID)
        self.account, self.authenticated = account, True
        self.reply(Reply(235, "Authentication successful."))

    def mail(self, arg: str) -> None:
        if self.helo is None:
            return self.reply(Reply(503, "Error: send HELO/EHLO first"))
        if self.account is None and self.door.requires_account:
            return self.reply(AUTH_REQUIRED)
        if self.mail_from is not None:
            return self.reply(Reply(503, "Error: nested MAIL command"))
        m = _PATH.fullmatch(arg)
        if m is None or not arg.upper().startswith("FROM:"):
            return self.reply(Reply(501, "Syntax: MAIL FROM:<address>"))
        address, params = m[1].strip(), m[2]
        for param in params.split():
            p = _PARAM.fullmatch(param)
            name, value = (p[1].upper(), p[2]) if p else ("", None)
            if name == "SIZE" and value is not None and value.isdigit():
                if int(value) > MAX_MESSAGE_BYTES:
                    return self.reply(TOO_LONG)
            elif name == "BODY" and value is not None and value.upper() in ("7BIT", "8BITMIME"):
                pass
            else:
                return self.reply(Reply(555, f"Unsupported option: {param[:64]}"))
        try:
            # RFC 5321 §4.5.5: bounces come from the null reverse-path; only the MX takes them.
            self.mail_from = "" if not address and not self.door.requires_account else bare_address(address)
        except IllegalAddress:
            return self.reply(Reply(553, f"<{address[:256]}> Invalid email address"))
        self.recipients = []
        self.reply(OK)

    async def rcpt(self, arg: str) -> None:
        if self.mail_from is None:
            return self.reply(Reply(503, "Error: need MAIL command"))
        m = _PATH.fullmatch(arg)
        if m is None or not arg.upper().startswith("TO:"):
            return self.reply(Reply(501, "Syntax: RCPT TO:<address>"))
        if m[2].strip():
            return self.reply(Reply(555, f"Unsupported option: {m[2].strip()[:64]}"))
        if len(self.recipients) >= self.door.max_recipients:  # RFC 5321 §4.5.3.1.10: 452, the rest later
            return self.reply(Reply(452, f"4.5.3 Recipient count exceeds {self.door.max_recipients}."))
        try:
            address = bare_address(m[1].strip())
        except IllegalAddress:
            return self.reply(Reply(553, f"<{m[1].strip()[:256]}> address unknown"))
        reply = await self.door.recipient(self._envelope(), address)
        if reply.code == 250:
            self.recipients.append(address)
        self.reply(reply)

    def _envelope(self) -> Envelope:
        assert self.mail_from is not None
        return Envelope(
            peer=self.peer,
            helo=self.helo or "",
            tls=self.tls,
            mail_from=self.mail_from,
            recipients=list(self.recipients),
            account=self.account,
        )

    async def data(self, arg: str) -> None:
        if arg:
            return self.reply(Reply(501, "Syntax: DATA"))
        if self.mail_from is None:
            return self.reply(Reply(503, "Error: need MAIL command"))
        if not self.recipients:
            return self.reply(Reply(503, "Error: need RCPT command"))
        self.reply(Reply(354, "End data with <CR><LF>.<CR><LF>"))
        message = await self._message()
        envelope = self._envelope()
        self.mail_from, self.recipients = None, []
        if isinstance(message, Reply):
            return self.reply(message)
        self.flush()
        self.junk = 0
        self.reply(await self.door.accept(envelope, message))

    def rset(self, arg: str) -> None:
        self.junk += 1
        self.mail_from, self.recipients = None, []
        self.reply(OK)

    def noop(self, arg: str) -> None:
        self.junk += 1
        self.reply(OK)

    def vrfy(self, arg: str) -> None:
        self.junk += 1
        self.reply(Reply(502, "Command not implemented"))

    def quit(self, arg: str) -> bool:
        self.reply(BYE)
        return False

    _COMMANDS: dict[str, Callable[[SmtpSession, str], Awaitable[None] | bool | None]] = {
        "EHLO": ehlo,
        "HELO": helo_,
        "STARTTLS": starttls,
        "AUTH": auth,
        "MAIL": mail,
        "RCPT": rcpt,
        "DATA": data,
        "RSET": rset,
        "NOOP": noop,
        "VRFY": vrfy,
        "EXPN": vrfy,
        "HELP": vrfy,
        "QUIT": quit,
    }


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _b64(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
