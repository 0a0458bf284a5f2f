"""SMTP transactions to remote hosts (RFC 5321), with aiosmtplib: the only module that speaks SMTP out.

Connections are kept per destination address and reused for the next message (RSET-free, as RFC 5321
§4.1.4 allows a new MAIL after a completed transaction) until they have carried ``max_messages`` or sat
idle for ``idle_seconds``; at most ``max_per_host`` are open to one address at a time. STARTTLS is
opportunistic (certificates are not verified, as between MTAs, RFC 7435) unless the configuration set
requires TLS: then a host without STARTTLS gets no message. Every reply is kept, so the caller can turn
each recipient's into a Delivery, a deferral or a bounce.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass, field

import aiosmtplib

from sesame.mta.routing import Hop


class ConnectFailed(Exception):
    """The host could not be reached or greeted, or went away mid-transaction: try the next host."""


class TlsUnavailable(Exception):
    """TLS was required and the host offers no STARTTLS (or it failed)."""


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    def line(self) -> str:
        return f"{self.code} {self.text}".strip()


@dataclass
class Transaction:
    """What the host answered: per recipient (RCPT, then DATA for the accepted ones)."""

    hop: Hop
    remote_ip: str
    tls: bool
    replies: dict[str, Reply] = field(default_factory=dict)


def _tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # opportunistic TLS encrypts; it does not authenticate
    return ctx


_TLS = _tls_context()
_LOST = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError, TimeoutError)


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
    smtp: aiosmtplib.SMTP
    hop: Hop
    remote_ip: str
    tls: bool
    source: str | None = None
    messages: int = 0
    idle_since: float = 0.0
    max_messages: int = 100

    def close(self) -> None:
        self.smtp.close()


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
        IP pool's); connections are kept per (address, port, source)."""
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
            if now - conn.idle_since <= self.idle_seconds and conn.smtp.is_connected:
                return conn
            conn.close()
        return None

    def prune(self) -> None:
        """Close connections idle for longer than ``idle_seconds``."""
        now = time.monotonic()
        for key, idle in self._idle.items():
            keep = [c for c in idle if now - c.idle_since <= self.idle_seconds and c.smtp.is_connected]
            for c in idle:
                if c not in keep:
                    c.close()
            self._idle[key] = keep

    async def _open(
        self, hop: Hop, require_tls: bool, source: str | None, relay: Relay | None
    ) -> _Connection:
        implicit = relay is not None and relay.tls == "tls"
        smtp = aiosmtplib.SMTP(
            hostname=hop.host,
            port=hop.port,
            source_address=(source, 0) if source else None,
            use_tls=implicit,
            tls_context=_TLS if implicit else None,
            local_hostname=self.helo,
            timeout=self.connect_timeout,
            start_tls=False,
        )
        where = f"{hop.name or hop.host} [{hop.host}]:{hop.port}"
        try:
            await smtp.connect()
            await smtp.ehlo()
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise ConnectFailed(f"{where}: {exc}") from exc
        self.opened += 1
        peer = smtp.transport.get_extra_info("peername") if smtp.transport else None
        conn = _Connection(smtp, hop, peer[0] if peer else hop.host, tls=implicit, source=source)
        if relay is not None and relay.tls == "starttls":
            require_tls = True
        if not implicit and smtp.supports_extension("starttls"):
            try:
                await smtp.starttls(tls_context=_TLS, timeout=self.command_timeout)
                conn.tls = True
            except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
                smtp.close()
                if require_tls:
                    raise TlsUnavailable(f"STARTTLS failed at {where}: {exc}") from exc
                raise ConnectFailed(f"STARTTLS failed at {where}: {exc}") from exc
        if require_tls and not conn.tls:
            smtp.close()
            raise TlsUnavailable(f"{where} does not offer STARTTLS")
        if relay is not None and relay.username:
            try:
                if conn.tls and not implicit:
                    await smtp.ehlo()  # RFC 3207 §4.2: the session starts over after STARTTLS
                # AUTH PLAIN only (RFC 4616): over TLS it is the mechanism relays offer, and trying others in
                # turn after a refusal only delays the answer.
                await smtp.auth_plain(relay.username, relay.password, timeout=self.command_timeout)
            except (
                aiosmtplib.SMTPException
            ) as exc:  # wrong credentials are the operator's to fix: retry later
                smtp.close()
                raise ConnectFailed(f"AUTH failed at {where}: {exc}") from exc
        return conn

    async def _transaction(
        self, conn: _Connection, mail_from: str, recipients: list[str], data: bytes, require_tls: bool
    ) -> Transaction:
        if require_tls and not conn.tls:
            self._release(conn, reuse=True)  # fine for mail that does not need TLS
            raise TlsUnavailable(f"{conn.hop.name or conn.hop.host} does not offer STARTTLS")
        smtp, timeout = conn.smtp, self.command_timeout
        result = Transaction(conn.hop, conn.remote_ip, conn.tls)
        options = []
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(data)}")
        if smtp.supports_extension("8bitmime") and not data.isascii():
            options.append("BODY=8BITMIME")
        try:
            try:
                await smtp.mail(mail_from, options=options, timeout=timeout)
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code == 421:  # the server is closing: nothing was said about this message
                    raise ConnectFailed(exc.message) from exc
                for rcpt in recipients:  # a refused sender: the same answer for every recipient
                    result.replies[rcpt] = Reply(exc.code, exc.message)
                await self._reset(conn)
                return result
            accepted = []
            for rcpt in recipients:
                try:
                    await smtp.rcpt(rcpt, timeout=timeout)
                    accepted.append(rcpt)
                except aiosmtplib.SMTPResponseException as exc:
                    result.replies[rcpt] = Reply(exc.code, exc.message)
            if not accepted:
                await self._reset(conn)
                return result
            try:
                answer = await smtp.data(data, timeout=timeout)
                reply = Reply(answer.code, answer.message)
            except aiosmtplib.SMTPResponseException as exc:
                reply = Reply(exc.code, exc.message)
            for rcpt in accepted:
                result.replies[rcpt] = reply
            conn.messages += 1
            self._release(conn, reuse=True)
            return result
        except _LOST as exc:
            conn.close()
            if result.replies and any(200 <= r.code < 300 for r in result.replies.values()):
                return result  # DATA was answered: the rest of the session does not matter
            raise ConnectFailed(f"{conn.hop.host}:{conn.hop.port}: {exc}") from exc

    async def _reset(self, conn: _Connection) -> None:
        try:
            await conn.smtp.rset(timeout=self.command_timeout)
            self._release(conn, reuse=True)
        except (aiosmtplib.SMTPException, *_LOST):
            conn.close()

    def _release(self, conn: _Connection, *, reuse: bool) -> None:
        if reuse and conn.messages < conn.max_messages and conn.smtp.is_connected:
            conn.idle_since = time.monotonic()
            self._idle[(conn.hop.host, conn.hop.port, conn.source)].append(conn)
        else:
            asyncio.ensure_future(self._quit(conn))

    async def _quit(self, conn: _Connection) -> None:
        try:
            await conn.smtp.quit(timeout=self.command_timeout)
        except (aiosmtplib.SMTPException, *_LOST):
            pass
        finally:
            conn.close()

    async def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                await self._quit(conn)
        self._idle.clear()
